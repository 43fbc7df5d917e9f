"""`accelstudio run --profile` prints the slowest layers with precision and bound; `accelstudio roofline`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from accelstudio.core.measure import ceilings

FAST = ["--threads", "1", "--warmup", "2", "--repeats", "20", "--time-budget", "1", "--no-artifact",
        "--max-samples", "64"]


@pytest.fixture
def cached_roofs(monkeypatch):
    """This machine's roofs measured small and cached in the test's home, so the commands read the cache."""
    monkeypatch.setattr(ceilings, "GEMM_N", 128)
    monkeypatch.setattr(ceilings, "COPY_BYTES", 4 * 2**20)
    return ceilings.measure_ceilings(threads=1)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accelstudio", *args], capture_output=True, text=True, timeout=300)


def test_run_profile_prints_the_top_layers_beside_the_baseline(tmp_path, cached_roofs):
    store = str(tmp_path / "r.sqlite")
    base = _cli("run", "--example", "digits-mlp", "--profile", "--json", "--store", store, *FAST)
    assert base.returncode == 0, base.stderr
    doc = json.loads(base.stdout)
    assert doc["profile"]["source"] == "onnxruntime" and doc["roofline"]["layers"]
    assert doc["runtime"]["profile"] is True
    out = _cli("run", "--example", "digits-mlp", "--quantize", "dynamic-int8", "--per-channel", "--profile",
               "--store", store, *FAST)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if "baseline ms" in line) + 1:]
    fc1 = next(line for line in table if line.split()[0] == "fc1")
    assert "int8" in fc1 and fc1.split()[-2] in ("compute", "memory", "overhead")
    assert f"baseline: run {doc['run_id']}" in out.stdout and "whole model" in out.stdout


def test_roofline_command_reads_the_cached_roofs(cached_roofs):
    out = _cli("roofline", "--threads", "1", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["cached"] is True and doc["fp32_gflops"] == pytest.approx(cached_roofs.fp32_gflops)
    text = _cli("roofline", "--threads", "1").stdout
    assert "fp32" in text and "GB/s" in text and "from the cache" in text
    bad = _cli("roofline", "--threads", "-1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
