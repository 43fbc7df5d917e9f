"""`accelstudio run`: JSON document, human summary, exit codes, no tracebacks for failed runs."""

from __future__ import annotations

import json
import subprocess
import sys

from accelstudio.cli.run_cmd import default_runtime, format_result, json_document
from accelstudio.core.model.examples import get_example
from accelstudio.core.job import RunResult

FAST = ["--threads", "1", "--warmup", "2", "--time-budget", "2", "--no-artifact"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accelstudio", "run", *args], capture_output=True, text=True,
                          timeout=300)


def test_json_run_of_an_example_gives_the_keys(tmp_path):
    store = tmp_path / "runs.sqlite"
    out = _cli("--example", "digits-mlp", "--repeats", "20", "--json", "--store", str(store), *FAST)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    for key in ("status", "reason", "p50_ms", "p90_ms", "p99_ms", "throughput", "accuracy", "baseline_accuracy",
                "accuracy_delta", "accuracy_delta_ci", "fidelity", "size_bytes", "run_id"):
        assert key in doc, key
    assert doc["status"] == "done" and doc["n"] == 20 and isinstance(doc["run_id"], int)
    assert doc["runtime"]["runtime"] == "onnxruntime"
    assert abs(doc["accuracy"] - get_example("digits-mlp").test_accuracy) < 0.01
    from accelstudio.core.runs.store import RunStore

    assert RunStore(store).get_run(doc["run_id"]).status == "done"


def test_recipe_flags_and_human_summary(tmp_path):
    out = _cli("--example", "digits-cnn", "--quantize", "dynamic-int8", "--per-channel", "--repeats", "20",
               "--store", str(tmp_path / "r.sqlite"), *FAST)
    assert out.returncode == 0, out.stderr
    for text in ("latency", "p50", "p99", "throughput", "accuracy", "baseline", "fidelity", "size",
                 "dynamic-int8"):
        assert text in out.stdout, text


def test_bad_model_file_exits_non_zero_with_the_reason(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00\x01garbage" * 10)
    out = _cli(str(bad), "--json", "--store", str(tmp_path / "r.sqlite"), *FAST)
    assert out.returncode == 1
    assert json.loads(out.stdout)["status"] == "failed"
    assert "broken.onnx" in out.stderr and "Traceback" not in out.stderr + out.stdout


def test_bad_recipe_flag_is_a_usage_error_without_traceback(tmp_path):
    out = _cli("--example", "digits-mlp", "--prune", "5", "--store", str(tmp_path / "r.sqlite"))
    assert out.returncode == 2 and "prune" in out.stderr and "Traceback" not in out.stderr


def test_default_runtime_follows_the_model(tmp_path):
    assert default_runtime("example:digits-cnn") == "onnxruntime"
    assert default_runtime(str(get_example("digits-mlp").onnx_path)) == "onnxruntime"
    assert default_runtime(str(get_example("digits-mlp").weights_path)) == "torch"
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(get_example("digits-mlp").onnx_path.read_bytes())
    assert default_runtime(str(renamed)) == "onnxruntime"


def test_failed_run_summary_shows_the_reason():
    result = RunResult(status="failed", reason="worker crashed: SIGSEGV (segmentation fault) during stage 'x'",
                       spec={"model": "m.onnx", "runtime": {"runtime": "onnxruntime", "device": "cpu"}})
    assert "reason: worker crashed: SIGSEGV" in format_result(result)


def _done(recipe: dict, metrics: dict, run_id: int, latency: float) -> RunResult:
    spec = {"model": "/m/embedder.onnx", "recipe": recipe,
            "runtime": {"runtime": "onnxruntime", "device": "cpu", "threads": 2, "batch": 1}}
    return RunResult(status="done", spec=spec, metrics={"p50_ms": latency, **metrics}, run_id=run_id,
                     latencies_ms=[latency * (1 + 0.01 * (i % 5)) for i in range(100)],
                     model_identity={"path": "/m/embedder.onnx", "sha256": "e" * 64, "name": "embedder.onnx"})


def test_summary_prints_broken_fidelity_data_and_the_named_baseline():
    collapsed = {"fidelity": {"top1_agreement": 0.0, "cosine": 0.39, "max_abs_error": 4.0, "kl_divergence": 0.3,
                              "n_compared": 64, "output_kind": "embedding",
                              "output_reason": "3 dims per sample (16x64): a sequence or map"},
                 "n_eval": 64, "data": {"eval": {"source": "synthesized", "n": 64, "synthesized": True,
                                                 "labeled": False}, "input_shapes": {"ids": [1, 16]}}}
    base = _done({}, {}, 1, 2.0)
    static = _done({"quantize": {"mode": "static-int8"}}, collapsed, 2, 1.0)
    text = format_result(static, base)
    assert "*** BROKEN: cosine 0.390" in text and "keep the widest-ranging layers in float" in text
    assert "vs baseline run 1 (onnxruntime on cpu, 2 threads, batch 1)" in text and "faster (95% CI" in text
    assert "Fidelity: cosine 0.3900 (no labels" in text and "Accuracy" not in text
    assert "random inputs: fidelity only" in text and "ids=1x16" in text
    doc = json_document(static, base)
    assert doc["report"]["broken"]["cause"].startswith("static int8")
    assert doc["report"]["quality"]["headline"] == "cosine" and doc["report"]["baseline"]["run_id"] == 1
    json.dumps(doc, allow_nan=False)
