"""The rules by which benchmarks/speedups.py chooses a best recipe and calls a goal met (benchmarks/selection.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def sel():
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    return importlib.import_module("selection")


def row(key, speed, ci, val_delta, test_delta=0.0, baseline=False):
    return {"key": key, "select_speedup": speed, "select_speedup_ci95": ci, "val_accuracy_delta_pts": val_delta,
            "accuracy_delta_pts": test_delta, "baseline": baseline}


def test_selection_uses_validation_not_test_and_skips_noise(sel):
    rows = [
        row("ort:fp32", 1.0, [0.97, 1.03], 0.0, baseline=True),
        # fastest by point estimate, but its interval reaches below 1.0: within noise, never a win
        row("noisy", 2.3, [0.8, 4.0], 0.0),
        # fast and perfect on test, but it drops 3 pts on validation: choosing it would be choosing on test
        row("test-lucky", 2.0, [1.8, 2.2], -3.0, test_delta=+0.5),
        row("honest", 1.5, [1.3, 1.7], -0.5, test_delta=-2.0),
        row("slower-ok", 1.2, [1.1, 1.3], 0.0),
    ]
    choice = sel.select_best(rows, 1.0)
    assert choice["key"] == "honest"
    assert choice["eligible"] == ["honest", "slower-ok"]


def test_selection_reports_none_when_nothing_beats_the_baseline_beyond_noise(sel):
    rows = [row("ort:fp32", 1.0, [0.98, 1.02], 0.0, baseline=True), row("a", 1.05, [0.95, 1.2], 0.0),
            row("b", 0.5, [0.45, 0.55], 0.0), row("c", 3.0, [2.5, 3.5], -5.0)]
    choice = sel.select_best(rows, 1.0)
    assert choice["key"] is None
    assert "2 within noise or slower, 1 too inaccurate" in choice["reason"]
    # the baseline never wins, even when it is the only row with a "faster" interval
    assert sel.select_best([row("ort:fp32", 1.2, [1.1, 1.3], 0.0, baseline=True)], 1.0)["key"] is None


def test_speed_verdict(sel):
    assert sel.speed_verdict([1.01, 1.2]) == "faster"
    assert sel.speed_verdict([0.9, 1.1]) == "within noise"
    assert sel.speed_verdict([0.5, 0.9]) == "slower"
    assert sel.speed_verdict([]) == "unknown"


def test_goal_met_only_when_both_lower_bounds_support_it(sel):
    ok = sel.meets_goal(4.0, [3.5, 4.5], -0.3, [-0.8, 0.0], 360, 3, 3.0, 1.0)
    assert ok["met"] and ok["text"].startswith("met:")
    # point estimate above 3x but the interval reaches below it
    slow = sel.meets_goal(3.2, [2.6, 3.9], -0.3, [-0.8, 0.0], 360, 3, 3.0, 1.0)
    assert not slow["met"] and not slow["speed_shown"] and "speed-up >= 3x not shown" in slow["text"]
    # accuracy point estimate within 1 pt, interval not: says how many test samples would be needed
    wide = sel.meets_goal(4.0, [3.5, 4.5], -0.28, [-1.4, +0.8], 360, 10, 3.0, 1.0)
    assert not wide["met"] and wide["speed_shown"] and not wide["accuracy_shown"]
    assert "not shown with 360 test samples" in wide["text"] and wide["samples_needed"] > 360
    assert f"{wide['samples_needed']:,}" in wide["text"]
    # an observed drop beyond the limit: no sample count helps
    bad = sel.meets_goal(4.0, [3.5, 4.5], -2.0, [-3.5, -0.6], 360, 12, 3.0, 1.0)
    assert bad["samples_needed"] is None and "would not change that" in bad["text"]
    assert not sel.meets_goal(None, None, None, None, 0, 0, 3.0, 1.0)["met"]


def test_samples_needed_matches_the_interval_it_predicts(sel):
    # 10 disagreements of 360, no net change: half-width 1.96*sqrt(10/360)/sqrt(n) = 1 pt at n ~ 1,067
    need = sel.samples_needed(0.0, 360, 10, 1.0)
    assert need == pytest.approx(1.96 ** 2 * (10 / 360) / 0.01 ** 2, rel=0.01)
    # simulate at that size: the normal interval's lower bound sits at about -1 pt
    rng = np.random.default_rng(0)
    p = 10 / 360 / 2
    lows = []
    for _ in range(200):
        d = rng.choice([-1, 0, 1], size=need, p=[p, 1 - 2 * p, p])
        lows.append(d.mean() - 1.96 * d.std() / np.sqrt(need))
    assert np.median(lows) * 100 == pytest.approx(-1.0, abs=0.1)
    assert sel.samples_needed(0.0, 360, 0, 1.0) == 360  # no disagreement: the current size suffices
    assert sel.samples_needed(-1.5, 360, 10, 1.0) is None


def test_validation_split_is_stratified_disjoint_and_fixed(sel):
    labels = np.repeat(np.arange(10), 20)
    fit, val = sel.validation_split(labels, 0.2, seed=1)
    assert len(np.intersect1d(fit, val)) == 0 and len(fit) + len(val) == labels.size
    assert np.all(np.bincount(labels[val]) == 4)
    assert np.array_equal(val, sel.validation_split(labels, 0.2, seed=1)[1])
    assert not np.array_equal(val, sel.validation_split(labels, 0.2, seed=2)[1])


def test_round_bootstrap_pairs_rounds_and_brackets_the_ratio(sel):
    rng = np.random.default_rng(0)
    base = [list(2.0 + 0.05 * rng.standard_normal(50)) for _ in range(6)]
    var = [list(1.0 + 0.05 * rng.standard_normal(50)) for _ in range(6)]
    lo, hi = sel.round_bootstrap(base, var)
    assert lo < sel.median_ratio(base, var) < hi and 1.8 < lo and hi < 2.2
    assert sel.round_bootstrap(base[:1], var[:1]) == []


def test_speedups_choose_on_even_rounds_and_report_on_odd_ones(sel):
    speedups = importlib.import_module("speedups")
    base = [[2.0] * 20 for _ in range(6)]
    # the variant was lucky on the even rounds (4x) and only 2x on the odd ones the report uses
    var = [[0.5] * 20 if r % 2 == 0 else [1.0] * 20 for r in range(6)]
    timings = {"ort:fp32": {"rounds": base}, "ort:x": {"rounds": var}}
    by_key = {"ort:fp32": {"key": "ort:fp32", "runtime": "onnxruntime", "p50_ms": 2.0},
              "ort:x": {"key": "ort:x", "runtime": "onnxruntime", "p50_ms": 0.75}}
    row = by_key["ort:x"]
    speedups._speedups(row, by_key, timings)
    assert row["select_speedup"] == pytest.approx(4.0) and row["report_speedup"] == pytest.approx(2.0)
    assert row["report_speedup_ci95"] == pytest.approx([2.0, 2.0]) and row["vs_ort_interleaved"]
    row.update(accuracy_delta_pts=-0.28, accuracy_delta_ci95=[-0.83, 0.0], n_eval=360,
               discordant={"baseline_only": 1, "new_only": 0}, label="x")
    rep = speedups._reported(row, speedups.GOAL_EXAMPLE)
    assert rep["speedup"] == pytest.approx(2.0) and not rep["goal"]["met"]  # 2x on held-out rounds < 3x
    assert "speed-up >= 3x not shown" in rep["goal"]["text"]
