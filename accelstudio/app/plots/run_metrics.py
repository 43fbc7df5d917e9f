"""What the results views show of a run, read through the core run report (accelstudio.core.runs.report). No Qt
and no statistics here: intervals, verdicts and baselines all come from the core, so the GUI says what the CLI
and the exports say. Percent values are for display (accuracy and agreement are fractions in the metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from accelstudio.core.measure.stats import pareto_front  # noqa: F401  (the trade-off plot's front)
from accelstudio.core.runs import baseline as bl
from accelstudio.core.job import RunResult
from accelstudio.core.runs.report import RunReport, build_report, number
from accelstudio.core.runs.run_labels import recipe_text
from accelstudio.core.units import megabytes

VERDICT_KEYS = {"real drop": "drop", "real gain": "gain", "within noise": "noise"}


@dataclass(frozen=True)
class QualityPoint:
    """A run's quality for the trade-off plot: value and 95% interval in percent, and what it measures.

    `kind` is the report's headline: "accuracy" (labels known), "agreement" (top-1 agreement with the
    uncompressed model) or "cosine" (mean cosine x 100, for embedding outputs; no interval);
    `interval` says how the bar was computed ("paired vs baseline", "Wilson" or "none")."""

    value: float
    lo: float
    hi: float
    kind: str
    interval: str


_REPORTS: dict[tuple[int, int], tuple[RunResult, RunResult | None, RunReport]] = {}
_MAX_CACHED = 512


def report(result: RunResult, baseline: RunResult | None = None) -> RunReport:
    """The core run report of `result` against `baseline`. Kept per pair of run objects (the views hold each
    stored run as one object; the table asks per cell, and a speed-up interval costs tens of milliseconds).
    The cache holds the objects themselves, so an id is never reused while its entry lives."""
    key = (id(result), id(baseline))
    hit = _REPORTS.get(key)
    if hit is not None and hit[0] is result and hit[1] is baseline:
        return hit[2]
    if len(_REPORTS) >= _MAX_CACHED:
        _REPORTS.pop(next(iter(_REPORTS)))
    built = build_report(result, baseline)
    _REPORTS[key] = (result, baseline, built)
    return built


def metric(result: RunResult, key: str) -> float | None:
    """A finite numeric metric, or None when missing or not a number."""
    return number((result.metrics or {}).get(key))


def quality(result: RunResult) -> QualityPoint | None:
    """The report's quality headline as a plot point; None when the run measured none."""
    q = report(result).quality
    if q.value is None:
        return None
    if q.headline == "cosine":
        return QualityPoint(q.value * 100.0, q.value * 100.0, q.value * 100.0, "cosine", "none")
    change = q.change
    if q.headline == "accuracy" and change is not None and change.interval is not None:
        shift = q.value - change.delta_pts  # the change's interval drawn around this run's accuracy
        return QualityPoint(q.value, shift + change.interval.lo, shift + change.interval.hi, "accuracy",
                            "paired vs baseline")
    lo, hi = (q.interval.lo, q.interval.hi) if q.interval else (q.value, q.value)
    return QualityPoint(q.value, lo, hi, q.headline or "accuracy", "Wilson")


def is_baseline(result: RunResult) -> bool:
    """True when the run measured the model unchanged (the identity recipe)."""
    return bl.is_baseline_run(result)


def recipe_label(result: RunResult) -> str:
    """A short recipe label: 'baseline' for the identity recipe, else Recipe.describe()."""
    return recipe_text(result) or "(no recipe)"


def runtime(result: RunResult) -> dict:
    """The run's runtime settings dict ({} when missing)."""
    return bl.runtime_spec(result)


def runtime_label(result: RunResult) -> str:
    """'onnxruntime/cpu' style label."""
    rt = runtime(result)
    return f"{rt.get('runtime', '?')}/{rt.get('device', '?')}"


def model_key(result: RunResult) -> str:
    """The model identity of a run (accelstudio.core.runs.baseline.model_key)."""
    return bl.model_key(result)


def model_name(result: RunResult) -> str:
    """The model's display name."""
    ident = result.model_identity or {}
    return str(ident.get("name") or ident.get("path") or (result.spec or {}).get("model") or "?")


def plottable(result: RunResult) -> bool:
    """Only finished runs with a latency and a quality number go on the trade-off plot."""
    return result.status == "done" and metric(result, "p50_ms") is not None and quality(result) is not None


def find_baseline(result: RunResult, runs: Iterable[RunResult]) -> RunResult | None:
    """The like-for-like baseline run of `result` among `runs` (accelstudio.core.runs.baseline.find_baseline)."""
    return bl.find_baseline(list(runs), result)


def delta_text(result: RunResult) -> tuple[str, str]:
    """The report's accuracy change and its verdict key: ('-1.11 pts (95% CI ...; 4 lost, 0 gained, exact
    p = 0.125: within noise)', 'noise'); verdict keys 'noise', 'drop', 'gain', or ('', '') without one."""
    change = report(result).quality.change
    if change is None:
        return "", ""
    return change.text(), VERDICT_KEYS.get(change.verdict, "")


def size_mb(result: RunResult, key: str = "size_bytes") -> float | None:
    """A size metric in MB (10^6 bytes, accelstudio.core.units)."""
    return megabytes(metric(result, key))


def details_lines(rep: RunReport) -> list[str]:
    """The report's data, fidelity and warning lines shown under the verdict."""
    q = rep.quality
    lines = [f"Data: {rep.data.describe()}" + (f" · inputs {rep.data.shapes_text()}" if rep.data.shapes_text()
                                               else "")]
    if rep.data.calib:
        lines.append(f"Calibration: {rep.data.calib}")
    fid = []
    if q.agreement is not None:
        fid.append(f"top-1 agreement {q.agreement:.1%}")
    if q.cosine is not None:
        fid.append(f"cosine {q.cosine:.4f}")
    if q.max_abs_error is not None:
        fid.append(f"max error {q.max_abs_error:.3g}")
    if fid:
        unlabeled = " (no labels: fidelity to the uncompressed model)" if q.headline != "accuracy" else ""
        lines.append(f"Fidelity{unlabeled}: " + ", ".join(fid))
    lines.extend(f"⚠ {w}" for w in rep.warnings)
    return lines

