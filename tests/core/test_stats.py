"""Calibration of the intervals and tests behind every verdict, on simulated cases with fixed seeds: the
paired accuracy change (Newcombe interval + exact McNemar) and the speed-up interval on correlated timings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accelstudio.core.measure.evaluate import wilson_interval as evaluate_wilson
from accelstudio.core.measure.stats import (block_length, mcnemar_exact, paired_accuracy_change, speedup_interval,
                                    t_quantile_975, wilson_interval)


def test_four_lost_zero_gained_is_within_noise():
    change = paired_accuracy_change(352, 4, 0, 4)
    assert change.p_value == pytest.approx(0.125) and change.verdict == "within noise"
    assert change.lo_pts < 0 < change.hi_pts
    assert paired_accuracy_change(340, 12, 1, 7).verdict == "real drop"
    assert paired_accuracy_change(340, 1, 12, 7).verdict == "real gain"


def _simulate(rng, n, p_lost, p_gained, p_both, trials):
    probs = [p_both, p_lost, p_gained, 1 - p_both - p_lost - p_gained]
    return [paired_accuracy_change(*map(int, c)) for c in rng.multinomial(n, probs, size=trials)]


@pytest.mark.parametrize("n,p_disc", [(30, 0.1), (60, 0.05), (360, 0.02), (360, 0.1), (2000, 0.01)])
def test_no_change_is_called_real_at_most_five_percent_of_the_time(n, p_disc):
    results = _simulate(np.random.default_rng(12), n, p_disc / 2, p_disc / 2, 0.9 - p_disc, 2000)
    assert np.mean([r.verdict != "within noise" for r in results]) <= 0.05 + 0.012  # nominal + MC error


@pytest.mark.parametrize("n,p_lost,p_gained", [(360, 0.03, 0.01), (360, 0.02, 0.0), (1000, 0.05, 0.02),
                                               (100, 0.1, 0.05), (360, 0.011, 0.0)])
def test_paired_interval_covers_the_true_change(n, p_lost, p_gained):
    truth = (p_gained - p_lost) * 100
    results = _simulate(np.random.default_rng(7), n, p_lost, p_gained, 0.85, 2000)
    assert np.mean([r.lo_pts <= truth <= r.hi_pts for r in results]) >= 0.93


def test_a_real_drop_of_three_points_on_a_thousand_samples_is_found():
    results = _simulate(np.random.default_rng(5), 1000, 0.04, 0.01, 0.85, 500)
    assert np.mean([r.verdict == "real drop" for r in results]) > 0.8


def test_one_wilson_implementation():
    assert evaluate_wilson is wilson_interval
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert mcnemar_exact(4, 0) == pytest.approx(0.125)


def test_t_quantile_matches_tables():
    for df, table in ((4, 2.776), (5, 2.571), (10, 2.228), (30, 2.042), (1000, 1.962)):
        assert t_quantile_975(df) == pytest.approx(table, abs=0.01)


def _timings(rng, n, rho, scale=1.0):
    """Per-call timings with AR(1) serial correlation `rho` and an exponential tail."""
    e = rng.normal(0, 1, n)
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = rho * x[i - 1] + math.sqrt(1 - rho ** 2) * e[i]
    return scale * np.exp(0.05 * x) + rng.exponential(0.01 * scale, n)


@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_equal_runs_are_within_noise_about_95_percent_of_the_time(rho):
    rng = np.random.default_rng(21)
    trials = 200
    calls = [speedup_interval(_timings(rng, 200, rho), _timings(rng, 200, rho), n_boot=500, seed=t).verdict
             for t in range(trials)]
    assert np.mean([v != "within noise" for v in calls]) <= 0.08  # nominal 5% + Monte Carlo error


def test_a_real_speedup_is_found_with_its_interval():
    rng = np.random.default_rng(3)
    s = speedup_interval(_timings(rng, 200, 0.3, 1.0), _timings(rng, 200, 0.3, 0.5))
    assert s.verdict == "faster" and s.lo < s.ratio < s.hi and 1.8 < s.ratio < 2.2
    s = speedup_interval(_timings(rng, 200, 0.3, 0.5), _timings(rng, 200, 0.3, 1.0))
    assert s.verdict == "slower"


def test_block_length_grows_with_serial_correlation():
    rng = np.random.default_rng(0)
    assert block_length(_timings(rng, 200, 0.0)) <= 8
    assert block_length(_timings(rng, 200, 0.9)) > 10


def test_unpaired_interval_covers_the_true_difference():
    from accelstudio.core.measure.stats import unpaired_difference_interval

    rng = np.random.default_rng(9)
    hits = []
    for _ in range(2000):
        k1, k2 = rng.binomial(360, 0.95), rng.binomial(360, 0.97)
        lo, hi = unpaired_difference_interval(int(k1), 360, int(k2), 360)
        hits.append(lo <= -0.02 <= hi)
    assert np.mean(hits) >= 0.93
