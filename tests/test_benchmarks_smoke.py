"""The benchmark scripts still run: each main() with its --quick configuration, results in a temporary folder.

These check that the scripts work end to end and write the JSON they promise, not the figures themselves
(those depend on the machine; see benchmarks/README.md).
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


def bench(name: str):
    """Import benchmarks/<name>.py as a module."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    return importlib.import_module(name)


def run_quick(name: str, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "results"
    assert bench(name).main(["--quick", "--results-dir", str(out), *extra]) == 0
    doc = json.loads((out / f"{name}.json").read_text())
    assert doc["machine"]["cpu_model"]
    assert doc["load_average"]["cores"] >= 1
    return doc


def test_common_writes_json_atomically_and_reports_goals(tmp_path, capsys):
    common = bench("common")
    path = common.write_results("x", {"value": 1}, tmp_path)
    assert json.loads(path.read_text())["value"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary file left behind
    assert common.goal("speed", 2.5, 3.0, "x", higher_is_better=True)["met"] is False
    assert common.goal("stall", 20.0, 50.0, " ms")["met"] is True
    assert common.goal("open", None, 2.0, " s")["met"] is False
    printed = capsys.readouterr().out
    assert "MISSED" in printed and "met" in printed and "not measured" in printed


def test_speedups_quick(tmp_path):
    doc = run_quick("speedups", tmp_path)
    variants = doc["examples"]["digits-mlp"]["variants"]
    assert [v["key"] for v in variants] == ["ort:fp32", "ort:dyn-pc"]
    for v in variants:
        assert v["p50_ms"] > 0 and v["n"] > 0
        assert v["speedup_vs_ort_fp32"] > 0 and len(v["speedup_vs_ort_fp32_ci95"]) == 2
        assert len(v["accuracy_delta_ci95"]) == 2 and v["size_bytes"] > 0
        assert v["n_eval"] == 360 and v["val_n_eval"] == doc["data"]["validation"]["n"] > 200
        assert len(v["select_speedup_ci95"]) == 2 and len(v["report_speedup_ci95"]) == 2
    assert variants[0]["speedup_vs_runtime_fp32"] == pytest.approx(1.0) and variants[0]["baseline"]
    (child,) = doc["machine_load_while_timing"]["children"]
    assert child["runtime"] == "onnxruntime" and "busy" in child and "other_cpu_pct" in child
    res = doc["examples"]["digits-mlp"]
    best = res["best"]
    if best is None:  # nothing faster than fp32 beyond noise: the reason is given instead of a "best"
        assert res["selection"]["key"] is None and "beyond noise" in res["selection"]["reason"]
    else:
        assert best["key"] == "ort:dyn-pc" and best["validation"]["accuracy_delta_pts"] >= -1.0
        assert best["summary"] and best["goal"] is None  # digits-mlp has no goal


def test_speedups_variant_list_covers_the_recipes():
    speedups = bench("speedups")
    keys = [v.key for v in speedups.variants_for("digits-resnet", recovery_epochs=2)]
    assert keys[0] == "ort:fp32" and "torch:fp32" in keys
    for key in ("ort:dyn-pt", "ort:dyn-pc", "ort:static-pc", "ort:fp16", "torch:bf16", "ort:s70+int8",
                "ort:fp32-export", "ort:s60+finetune2+int8", "torch:s50+finetune2+int8"):
        assert key in keys
    assert "torch:fp16" not in keys  # left out for digits-resnet, with its reason
    assert "ort:s50+distill2+int8" in [v.key for v in speedups.variants_for("digits-cnn", recovery_epochs=2)]
    assert len(set(keys)) == len(keys)
    labels = {v.key: v.label() for v in speedups.variants_for("digits-resnet", recovery_epochs=2)}
    # pruning runs with the recipe's default global scope, and the label says so (never "per layer")
    assert "prune 50% l1-structured (global ranking)" in labels["ort:s50+int8"]
    assert "per layer" not in labels["ort:s60+finetune2+int8"]
    assert "per layer" in speedups.describe({"prune": {"amount": 0.5, "method": "l1-structured", "scope": "layer"}})
    mlp = speedups.variants_for("digits-mlp", recovery=False)
    assert not any("finetune" in v.key for v in mlp)
    assert next(v for v in mlp if v.key == "ort:s50+int8").recipe["quantize"]["mode"] == "dynamic-int8"


def test_scale_quick(tmp_path):
    doc = run_quick("scale", tmp_path)
    if doc["skipped"]:
        pytest.skip("not enough free disk space for the scale benchmark")
    opened = doc["measurement"]["open"]
    assert opened["layers"] == 8 and opened["open_inspect_s"] > 0
    assert doc["model_bytes"] > 40e6
    assert math.isfinite(doc["peak_memory_ratio"])


def test_scale_model_builder_writes_external_data(tmp_path):
    scale = bench("scale")
    path = scale.build_model(tmp_path, (16, 24), layers=3)
    assert (tmp_path / scale.DATA_FILE).stat().st_size == 4 * (16 * 24 * 3)
    from accelstudio.core.model.inspect import inspect_model
    from accelstudio.core.model.loading import load_model

    summary = inspect_model(load_model(path))
    assert [layer.name for layer in summary.layers] == ["fc0", "fc1", "fc2"]


def test_eval_throughput_quick(tmp_path):
    doc = run_quick("eval_throughput", tmp_path)
    res = doc["examples"]["digits-cnn"]
    assert res["rounds"] == 2 and res["ratio"] > 0 and res["samples"] == 640


def test_resnet50_shape_builder(tmp_path):
    gui = bench("gui_responsiveness")
    path = tmp_path / "r.onnx"
    counts = gui.build_resnet50_onnx(path, width_div=8, classes=10)
    assert counts["convs"] == 53 and counts["gemms"] == 1
    from accelstudio.core.model.inspect import inspect_model
    from accelstudio.core.model.loading import load_model

    summary = inspect_model(load_model(path))
    assert len(summary.layers) == 54 and summary.total_params == counts["params"]


@pytest.mark.slow
def test_gui_responsiveness_quick(tmp_path, qapp):
    doc = run_quick("gui_responsiveness", tmp_path)
    assert doc["startup"]["to_plots_from_before_qapplication_s"] > 0
    assert doc["job"]["status"] == "done" and doc["job"]["max_stall_ms"] is not None
    assert doc["big_model"]["layers_shown"] == 54


@pytest.mark.slow
def test_lesson_timings_quick(tmp_path, qapp):
    doc = run_quick("lesson_timings", tmp_path)
    assert [lesson["lesson"] for lesson in doc["lessons"]] == ["pruning", "transfer"]
    assert all(step["status"] == "done" for lesson in doc["lessons"] for step in lesson["steps"])
    assert doc["goals"]["pruning"]["target"] == 120.0


def test_search_quick(tmp_path):
    doc = run_quick("search", tmp_path)
    res = doc["models"]["digits-mlp"]
    assert res["grid_points"] == 4 and res["trials_used"] == 1
    assert res["hypervolume"]["grid"] >= 0 and len(res["hypervolume"]["reference"]) == 2
    assert res["first_valid_s"] is None or res["first_valid_s"] > 0
    assert set(res["goals"]) == {"coverage", "trials"}
