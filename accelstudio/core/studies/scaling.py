"""How latency and throughput scale with threads, batch and concurrent streams, and Amdahl's law fitted to it.

Amdahl's law: with a share p of the work that runs in parallel, n threads give a speed-up
S(n) = 1 / ((1 - p) + p / n), at most 1 / (1 - p) however many threads. Rewritten as 1 - 1/S = p (1 - 1/n), p is
the least-squares slope through the origin of y = 1 - 1/S against x = 1 - 1/n, so a fit needs one measurement
beyond one thread. Speed-ups are ratios of median latencies against the 1-thread run of the same model, runtime
and batch, with the moving-block bootstrap interval of core/measure/stats.py; p is fitted to the ratios and to
both ends of their intervals, which gives the band drawn around the curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from accelstudio.core.job import RunResult


@dataclass(frozen=True)
class AmdahlFit:
    """The parallel share `p` (0-1) of the work, its range from the speed-up intervals, and the ceiling 1/(1-p)."""

    p: float
    p_lo: float
    p_hi: float
    points: int

    @property
    def max_speedup(self) -> float:
        return float("inf") if self.p >= 1 else 1.0 / (1.0 - self.p)

    def speedup(self, threads: float | np.ndarray, p: float | None = None) -> np.ndarray:
        """S(n) = 1 / ((1 - p) + p / n) for this fit's p (or another)."""
        share = self.p if p is None else p
        n = np.asarray(threads, dtype=float)
        return 1.0 / ((1.0 - share) + share / n)

    def text(self) -> str:
        ceiling = "no ceiling" if self.p >= 1 else f"at most {self.max_speedup:.1f}x with any number of threads"
        return (f"Amdahl fit: p = {self.p:.2f} [{self.p_lo:.2f}, {self.p_hi:.2f}] of the work runs in parallel; "
                f"{ceiling}")


def fit_parallel_share(threads: Sequence[float], speedups: Sequence[float]) -> float:
    """Least-squares p of Amdahl's law through (threads, speed-up) points, clipped to [0, 1]."""
    n = np.asarray(threads, dtype=float)
    s = np.asarray(speedups, dtype=float)
    keep = (n > 1) & np.isfinite(s) & (s > 0)
    if not keep.any():
        raise ValueError("Amdahl's law needs at least one measurement with more than one thread")
    x, y = 1.0 - 1.0 / n[keep], 1.0 - 1.0 / s[keep]
    return float(np.clip(np.dot(x, y) / np.dot(x, x), 0.0, 1.0))


def fit_amdahl(points: Sequence[dict[str, float]]) -> AmdahlFit:
    """Fit to points {"threads", "speedup", "lo", "hi"} (as `thread_scaling` gives them)."""
    threads = [pt["threads"] for pt in points]
    p = fit_parallel_share(threads, [pt["speedup"] for pt in points])
    lo = fit_parallel_share(threads, [pt.get("lo", pt["speedup"]) for pt in points])
    hi = fit_parallel_share(threads, [pt.get("hi", pt["speedup"]) for pt in points])
    return AmdahlFit(p, min(lo, p), max(hi, p), sum(1 for t in threads if t > 1))


def _runtime(run: RunResult) -> dict[str, Any]:
    return dict((run.spec or {}).get("runtime") or {})


def _threads_used(run: RunResult) -> int | None:
    used = (run.metrics.get("execution") or {}).get("threads")
    return int(used) if isinstance(used, int) and used > 0 else _runtime(run).get("threads")


def thread_scaling(runs: Sequence[RunResult], batch: int = 1) -> list[dict[str, float]]:
    """Speed-up against the 1-thread run for each thread count measured at `batch` with one stream:
    [{"threads", "p50_ms", "speedup", "lo", "hi", "verdict"}], sorted by threads (the newest run per count)."""
    from accelstudio.core.measure.stats import speedup_interval

    chosen: dict[int, RunResult] = {}
    for run in runs:
        rt = _runtime(run)
        if run.status != "done" or rt.get("batch") != batch or rt.get("streams", 1) != 1 or not run.latencies_ms:
            continue
        threads = _threads_used(run)
        if isinstance(threads, int) and threads > 0:
            chosen[threads] = run  # later runs replace earlier ones
    if 1 not in chosen:
        return []
    base = chosen[1].latencies_ms
    points = []
    for threads in sorted(chosen):
        run = chosen[threads]
        iv = speedup_interval(base, run.latencies_ms)
        points.append({"threads": threads, "p50_ms": float(run.metrics.get("p50_ms") or np.median(run.latencies_ms)),
                       "speedup": iv.ratio, "lo": iv.lo, "hi": iv.hi, "verdict": iv.verdict})
    return points


def batch_throughput(runs: Sequence[RunResult]) -> list[dict[str, float]]:
    """Throughput (samples/s) and latency per call for each batch size measured with one stream:
    [{"batch", "threads", "throughput", "p50_ms", "per_sample_ms"}], sorted by batch."""
    rows: dict[int, dict[str, float]] = {}
    for run in runs:
        rt = _runtime(run)
        if run.status != "done" or rt.get("streams", 1) != 1 or not run.metrics.get("throughput"):
            continue
        batch, p50 = int(rt.get("batch") or 1), float(run.metrics.get("p50_ms") or 0.0)
        rows[batch] = {"batch": batch, "threads": _threads_used(run) or 0,
                       "throughput": float(run.metrics["throughput"]), "p50_ms": p50,
                       "per_sample_ms": p50 / batch if batch else p50}
    return [rows[b] for b in sorted(rows)]


def stream_throughput(runs: Sequence[RunResult]) -> list[dict[str, float]]:
    """Concurrent throughput for runs measured with several streams: [{"streams", "threads", "throughput",
    "single_stream"}] (single_stream: the same run's one-stream throughput), sorted by streams."""
    rows = []
    for run in runs:
        rt = _runtime(run)
        rate = run.metrics.get("throughput_concurrent")
        if run.status == "done" and rt.get("streams", 1) > 1 and rate:
            rows.append({"streams": int(rt["streams"]), "threads": _threads_used(run) or 0,
                         "throughput": float(rate), "single_stream": float(run.metrics.get("throughput") or 0.0)})
    return sorted(rows, key=lambda r: r["streams"])
