"""Latency measurement: warm-up discarded, every call timed on its own, percentiles and spread reported.

The timed window holds only the inference call (inputs are converted once by `Predictor.bind`) and two
`perf_counter_ns` reads; the loop's bookkeeping (storing the time, checking cancel and the budget, reporting
progress) happens outside it, so the harness adds well under a microsecond to each recorded time.

A measurement is called *stable* when it has at least MIN_STABLE_CALLS calls and its spread ratio
(p90 / p50) is below MAX_STABLE_SPREAD: past that, one run's p50 can move by more than the difference a
recipe is expected to make, and the screen says to measure again on a quieter machine.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from accelstudio.core.job import RuntimeSettings
from accelstudio.core.progress import CancelToken, ProgressCallback, ProgressEvent, check_cancel

MIN_CALLS = 5
MIN_STABLE_CALLS = 20
MAX_STABLE_SPREAD = 1.5
PARTIAL_EVERY_CALLS = 20
PARTIAL_MIN_INTERVAL_NS = 200_000_000  # at most 5 partial reports a second
STAGE = "benchmark"


@dataclass(frozen=True)
class LatencyStats:
    """Per-call latency statistics in milliseconds. `throughput` is samples/s of one stream
    (batch * 1000 / mean_ms); `throughput_concurrent` is samples/s with `streams` threads calling at once
    (None with one stream). `samples_ms` holds every timed call in order."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    iqr_ms: float
    min_ms: float
    n: int
    throughput: float
    stable: bool
    spread_ratio: float
    samples_ms: tuple[float, ...] = field(repr=False, default=())
    throughput_concurrent: float | None = None
    streams: int = 1

    def to_metrics(self) -> dict:
        """The Job-contract metric keys (samples left out)."""
        keys = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "iqr_ms", "min_ms", "n", "throughput",
                "stable", "spread_ratio", "throughput_concurrent", "streams")
        return {k: getattr(self, k) for k in keys}


def stats_from_samples(samples_ms: np.ndarray | list[float], batch: int = 1) -> LatencyStats:
    """Statistics of per-call times in milliseconds (at least one sample)."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no latency samples")
    p25, p50, p75, p90, p99 = np.percentile(a, [25, 50, 75, 90, 99])
    mean = float(a.mean())
    spread = float(p90 / p50) if p50 > 0 else float("inf")
    return LatencyStats(
        p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99), mean_ms=mean, std_ms=float(a.std()),
        iqr_ms=float(p75 - p25), min_ms=float(a.min()), n=int(a.size),
        throughput=batch * 1000.0 / mean if mean > 0 else 0.0,
        stable=bool(a.size >= MIN_STABLE_CALLS and spread < MAX_STABLE_SPREAD), spread_ratio=spread,
        samples_ms=tuple(float(x) for x in a),
    )


def measure_latency(predictor, inputs: dict[str, np.ndarray], settings: RuntimeSettings,
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> LatencyStats:
    """Time `predictor` on `inputs`: settings.warmup calls discarded, then one timed call after another
    until settings.repeats calls or settings.time_budget_s have passed (never fewer than MIN_CALLS).
    With settings.streams > 1, concurrent throughput is measured afterwards for the same time budget.
    Progress events carry the new per-call times as partial {"latencies_ms": [...], "n": calls so far}."""
    call = predictor.bind(inputs)
    with predictor.timing_context():
        for i in range(settings.warmup):
            check_cancel(cancel)
            call()
        if progress:
            progress(ProgressEvent(STAGE, 0.0, f"warm-up done ({settings.warmup} calls)"))
        times_ns = _timed_loop(call, settings, progress, cancel)
    stats = stats_from_samples(times_ns / 1e6, settings.batch)
    if settings.streams > 1:
        rate = measure_concurrent(predictor, inputs, settings, cancel)
        stats = _with(stats, throughput_concurrent=rate, streams=settings.streams)
    return stats


def _timed_loop(call, settings: RuntimeSettings, progress, cancel) -> np.ndarray:
    repeats = max(int(settings.repeats), MIN_CALLS)
    times: list[int] = []
    record = times.append  # outside the timed window; amortized O(1)
    now = time.perf_counter_ns
    is_set = cancel.is_set if cancel is not None else _never
    deadline = now() + int(settings.time_budget_s * 1e9)
    last_report, reported, i = now(), 0, 0
    while i < repeats:
        t0 = now()
        call()
        t1 = now()
        record(t1 - t0)
        i += 1
        if is_set():
            check_cancel(cancel)
        if t1 >= deadline and i >= MIN_CALLS:
            break
        if progress is not None and i - reported >= PARTIAL_EVERY_CALLS and t1 - last_report >= PARTIAL_MIN_INTERVAL_NS:
            _report(progress, times, reported, i, repeats, t1, deadline, settings.time_budget_s)
            last_report, reported = t1, i
    if progress is not None:
        _report(progress, times, reported, i, repeats, deadline, deadline, settings.time_budget_s)
    return np.asarray(times[:i], dtype=np.float64)


def _report(progress, times, start, end, repeats, t, deadline, budget_s) -> None:
    left_s = max(deadline - t, 0) / 1e9
    fraction = max(end / repeats, 1.0 - left_s / budget_s if budget_s > 0 else 0.0)
    progress(ProgressEvent(STAGE, min(fraction, 1.0), f"{end} calls timed",
                           {"latencies_ms": [x / 1e6 for x in times[start:end]], "n": end}))


def measure_concurrent(predictor, inputs: dict[str, np.ndarray], settings: RuntimeSettings,
                       cancel: CancelToken | None = None) -> float:
    """Samples per second with settings.streams threads each calling the predictor for the time budget."""
    streams = settings.streams
    barrier = threading.Barrier(streams + 1)
    counts = [0] * streams
    errors: list[BaseException] = []
    stop = threading.Event()

    def worker(k: int) -> None:
        call = predictor.bind(inputs)
        try:
            with predictor.timing_context():
                call()  # per-thread warm-up
                barrier.wait()
                n = 0
                while not stop.is_set():
                    call()
                    n += 1
                counts[k] = n
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # reported to the caller, which re-raises it
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(streams)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    start = time.perf_counter()
    end = start + settings.time_budget_s
    while time.perf_counter() < end and not errors and not (cancel is not None and cancel.is_set()):
        stop.wait(0.05)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    check_cancel(cancel)
    return settings.batch * sum(counts) / elapsed if elapsed > 0 else 0.0


def _never() -> bool:
    return False


def _with(stats: LatencyStats, **changes) -> LatencyStats:
    from dataclasses import replace

    return replace(stats, **changes)
