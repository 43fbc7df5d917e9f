"""benchmarks/compile.py still runs (its --quick configuration) and writes the JSON it promises."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


def test_compile_benchmark_quick(tmp_path):
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    bench = importlib.import_module("compile")
    assert bench.main(["--quick", "--threads", "1", "--results-dir", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "compile.json").read_text())
    assert doc["machine"]["cpu_model"] and doc["load_average"]["cores"] >= 1
    backends = [r["backend"] for case in doc["results"] for r in case["results"]]
    assert backends == ["torchscript", "ort-basic", "ort-extended", "ort-all"]
    for case in doc["results"]:
        for r in case["results"]:
            assert r["status"] == "measured" and r["compile_s"] >= 0 and r["lo"] <= r["speedup"] <= r["hi"]
            assert r["recommended"] == (r["lo"] > 1.0)
