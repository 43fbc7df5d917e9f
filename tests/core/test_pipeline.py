"""run_job end to end in-process: stages, accuracy against the example's own figure, recipes, misfits, NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelstudio.core.errors import DatasetError, RuntimeUnavailableError
from accelstudio.core.model.examples import get_example
from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.model.loading import file_sha256
from accelstudio.core.paths import artifacts_dir
from accelstudio.core.pipeline import STAGES, run_job
from accelstudio.core.recipe import Recipe
from worker_models import nan_model

FAST = RuntimeSettings(threads=1, warmup=2, repeats=20, time_budget_s=2.0)


def _spec(model="example:digits-mlp", recipe=None, runtime="onnxruntime", **kw) -> JobSpec:
    from dataclasses import replace

    return JobSpec(model=model, recipe=Recipe.from_dict(recipe or {}), runtime=replace(FAST, runtime=runtime), **kw)


def _stages(events) -> list[str]:
    seen: list[str] = []
    for e in events:
        if not seen or seen[-1] != e.stage:
            seen.append(e.stage)
    return seen


def test_baseline_run_matches_the_example_and_reports_everything():
    events = []
    result = run_job(_spec(), progress=events.append)
    m = result.metrics
    info = get_example("digits-mlp")
    assert result.status == "done"
    assert _stages(events) == list(STAGES)
    assert m["accuracy"] == pytest.approx(info.test_accuracy, abs=0.01)
    assert m["baseline_accuracy"] == m["accuracy"] and m["accuracy_delta"] == 0.0
    assert m["fidelity"]["top1_agreement"] == 1.0 and m["nonfinite_outputs"] == 0
    assert m["n"] == len(result.latencies_ms) == 20
    assert m["p50_ms"] <= m["p90_ms"] <= m["p99_ms"] and m["cold_start_ms"] > 0 and m["load_ms"] > 0
    assert m["size_bytes"] == m["baseline_size_bytes"] > 0 and m["params"] == m["baseline_params"] > 0
    assert m["flops"] > 0
    assert result.model_identity["sha256"] == file_sha256(Path(result.model_identity["path"]))
    assert Path(result.artifact).is_file() and Path(result.artifact).is_relative_to(artifacts_dir())
    assert result.environment and result.created
    partials = [e.partial for e in events if e.stage == "benchmark" and "latencies_ms" in e.partial]
    assert sum(len(p["latencies_ms"]) for p in partials) == 20


def test_int8_recipe_keeps_accuracy_and_shrinks_the_model():
    result = run_job(_spec("example:digits-cnn", {"quantize": {"mode": "dynamic-int8", "per_channel": True}},
                           keep_artifact=False))
    m = result.metrics
    assert result.artifact is None
    assert m["baseline_accuracy"] == pytest.approx(get_example("digits-cnn").test_accuracy, abs=0.01)
    assert abs(m["accuracy_delta"]) <= 2.0 and m["accuracy_delta_ci"][0] <= m["accuracy_delta"] <= m["accuracy_delta_ci"][1]
    assert m["size_bytes"] < m["baseline_size_bytes"] / 2
    assert 0.9 < m["fidelity"]["cosine"] <= 1.0 + 1e-9


def test_pruning_on_torch_reports_layers_and_sparsity():
    result = run_job(_spec(recipe={"prune": {"amount": 0.5}}, runtime="torch", keep_artifact=False))
    m = result.metrics
    assert m["sparsity"] == pytest.approx(0.5, abs=0.05)
    assert result.layers and {"name", "requested", "achieved", "params_before", "params_after"} <= set(result.layers[0])
    assert m["accuracy"] > 0.5 and m["baseline_accuracy"] == pytest.approx(get_example("digits-mlp").test_accuracy,
                                                                            abs=0.01)


def test_no_eval_skips_accuracy():
    result = run_job(_spec(evaluate=False, keep_artifact=False))
    assert "accuracy" not in result.metrics and result.metrics["nonfinite_outputs"] == 0


def test_data_that_does_not_fit_fails_before_any_work(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((5, 3), np.float32), labels=np.zeros(5, np.int64))
    events = []
    with pytest.raises(DatasetError, match="bad.npz"):
        run_job(_spec(data=str(bad)), progress=events.append)
    assert "compress" not in _stages(events)


def test_onnx_model_on_torch_fails_at_load():
    with pytest.raises(RuntimeUnavailableError, match="onnxruntime"):
        run_job(_spec(str(get_example("digits-mlp").onnx_path), runtime="torch"))


def test_nan_outputs_are_counted_not_averaged(tmp_path):
    result = run_job(_spec(str(nan_model(tmp_path / "nan.onnx")), keep_artifact=False))
    m = result.metrics
    assert m["nonfinite_outputs"] == m["n_eval"] > 0
    assert m["fidelity"]["cosine"] is None
    assert any("NaN" in note for note in m["notes"])
    assert any("no labels" in note for note in m["notes"])
