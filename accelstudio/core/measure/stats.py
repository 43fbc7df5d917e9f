"""The intervals and tests every comparison in AccelStudio uses (one implementation of each).

- wilson_interval: a proportion's 95% score interval (accuracy, agreement).
- paired_accuracy_change: the accuracy change of two models scored on the same samples: Newcombe's hybrid score
  interval for a paired difference (method 10, built from two Wilson intervals and the pairs' correlation) and
  McNemar's exact test on the discordant pairs. The verdict is "real drop/gain" only when BOTH say so (exact
  p < 0.05 and the interval excludes 0): McNemar's exact test never exceeds its nominal false-positive rate, so
  small counts such as 4 lost vs 0 gained (p = 0.125) stay "within noise".
- speedup_interval: the ratio of two runs' median latencies with a 95% interval that is the union of a moving-block
  bootstrap and a batch-medians t interval. Blocks and batches of consecutive calls rather than single calls are
  used because per-call timings drift (frequency scaling, caches, other load): an i.i.d. bootstrap would treat
  correlated calls as independent and give too narrow an interval.

Everything is plain Python/numpy (no Qt); intervals are 95% two-sided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

CI_LEVEL = 0.95
Z95 = 1.959963984540054
ALPHA = 1.0 - CI_LEVEL

SPEED_VERDICTS = ("faster", "within noise", "slower")
ACCURACY_VERDICTS = ("real drop", "within noise", "real gain")


def wilson_interval(successes: int, n: int) -> list[float]:
    """95% Wilson score interval for a proportion, as fractions [lo, hi] ([0, 1] when n is 0)."""
    if n <= 0:
        return [0.0, 1.0]
    p = min(max(successes / n, 0.0), 1.0)
    z2 = Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of min(b, c) out of b + c discordant pairs at p=1/2.

    Integer arithmetic up to 20,000 discordant pairs; beyond that the same sum in log space."""
    m, k_max = b + c, min(b, c)
    if m == 0:
        return 1.0
    if m <= 20_000:
        term, tail = 1, 1
        for k in range(k_max):
            term = term * (m - k) // (k + 1)  # C(m, k+1) from C(m, k), exact
            tail += term
        return min(1.0, 2 * tail / 2 ** m)
    j = np.arange(k_max, dtype=np.float64)
    log_terms = np.concatenate([[0.0], np.cumsum(np.log(m - j) - np.log(j + 1))])
    top = log_terms.max()
    log_tail = top + math.log(np.exp(log_terms - top).sum())
    return min(1.0, math.exp(math.log(2.0) + log_tail - m * math.log(2.0)))


@dataclass(frozen=True)
class PairedChange:
    """Accuracy change new - baseline on the same n samples, in points, with its 95% interval.

    `lost`: samples the baseline got right and the new model wrong; `gained`: the reverse. `p_value` is McNemar's
    exact two-sided p; `verdict` one of ACCURACY_VERDICTS."""

    delta_pts: float
    lo_pts: float
    hi_pts: float
    lost: int
    gained: int
    n: int
    p_value: float
    verdict: str

    @property
    def significant(self) -> bool:
        return self.verdict != "within noise"


def newcombe_paired_interval(both: int, lost: int, gained: int, neither: int) -> tuple[float, float]:
    """95% interval for p_new - p_base from paired counts (Newcombe 1998, method 10), as fractions.

    `both`: right in both; `lost`: right only in the baseline; `gained`: right only in the new model; `neither`.
    Built from the Wilson intervals of the two accuracies, corrected by the correlation of the pairs."""
    n = both + lost + gained + neither
    if n <= 0:
        return -1.0, 1.0
    p_new, p_base = (both + gained) / n, (both + lost) / n
    l1, u1 = wilson_interval(both + gained, n)
    l2, u2 = wilson_interval(both + lost, n)
    denom = (both + lost) * (gained + neither) * (both + gained) * (lost + neither)
    phi = (both * neither - lost * gained) / math.sqrt(denom) if denom > 0 else 0.0
    delta = p_new - p_base
    down = math.sqrt(max((p_new - l1) ** 2 - 2 * phi * (p_new - l1) * (u2 - p_base) + (u2 - p_base) ** 2, 0.0))
    up = math.sqrt(max((u1 - p_new) ** 2 - 2 * phi * (u1 - p_new) * (p_base - l2) + (p_base - l2) ** 2, 0.0))
    return max(-1.0, delta - down), min(1.0, delta + up)


def unpaired_difference_interval(k_new: int, n_new: int, k_base: int, n_base: int) -> tuple[float, float]:
    """95% interval for p_new - p_base of two independent proportions (Newcombe 1998's hybrid score method 10,
    from the two Wilson intervals), as fractions. For runs whose per-sample results are not paired."""
    p1, p2 = k_new / n_new, k_base / n_base
    l1, u1 = wilson_interval(k_new, n_new)
    l2, u2 = wilson_interval(k_base, n_base)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def paired_accuracy_change(both: int, lost: int, gained: int, neither: int) -> PairedChange:
    """The paired accuracy change with Newcombe's interval, McNemar's exact p and the verdict (see module doc)."""
    n = both + lost + gained + neither
    lo, hi = newcombe_paired_interval(both, lost, gained, neither)
    p = mcnemar_exact(lost, gained)
    delta = (gained - lost) / n * 100.0 if n else 0.0
    verdict = "within noise"
    if p < ALPHA and hi < 0:
        verdict = "real drop"
    elif p < ALPHA and lo > 0:
        verdict = "real gain"
    return PairedChange(delta, lo * 100.0, hi * 100.0, lost, gained, n, p, verdict)


def paired_counts(correct: np.ndarray, base_correct: np.ndarray) -> tuple[int, int, int, int]:
    """(both, lost, gained, neither) from per-sample correctness of the new and the baseline model."""
    new, base = np.asarray(correct, dtype=bool), np.asarray(base_correct, dtype=bool)
    if new.shape != base.shape:
        raise ValueError("the new and the baseline results cover different samples")
    both = int((new & base).sum())
    lost = int((~new & base).sum())
    gained = int((new & ~base).sum())
    return both, lost, gained, int(new.size - both - lost - gained)


@dataclass(frozen=True)
class SpeedupInterval:
    """median(baseline) / median(run) (> 1: the run is faster) with its 95% interval and the verdict."""

    ratio: float
    lo: float
    hi: float
    verdict: str
    n_run: int
    n_baseline: int


def block_length(samples: np.ndarray) -> int:
    """Moving-block length for per-call timings: at least n^(1/3) calls, and twice the lag after which the
    timings stop being correlated (the first lag whose autocorrelation is within the +-2/sqrt(n) noise band,
    Politis & White's rule), at most n/5 so that there are blocks to resample."""
    x = np.asarray(samples, dtype=np.float64)
    n = x.size
    base = max(1, int(round(n ** (1.0 / 3.0))))
    if n < 10:
        return base
    x = x - x.mean()
    var = float(x @ x)
    if var <= 0:
        return base
    band = 2.0 / math.sqrt(n)
    max_lag = max(1, n // 5)
    lag = max_lag
    for k in range(1, max_lag + 1):
        if abs(float(x[:-k] @ x[k:]) / var) < band:
            lag = k
            break
    return int(min(max(base, 2 * lag), max_lag))


def _block_bootstrap_medians(samples: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of n_boot circular moving-block bootstrap resamples of `samples` (kept in time order)."""
    n = samples.size
    length = block_length(samples)
    blocks = -(-n // length)
    starts = rng.integers(0, n, (n_boot, blocks))
    idx = (starts[:, :, None] + np.arange(length)[None, None, :]).reshape(n_boot, -1)[:, :n] % n
    return np.median(samples[idx], axis=1)


def speedup_interval(baseline_ms, run_ms, n_boot: int = 1000, seed: int = 0) -> SpeedupInterval:
    """The speed-up of a run over its baseline from both runs' per-call latencies (ms, in measured order).

    Ratio of medians. Its 95% interval is the wider of two (their union): a moving-block bootstrap of each run,
    and, with at least 50 calls per run, batch medians (each run cut into up to 10 consecutive batches, Welch's t
    on the log batch medians). Either alone called equal runs different up to ~10% of the time on simulated
    timings with serial correlation; the union stayed at the nominal 5% (tests/core/test_stats.py). The verdict
    is "within noise" whenever the interval contains 1. Drift between two runs taken at different times is not
    in the interval; runs measured on a busy machine are flagged separately."""
    base = np.asarray(baseline_ms, dtype=np.float64)
    run = np.asarray(run_ms, dtype=np.float64)
    base, run = base[np.isfinite(base) & (base > 0)], run[np.isfinite(run) & (run > 0)]
    if base.size == 0 or run.size == 0:
        raise ValueError("both runs need per-call timings")
    n_boot = min(n_boot, max(200, 2_000_000 // max(base.size, run.size)))  # bound time and memory
    rng = np.random.default_rng(seed)
    ratios = _block_bootstrap_medians(base, n_boot, rng) / _block_bootstrap_medians(run, n_boot, rng)
    lo, hi = (float(v) for v in np.quantile(ratios, [ALPHA / 2, 1.0 - ALPHA / 2]))
    ratio = float(np.median(base) / np.median(run))
    batches = batch_median_interval(base, run)
    if batches is not None:
        lo, hi = min(lo, batches[0]), max(hi, batches[1])
    return SpeedupInterval(ratio, lo, hi, speed_verdict(lo, hi), int(run.size), int(base.size))


MIN_BATCH_CALLS = 10
MAX_BATCHES = 10


def batch_median_interval(base: np.ndarray, run: np.ndarray) -> tuple[float, float] | None:
    """95% interval of median(base)/median(run) from batch medians: each series cut into k consecutive batches
    (k = min(10, n/10), at least 5), Welch's t interval on the difference of mean log batch medians, centred on
    the log ratio of the overall medians. None when a run has fewer than 50 calls."""
    k = min(MAX_BATCHES, base.size // MIN_BATCH_CALLS, run.size // MIN_BATCH_CALLS)
    if k < 5:
        return None
    log_a = np.log([np.median(part) for part in np.array_split(base, k)])
    log_b = np.log([np.median(part) for part in np.array_split(run, k)])
    var_a, var_b = float(log_a.var(ddof=1)) / k, float(log_b.var(ddof=1)) / k
    se = math.sqrt(var_a + var_b)
    centre = math.log(float(np.median(base) / np.median(run)))
    if se == 0.0:
        return math.exp(centre), math.exp(centre)
    df = (var_a + var_b) ** 2 / ((var_a ** 2 + var_b ** 2) / (k - 1))
    half = t_quantile_975(df) * se
    return math.exp(centre - half), math.exp(centre + half)


def t_quantile_975(df: float) -> float:
    """Student's t 97.5% quantile (Hill's expansion around the normal quantile; within 0.01 for df >= 4)."""
    z = Z95
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    df = max(df, 1.0)
    return z + g1 / df + g2 / df ** 2 + g3 / df ** 3


def speed_verdict(lo: float, hi: float) -> str:
    """'faster' when the whole interval of baseline/run is above 1, 'slower' when below, else 'within noise'."""
    if lo > 1.0:
        return "faster"
    if hi < 1.0:
        return "slower"
    return "within noise"


def median_difference_ci(a_ms, b_ms, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Median(b) - median(a) with a bootstrap 95% interval, for per-call timings of two runs (ms).

    This captures per-call noise only; drift between runs taken at different times is not in it."""
    a, b = np.asarray(a_ms, dtype=np.float64), np.asarray(b_ms, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("both runs need per-call timings")
    n_boot = min(n_boot, max(200, 4_000_000 // max(a.size, b.size)))
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, a.size, (n_boot, a.size))], axis=1)
    mb = np.median(b[rng.integers(0, b.size, (n_boot, b.size))], axis=1)
    lo, hi = np.quantile(mb - ma, [ALPHA / 2, 1.0 - ALPHA / 2])
    return float(np.median(b) - np.median(a)), float(lo), float(hi)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower x = latency, higher y = accuracy), by rising x.

    A point is dominated when another is at least as good on both axes and strictly better on one; of exact
    duplicates only the first is kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front: list[int] = []
    best_y = -math.inf
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return front
