"""benchmarks/sensitivity.py: its rank correlation, and its --quick run end to end (results in tmp_path)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


def bench():
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    return importlib.import_module("sensitivity")


def test_spearman_ranks_ties_and_refuses_constants():
    spearman = bench().spearman
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9487, abs=1e-4)  # tied ranks share 1.5
    assert spearman([1, 1, 1], [1, 2, 3]) is None


@pytest.mark.slow  # about a minute: a study and five real runs
def test_quick_run_writes_its_figures(tmp_path):
    out = tmp_path / "results"
    assert bench().main(["--quick", "--results-dir", str(out)]) == 0
    doc = json.loads((out / "sensitivity.json").read_text())
    (example,) = doc["examples"].values()
    assert len(example["pipeline_mean_drop_pts"]) == 2 and example["study"]["ranking"]
    assert example["uniform"]["0.75"]["uniform"]["n_eval"] == 360
    assert doc["load_average"]["cores"] >= 1 and doc["machine"]["cpu_model"]
