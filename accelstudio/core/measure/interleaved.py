"""The speed-up of a compressed model over the unchanged one, both timed in one process, interleaved.

A ratio of two runs measured minutes apart carries the machine's drift (another process starting, a clock
change) that no interval computed from either run sees. Timing both models in alternating blocks in the same
job puts the drift on both sides; the interval (stats.speedup_interval) then covers what is left.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accelstudio.core.job import RuntimeSettings
from accelstudio.core.measure.compile_step import interleaved_timings
from accelstudio.core.measure.stats import speedup_interval
from accelstudio.core.progress import CancelToken, check_cancel

WARMUP_CALLS = 3


def interleaved_speedup(run_call, base_call, settings: RuntimeSettings,
                        cancel: CancelToken | None = None) -> dict[str, Any]:
    """Time `run_call` and `base_call` (each runs the model once on fixed inputs) in alternating blocks for
    `settings.time_budget_s` or `settings.repeats` calls each, warm-up discarded, and return metrics["interleaved"]:
    run and baseline p50, the ratio median(baseline) / median(run) (> 1: faster), its 95% interval, the verdict
    and the calls timed per side."""
    for _ in range(max(WARMUP_CALLS, min(settings.warmup, 10))):
        check_cancel(cancel)
        base_call()
        run_call()
    t = interleaved_timings({"baseline": base_call, "run": run_call}, settings.time_budget_s,
                            max(settings.repeats, 20), cancel)
    s = speedup_interval(t["baseline"], t["run"])
    return {"baseline_p50_ms": float(np.median(t["baseline"])), "run_p50_ms": float(np.median(t["run"])),
            "ratio": s.ratio, "lo": s.lo, "hi": s.hi, "verdict": s.verdict, "n": min(s.n_run, s.n_baseline),
            "method": "interleaved blocks in one process"}
