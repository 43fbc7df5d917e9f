"""Calibration kept apart from evaluation, and no training on the test set: the data stage of a run."""

from __future__ import annotations

import numpy as np
import pytest

from accelstudio.core.data.dataset import Dataset
from accelstudio.core.model.examples import get_example
from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.pipeline import run_job
from accelstudio.core.recipe import Recipe
from accelstudio.core.data.run_data import (
    MAX_CALIB_FRACTION, TrainOverlapError, count_overlap, prepare_run_data, split_calibration,
)
from shape_models import conv

FAST = RuntimeSettings(threads=1, warmup=2, repeats=20, time_budget_s=0.5)
STATIC = {"quantize": {"mode": "static-int8", "calib_samples": 64}}
FINETUNE = {"prune": {"amount": 0.3}, "recovery": {"method": "finetune", "epochs": 1, "max_samples": 64}}


def _spec(model="example:digits-cnn", recipe=None, **kw) -> JobSpec:
    return JobSpec(model=model, recipe=Recipe.from_dict(recipe or {}), runtime=FAST, keep_artifact=False, **kw)


def _data(handle_spec: JobSpec):
    from accelstudio.core.model.loading import open_model

    backend = "torch" if handle_spec.recipe.recovery.active else "onnx"
    return prepare_run_data(handle_spec, open_model(handle_spec.model, backend=backend))


def _digits_file(tmp_path, name="test.npz", n=None):
    d = np.load(get_example("digits-cnn").data_path)
    path = tmp_path / name
    np.savez(path, x=d["x"][:n], labels=d["labels"][:n])
    return path


def test_split_is_disjoint_fixed_and_capped():
    x = np.arange(40, dtype=np.float32).reshape(40, 1)
    ds = Dataset({"x": x}, np.arange(40), "f.npz", False, 40)
    rest, calib = split_calibration(ds, 128)
    assert calib.num_samples == int(40 * MAX_CALIB_FRACTION) and rest.num_samples == 30
    assert count_overlap(calib.inputs, rest.inputs) == 0
    assert np.array_equal(split_calibration(ds, 128)[1].inputs["x"], calib.inputs["x"])  # fixed seed
    assert split_calibration(ds, 4)[1].num_samples == 4


def test_static_int8_on_user_data_calibrates_on_a_part_never_evaluated(tmp_path):
    path = _digits_file(tmp_path, n=200)
    spec = _spec(str(get_example("digits-cnn").onnx_path), STATIC, data=str(path))
    data = _data(spec)
    assert data.record["calib"] == {"source": f"{path} (split)", "n": 50, "split_from_eval": True}
    assert data.record["eval"]["n"] == 150 and data.eval.num_samples == 150
    assert count_overlap(data.calib, data.eval.inputs) == 0
    result = run_job(spec)
    assert result.metrics["n_eval"] == 150 and result.metrics["data"]["calib"]["split_from_eval"]
    assert any("never evaluated" in n for n in result.metrics["notes"])


def test_synthesized_calibration_is_drawn_apart_from_the_fidelity_set(tmp_path):
    spec = _spec(str(conv(tmp_path / "c.onnx", ["N", 3, 16, 16])), STATIC)
    data = _data(spec)
    assert data.record["calib"]["split_from_eval"] is False and "seed 1" in data.record["calib"]["source"]
    assert data.record["eval"]["synthesized"] and count_overlap(data.calib, data.eval.inputs) == 0


def test_examples_calibrate_on_their_training_split():
    data = _data(_spec(recipe=STATIC))
    assert "training split" in data.record["calib"]["source"] and not data.record["calib"]["split_from_eval"]
    assert data.record["eval"]["n"] == get_example("digits-cnn").n_test
    split = np.load(get_example("digits-cnn").folder.parent.parent / "data" / "digits_split.npz")
    assert count_overlap({"x": (split["test_images"] / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)},
                         data.calib) == 0


def test_calib_file_overlapping_the_data_is_recorded_loudly(tmp_path):
    path = _digits_file(tmp_path, n=100)
    data = _data(_spec(recipe=STATIC, data=str(path), calib_data=str(path)))
    assert data.record["calib"]["overlap_with_eval"] == 64 and data.record["eval"]["n"] == 100
    assert any(n.startswith("CALIBRATION OVERLAPS EVALUATION") for n in data.notes)


def test_training_on_the_test_file_is_refused_naming_both_files(tmp_path):
    test = _digits_file(tmp_path)
    with pytest.raises(TrainOverlapError) as err:
        _data(_spec(recipe=FINETUNE, data=str(test), train_data=str(test)))
    n = get_example("digits-cnn").n_test
    assert f"{n} of its {n} training samples" in str(err.value) and str(test) in str(err.value)
    assert "--allow-train-overlap" in str(err.value)
    partial = _digits_file(tmp_path, "part.npz", n=30)  # a subset of the test file overlaps too
    with pytest.raises(TrainOverlapError, match="30 of its 30"):
        _data(_spec(recipe=FINETUNE, data=str(test), train_data=str(partial)))


def test_allowed_overlap_runs_with_a_recorded_warning(tmp_path):
    test = _digits_file(tmp_path, n=120)
    result = run_job(_spec(recipe=FINETUNE, data=str(test), train_data=str(test), allow_train_overlap=True))
    train = result.metrics["data"]["train"]
    assert train == {"source": str(test), "n": 120, "overlap_with_eval": 120}
    assert any(n.startswith("TRAINED ON EVALUATION DATA") for n in result.metrics["notes"])


def test_example_recovery_trains_on_the_training_split_only():
    data = _data(_spec(recipe=FINETUNE))
    assert data.record["train"]["overlap_with_eval"] == 0 and "training split" in data.record["train"]["source"]
