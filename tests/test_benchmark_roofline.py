"""benchmarks/roofline.py still runs (--quick) and writes the JSON it promises; figures are the script's job."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


def test_roofline_benchmark_quick(tmp_path):
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    module = importlib.import_module("roofline")
    from accelstudio.core.measure import ceilings

    saved = (ceilings.GEMM_N, ceilings.COPY_BYTES)
    try:
        assert module.main(["--quick", "--threads", "1", "--results-dir", str(tmp_path)]) == 0
    finally:
        ceilings.GEMM_N, ceilings.COPY_BYTES = saved
    doc = json.loads((tmp_path / "roofline.json").read_text())
    assert doc["ceilings"]["fp32_gflops"] > 0 and doc["cached"] is True
    assert doc["ceilings_goal"]["target"] == 10.0
    labels = [m["label"] for m in doc["models"]]
    assert labels == ["digits-mlp fp32", "digits-mlp static-int8 per-channel"]
    for m in doc["models"]:
        assert sum(m["share_by_bound"].values()) == pytest.approx(1.0, abs=1e-6)
    assert doc["models"][1]["conversions"]["count"] >= 1

