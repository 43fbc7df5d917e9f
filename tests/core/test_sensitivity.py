"""The per-layer sensitivity study in core: the weights it feeds, the ranking on a model with one clearly
sensitive layer, the budget stop, the torch path restoring its weights, and the rules read from a result."""

from __future__ import annotations

import numpy as np
import pytest

from accelstudio.core.progress import Cancel
from accelstudio.core.studies.registry import STUDIES
from accelstudio.core.studies.sensitivity import run_sensitivity
from accelstudio.core.studies.sensitivity_params import SensitivityError, SensitivityParams
from accelstudio.core.studies.sensitivity_result import amounts_under, most_sensitive, sensitivity_ranking
from accelstudio.core.studies.sensitivity_variants import ScreenedLayer, pruned_weight, quantized_weight
from tests.core.sensitivity_models import SENSITIVE, labeled_npz, sensitive_mlp


def _run(params: SensitivityParams, seen: list | None = None) -> dict:
    return run_sensitivity(params.to_dict(), (seen.append if seen is not None else (lambda e: None)), Cancel())


def test_registered_as_a_worker_study():
    assert STUDIES["sensitivity"] is run_sensitivity


def test_pruned_weight_zeroes_the_amount_of_the_layer_alone():
    w = np.random.default_rng(0).normal(size=(8, 12)).astype(np.float32)
    layer = ScreenedLayer("fc", "linear", w, None, 0)
    half = pruned_weight(layer, 0.5, "l1-unstructured")
    assert (half == 0).sum() == 48 and np.abs(half[half != 0]).min() >= np.abs(w[half == 0]).max()
    rows = pruned_weight(layer, 0.25, "l1-structured")
    assert (np.abs(rows).sum(axis=1) == 0).sum() == 2  # 2 of 8 output channels, whole rows
    two_four = pruned_weight(layer, 0.5, "2:4")
    assert ((two_four.reshape(8, 3, 4) == 0).sum(axis=2) == 2).all()
    assert (w == layer.weight).all()  # the stored weight is untouched


def test_quantized_weight_lands_on_the_modes_grid():
    w = np.random.default_rng(1).normal(size=(6, 40)).astype(np.float32)
    layer = ScreenedLayer("fc", "linear", w, None, 0)
    q4 = quantized_weight(layer, {"mode": "sim", "bits": 4, "per_channel": True})
    assert all(len(np.unique(row)) <= 15 for row in q4) and np.abs(q4 - w).max() < np.abs(w).max() / 7
    half = quantized_weight(layer, {"mode": "fp16"})
    assert np.array_equal(half, w.astype(np.float16).astype(np.float32))
    int8 = quantized_weight(layer, {"mode": "dynamic-int8", "per_channel": False})
    assert len(np.unique(int8)) <= 255 and not np.array_equal(int8, w)


def test_the_clearly_sensitive_layer_ranks_first(tmp_path):
    model = sensitive_mlp(tmp_path)
    seen: list = []
    result = _run(SensitivityParams(model=str(model), samples=64, budget_s=120), seen)
    assert result["ranking"][0] == SENSITIVE and set(result["ranking"]) == {"fc1", "fc2", "fc3"}
    assert result["metric"]["name"] == "top1" and result["samples"]["n"] == 64
    assert result["samples"]["synthesized"] is True and "synthesized" in result["samples"]["split"]
    rows = {r["layer"]: r for r in result["rows"]}
    assert [r["layer"] for r in result["rows"]] == ["fc1", "fc2", "fc3"]  # model order
    assert rows["fc2"]["cells"]["prune 90%"]["loss"] > rows["fc1"]["cells"]["prune 90%"]["loss"]
    assert all(0.0 <= (r["latency_share"] or 0.0) <= 1.0 for r in rows.values())
    assert sum(r["latency_share"] or 0.0 for r in rows.values()) > 0  # the profile found the MatMuls
    assert sum(1 for e in seen if e.partial.get("row")) == 3  # one partial row per layer


def test_accuracy_on_labeled_data_and_quantization_columns(tmp_path):
    model = sensitive_mlp(tmp_path)
    data = labeled_npz(tmp_path)
    result = _run(SensitivityParams(model=str(model), data=str(data), amounts=(0.9,),
                                    quantize={"mode": "sim", "bits": 2, "per_channel": False}, samples=96))
    assert result["metric"]["name"] == "accuracy" and result["baseline"]["accuracy"] == 1.0
    assert result["samples"]["labeled"] and result["samples"]["source"] == str(data)
    labels = [s["label"] for s in result["settings"]]
    assert labels == ["prune 90%", "sim-2 alone", "float alone"]
    fc2 = next(r for r in result["rows"] if r["layer"] == "fc2")
    assert fc2["cells"]["sim-2 alone"]["accuracy"] < 1.0
    keep = fc2["cells"]["float alone"]  # points recovered against every layer quantized
    assert keep["loss"] == pytest.approx(result["all_quantized"]["loss"] - keep["raw"]["loss"], abs=1e-5)
    assert any("activation quantization is not simulated" in n for n in result["notes"])


def test_budget_stops_cleanly_and_marks_the_rest(tmp_path):
    model = sensitive_mlp(tmp_path)
    result = _run(SensitivityParams(model=str(model), samples=64, budget_s=1e-6))
    assert result["stopped_at_budget"] is True and result["ranking"] == []
    assert result["not_screened"] == ["fc1", "fc2", "fc3"]
    assert all(not r["screened"] and r["cells"] == {} for r in result["rows"])
    assert result["samples"]["n"] == 8  # lowered to the floor first
    assert any("budget" in n for n in result["notes"])


def test_torch_backend_swaps_weights_and_restores_them():
    from accelstudio.core.model.loading import load_example

    result = _run(SensitivityParams(model="example:digits-mlp", backend="torch", amounts=(0.5, 0.9),
                                    samples=32, budget_s=120))
    assert result["model"]["backend"] == "torch" and len(result["ranking"]) == len(result["rows"])
    assert result["samples"]["split"].startswith("the example's calibration split")
    # a second run on a fresh module gives the same cells: nothing leaked from one variant into the next
    again = _run(SensitivityParams(model="example:digits-mlp", backend="torch", amounts=(0.5, 0.9),
                                   samples=32, budget_s=120))
    assert [r["cells"] for r in again["rows"]] == [r["cells"] for r in result["rows"]]
    assert load_example("digits-mlp", "torch") is not None


def test_result_rules_ranking_top_k_and_amounts():
    result = {"settings": [{"kind": "prune", "label": "prune 25%", "amount": 0.25},
                           {"kind": "prune", "label": "prune 50%", "amount": 0.5}],
              "ranking": ["b", "a"],
              "rows": [{"layer": "a", "screened": True,
                        "cells": {"prune 25%": {"loss": 0.1}, "prune 50%": {"loss": 0.4}}},
                       {"layer": "b", "screened": True,
                        "cells": {"prune 25%": {"loss": 2.0}, "prune 50%": {"loss": 9.0}}},
                       {"layer": "c", "screened": False, "cells": {}}]}
    assert sensitivity_ranking(result) == ["b", "a"] and most_sensitive(result, 1) == ["b"]
    assert amounts_under(result, 0.5) == {"a": 0.5, "b": 0.0}


def test_params_refuse_what_cannot_run():
    with pytest.raises(SensitivityError, match="nothing to screen"):
        SensitivityParams(model="m.onnx", prune_method="").validate()
    with pytest.raises(SensitivityError, match="between 0 and 1"):
        SensitivityParams(model="m.onnx", amounts=(0.5, 1.0)).validate()
    with pytest.raises(SensitivityError, match="unknown sensitivity setting"):
        SensitivityParams.from_dict({"model": "m.onnx", "amount": 0.5})


def test_given_input_shapes_leave_the_batch_to_the_study(tmp_path):
    model = sensitive_mlp(tmp_path)
    result = _run(SensitivityParams(model=str(model), input_shapes={"x": [1, 16]}, amounts=(0.5,), samples=40,
                                    batch=16))
    assert result["samples"]["n"] == 40 and result["ranking"]
