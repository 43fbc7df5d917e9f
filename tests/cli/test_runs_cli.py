"""`accelstudio runs list|show|export|delete` and `accelstudio compare` on a store filled by the test."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from accelstudio.core.job import JobSpec, RunResult, RuntimeSettings
from accelstudio.core.recipe import Recipe
from accelstudio.core.runs.store import RunStore


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accelstudio", *args], capture_output=True, text=True,
                          timeout=180)


def _run(recipe: Recipe, p50: float, accuracy: float, size: int, dtype: str, sparsity: float,
         latency_shift: float) -> RunResult:
    spec = JobSpec("example:digits-cnn", recipe=recipe, runtime=RuntimeSettings(threads=2, batch=8)).to_dict()
    metrics = {"p50_ms": p50, "p90_ms": p50 * 1.2, "p99_ms": p50 * 1.5, "mean_ms": p50, "std_ms": 0.01, "n": 200,
               "throughput": 8 / p50 * 1000, "accuracy": accuracy, "baseline_accuracy": 0.9972,
               "accuracy_delta": (accuracy - 0.9972) * 100, "accuracy_delta_ci": [-0.9, 0.2],
               "delta_significant": False, "n_eval": 360, "size_bytes": size, "params": 38282,
               "sparsity": sparsity}
    layers = [{"name": "conv1", "params": 160, "sparsity": sparsity, "dtype": dtype},
              {"name": "fc2", "params": 1290, "sparsity": 0.0, "dtype": "float32"}]
    latencies = [p50 + latency_shift * ((i % 7) - 3) / 3 for i in range(200)]
    return RunResult("done", spec=spec, metrics=metrics, latencies_ms=latencies, layers=layers,
                     environment={"cpu": {"model": "Test CPU", "flags": {"avx2": True}}, "threads": 2,
                                  "versions": {"torch": "2.13.0"}, "python": "3.11"},
                     model_identity={"name": "digits-cnn", "path": "/m/model.onnx", "sha256": "c" * 64})


@pytest.fixture()
def filled_store(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    base = store.add_run(_run(Recipe(), 0.40, 0.9972, 153_128, "float32", 0.0, 0.01))
    quant = Recipe.from_dict({"prune": {"amount": 0.5}, "quantize": {"mode": "dynamic-int8", "per_channel": True}})
    fast = store.add_run(_run(quant, 0.20, 0.9944, 40_000, "int8", 0.5, 0.01))
    failed = store.add_run(RunResult("failed", reason="worker crashed (exit -11)"))
    return path, base, fast, failed


def test_list_table_and_json(filled_store):
    path, base, fast, failed = filled_store
    result = run_cli("runs", "list", "--store", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "CREATED", "(UTC)"] and set(lines[1]) <= {"-", " "}
    assert [int(line.split()[0]) for line in lines[2:]] == [failed, fast, base]
    assert "prune 50%" in lines[3] and "99.44%" in lines[3] and "-0.28" in lines[3] and "40.00 kB" in lines[3]
    assert "baseline" in lines[4] and "0.400" in lines[4]
    status_col = lines[0].index("STATUS")
    assert [line[status_col:].split()[0] for line in lines[2:]] == ["failed", "done", "done"]  # aligned

    result = run_cli("runs", "list", "--limit", "2", "--json", "--store", str(path))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [r["run_id"] for r in doc["runs"]] == [failed, fast] and doc["store"] == str(path)
    assert doc["runs"][1]["report"]["baseline"]["run_id"] == base  # found beyond the listed runs


def test_show_table_and_json(filled_store):
    path, base, fast, _ = filled_store
    result = run_cli("runs", "show", str(fast), "--store", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"Run {fast}: done")
    assert "0.200 / 0.240 / 0.300" in out and "-0.28 pts (95% CI -0.90..+0.20: within noise)" in out
    assert "on 360 samples" in out
    assert f"vs baseline run {base} (onnxruntime on cpu, 2 threads, batch 8): 2.00x faster" in out
    assert "Test CPU" in out and "conv1" in out and "int8" in out

    result = run_cli("runs", "show", str(base), "--json", "--store", str(path))
    doc = json.loads(result.stdout)
    assert doc["run_id"] == base and doc["metrics"]["p50_ms"] == 0.40 and doc["layers"][0]["name"] == "conv1"


def test_compare_side_by_side_and_layer_diff(filled_store):
    path, base, fast, _ = filled_store
    result = run_cli("compare", str(base), str(fast), "--store", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    p50 = next(line for line in out.splitlines() if line.startswith("latency p50"))
    assert "0.400" in p50 and "0.200" in p50 and "2.00x faster" in p50 and "95% CI" in p50
    acc = next(line for line in out.splitlines() if line.startswith("accuracy "))
    assert "-0.28 pts" in acc and "unpaired" in acc
    assert "-73.9%" in next(line for line in out.splitlines() if line.startswith("size"))
    assert "* conv1" in out and "  fc2" in out and "float32" in out and "int8" in out

    result = run_cli("compare", str(base), str(fast), "--json", "--store", str(path))
    doc = json.loads(result.stdout)
    assert [r["id"] for r in doc["runs"]] == [base, fast]
    rows = {m["metric"]: m for m in doc["metrics"]}
    assert rows["recipe"]["change"] == "differs" and rows["threads"]["change"] == "same"
    layers = {layer["name"]: layer for layer in doc["layers"]}
    assert layers["conv1"]["changed"] and layers["conv1"]["b"] == {"sparsity": 0.5, "params": 160, "dtype": "int8"}
    assert not layers["fc2"]["changed"]


def test_export_then_delete(filled_store, tmp_path):
    path, base, fast, failed = filled_store
    result = run_cli("runs", "export", "--csv", str(tmp_path / "runs.csv"), "--ids", str(fast), str(base),
                     "--store", str(path))
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "runs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["id"]) for r in rows] == [fast, base] and rows[0]["threads"] == "2" and rows[0]["batch"] == "8"

    result = run_cli("runs", "export", "--json", str(tmp_path / "runs.json"), "--store", str(path))
    assert result.returncode == 0 and len(json.loads((tmp_path / "runs.json").read_text())["runs"]) == 3

    result = run_cli("runs", "delete", str(failed), "--store", str(path))
    assert result.returncode == 0 and f"deleted run {failed}" in result.stdout
    assert [r.run_id for r in RunStore(path).list_runs()] == [fast, base]


def test_errors_are_one_line_with_exit_code_2(filled_store, tmp_path):
    path, *_ = filled_store
    result = run_cli("runs", "show", "999", "--store", str(path))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "no run with id 999" in result.stderr and "Traceback" not in result.stderr
    junk = tmp_path / "notes.txt"
    junk.write_text("not a store")
    result = run_cli("compare", "1", "2", "--store", str(junk))
    assert result.returncode == 2 and "not a SQLite database" in result.stderr and str(junk) in result.stderr
    assert junk.read_text() == "not a store"


def test_empty_store_says_so(tmp_path):
    result = run_cli("runs", "list", "--store", str(tmp_path / "new.sqlite"))
    assert result.returncode == 0 and result.stdout.startswith("no runs in")


def test_exports_carry_the_report(filled_store, tmp_path):
    path, base, fast, _ = filled_store
    result = run_cli("runs", "export", "--csv", str(tmp_path / "runs.csv"), "--ids", str(fast), "--store", str(path))
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "runs.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["baseline_run"] == str(base) and row["speed_verdict"] == "faster"
    assert float(row["speedup_ci_lo"]) <= float(row["speedup"]) <= float(row["speedup_ci_hi"])
    assert row["quality_headline"] == "accuracy" and row["accuracy_verdict"] == "within noise"
    assert row["broken"] == "False" and row["model_key"] == "example:digits-cnn"
    result = run_cli("runs", "export", "--json", str(tmp_path / "runs.json"), "--store", str(path))
    doc = json.loads((tmp_path / "runs.json").read_text())
    fast_doc = next(r for r in doc["runs"] if r["run_id"] == fast)
    assert fast_doc["report"]["baseline"]["run_id"] == base
    assert fast_doc["report"]["verdict_line"].startswith(f"vs baseline run {base}")


def test_studies_lists_each_study_with_its_trials(filled_store, tmp_path):
    path = filled_store[0]
    store = RunStore(path)
    sens = store.add_study("sensitivity", {"samples": 8}, {"name": "digits-cnn", "sha256": "c" * 64})
    search = store.add_study("search", {"budget_s": 60}, {"name": "digits-cnn", "sha256": "c" * 64})
    store.add_run(_run(Recipe(), 0.05, 0.99, 150_000, "float32", 0.0, 0.001), study_id=search)
    store.add_run(_run(Recipe(), 0.04, 0.99, 150_000, "float32", 0.0, 0.001), study_id=search)
    store.update_study(search, {"best": None}, "stopped")
    out = run_cli("runs", "studies", "--store", str(path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "KIND", "STATUS"]
    assert lines[2].split()[:3] == [str(search), "search", "stopped"] and lines[2].split()[-1] == "2"
    assert lines[3].split()[:3] == [str(sens), "sensitivity", "running"] and lines[3].split()[-1] == "0"
    doc = json.loads(run_cli("runs", "studies", "--kind", "search", "--json", "--store", str(path)).stdout)
    assert [(s["study_id"], s["trials"], s["params"]) for s in doc["studies"]] == [(search, 2, {"budget_s": 60})]
    empty = run_cli("runs", "studies", "--store", str(tmp_path / "none.db"))
    assert empty.returncode == 0 and "no studies" in empty.stdout
