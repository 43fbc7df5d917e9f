"""`accelstudio explain RUN_ID [--json]` on runs stored by `accelstudio run --profile`."""

from __future__ import annotations

import json
import subprocess
import sys

FAST = ["--example", "digits-cnn", "--threads", "1", "--warmup", "2", "--repeats", "30", "--time-budget", "0.5",
        "--no-artifact", "--no-eval", "--profile"]


def _cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accelstudio", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_explain_json_names_the_cause_and_the_breakdown(tmp_path, monkeypatch):
    import os

    env = {**os.environ, "ACCELSTUDIO_HOME": str(tmp_path / "home")}
    store = str(tmp_path / "runs.sqlite")
    for extra in ([], ["--quantize", "dynamic-int8", "--per-channel"]):
        out = _cli("run", *FAST, *extra, "--store", store, env=env)
        assert out.returncode == 0, out.stderr
    out = _cli("explain", "2", "--json", "--store", store, env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["run_id"] == 2 and doc["baseline_id"] == 1
    assert "dynamic-int8-convs-fp32" in [c["code"] for c in doc["causes"]]
    assert all(c["evidence"] and c["advice"] for c in doc["causes"])
    assert any(r["op_type"] == "Conv" and r["precision"] == "fp32" for r in doc["rows"])
    assert doc["bound"]["max_speedup"] >= 1.0 and doc["speedup"]["verdict"] in ("faster", "within noise", "slower")
    text = _cli("explain", "2", "--store", store, env=env)
    assert "Causes:" in text.stdout and "instead:" in text.stdout
    base = _cli("explain", "1", "--json", "--store", store, env=env)
    assert "baseline" in json.loads(base.stdout)["summary"]
    missing = _cli("explain", "9", "--store", store, env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
