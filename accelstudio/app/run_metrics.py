"""Plain functions that read the numbers the results views show from a RunResult. No Qt, so testable alone.

Accuracy and agreement are fractions in the run's metrics; everything here returns percent (points) for display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from accelstudio.core.job import RunResult

Z95 = 1.959963984540054


@dataclass(frozen=True)
class QualityPoint:
    """A run's quality for the trade-off plot: value and 95% interval in percent, and what it measures.

    `kind` is "accuracy" (labels known) or "agreement" (top-1 agreement with the baseline model);
    `interval` says how the bar was computed ("paired vs baseline" or "Wilson")."""

    value: float
    lo: float
    hi: float
    kind: str
    interval: str


def wilson_pct(p: float, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion `p` over `n` trials, in percent."""
    if n <= 0:
        return 0.0, 100.0
    z2 = Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half) * 100.0, min(1.0, centre + half) * 100.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def metric(result: RunResult, key: str) -> float | None:
    """A finite numeric metric, or None when missing or not a number."""
    return _number((result.metrics or {}).get(key))


def quality(result: RunResult) -> QualityPoint | None:
    """Accuracy (or, without labels, top-1 agreement with the baseline) with a 95% interval; None if neither."""
    m = result.metrics or {}
    acc = _number(m.get("accuracy"))
    if acc is not None:
        pct = acc * 100.0
        delta, ci = _number(m.get("accuracy_delta")), m.get("accuracy_delta_ci")
        if delta is not None and _pair(ci) is not None:
            lo, hi = _pair(ci)
            return QualityPoint(pct, pct + (lo - delta), pct + (hi - delta), "accuracy", "paired vs baseline")
        wilson = _pair(m.get("accuracy_ci"))
        lo, hi = (wilson[0] * 100.0, wilson[1] * 100.0) if wilson else wilson_pct(acc, int(m.get("n_eval") or 0))
        return QualityPoint(pct, lo, hi, "accuracy", "Wilson")
    fid = m.get("fidelity") if isinstance(m.get("fidelity"), dict) else {}
    agree = _number(fid.get("top1_agreement"))
    if agree is None:
        return None
    n = int(fid.get("n_compared") or m.get("n_eval") or 0)
    lo, hi = wilson_pct(agree, n)
    return QualityPoint(agree * 100.0, lo, hi, "agreement", "Wilson")


def _pair(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        lo, hi = _number(value[0]), _number(value[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


def recipe_dict(result: RunResult) -> dict:
    """The run's recipe as a dict ({} when the spec has none)."""
    recipe = (result.spec or {}).get("recipe")
    return recipe if isinstance(recipe, dict) else {}


def is_baseline(result: RunResult) -> bool:
    """True when the run measured the model unchanged (the identity recipe)."""
    from accelstudio.core.errors import AccelStudioError
    from accelstudio.core.recipe import Recipe

    try:
        return Recipe.from_dict(recipe_dict(result)).is_identity
    except (AccelStudioError, TypeError, ValueError):
        return False


def recipe_label(result: RunResult) -> str:
    """A short recipe label: 'baseline' for the identity recipe, else Recipe.describe()."""
    from accelstudio.core.errors import AccelStudioError
    from accelstudio.core.recipe import Recipe

    try:
        recipe = Recipe.from_dict(recipe_dict(result))
    except (AccelStudioError, TypeError, ValueError):
        return "(unreadable recipe)"
    return "baseline" if recipe.is_identity else recipe.describe()


def runtime(result: RunResult) -> dict:
    """The run's runtime settings dict ({} when missing)."""
    rt = (result.spec or {}).get("runtime")
    return rt if isinstance(rt, dict) else {}


def runtime_label(result: RunResult) -> str:
    """'onnxruntime/cpu' style label."""
    rt = runtime(result)
    return f"{rt.get('runtime', '?')}/{rt.get('device', '?')}"


def model_key(result: RunResult) -> str:
    """What identifies the model a run measured: its SHA-256, else its name, else its path."""
    ident = result.model_identity or {}
    return str(ident.get("sha256") or ident.get("name") or ident.get("path") or "")


def model_name(result: RunResult) -> str:
    """The model's display name."""
    ident = result.model_identity or {}
    return str(ident.get("name") or ident.get("path") or (result.spec or {}).get("model") or "?")


def plottable(result: RunResult) -> bool:
    """Only finished runs with a latency and a quality number go on the trade-off plot."""
    return result.status == "done" and metric(result, "p50_ms") is not None and quality(result) is not None


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


def find_baseline(result: RunResult, runs: Iterable[RunResult]) -> RunResult | None:
    """The newest finished baseline run of the same model, preferring the same runtime, device, threads and
    batch; None when there is none."""
    candidates = [r for r in runs if r.status == "done" and is_baseline(r) and model_key(r) == model_key(result)]
    if not candidates:
        return None
    keys = ("runtime", "device", "threads", "batch")
    mine = tuple(runtime(result).get(k) for k in keys)
    same = [r for r in candidates if tuple(runtime(r).get(k) for k in keys) == mine]
    pool = same or candidates
    return max(pool, key=lambda r: (r.run_id or 0, r.created or ""))


def speed_text(result: RunResult, baseline: RunResult) -> str:
    """'1.8x faster' / '1.3x slower' / 'same speed' from p50 latencies; '' when unknown."""
    a, b = metric(result, "p50_ms"), metric(baseline, "p50_ms")
    if not a or not b:
        return ""
    ratio = b / a
    if abs(ratio - 1.0) < 0.05:
        return "same speed (within 5%)"
    return f"{ratio:.1f}x faster" if ratio > 1 else f"{1 / ratio:.1f}x slower"


def delta_text(result: RunResult) -> tuple[str, str]:
    """The accuracy change against the baseline and a verdict: ('-0.3 pts (95% CI -1.1..+0.6: within noise)',
    'noise') with verdict 'noise', 'drop', 'gain' or '' when the run has no paired accuracy change."""
    m = result.metrics or {}
    delta, ci = _number(m.get("accuracy_delta")), _pair(m.get("accuracy_delta_ci"))
    if delta is None:
        return "", ""
    if ci is None:
        return f"{delta:+.1f} pts (no interval)", ""
    lo, hi = ci
    significant = m.get("delta_significant")
    if not isinstance(significant, bool):
        significant = lo > 0 or hi < 0
    verdict = "noise" if not significant else ("gain" if delta > 0 else "drop")
    words = {"noise": "within noise", "drop": "a real drop", "gain": "a real gain"}[verdict]
    return f"{delta:+.1f} pts (95% CI {lo:+.1f}..{hi:+.1f}: {words})", verdict


def size_mb(result: RunResult, key: str = "size_bytes") -> float | None:
    """A size metric in MB (10^6 bytes)."""
    value = metric(result, key)
    return None if value is None else value / 1e6


def summary_line(result: RunResult, baseline: RunResult | None) -> tuple[str, str]:
    """The one-line comparison of a run with its baseline, and the accuracy verdict (see delta_text)."""
    if result.status != "done":
        return f"Run {result.run_id} {result.status}: {result.reason or 'no reason given'}", ""
    if baseline is None:
        return "No baseline run of this model yet: run the unchanged model to compare.", ""
    if baseline.run_id == result.run_id:
        return "This is the baseline run.", ""
    parts = [speed_text(result, baseline)]
    text, verdict = delta_text(result)
    parts.append(text)
    size, base_size = metric(result, "size_bytes"), metric(baseline, "size_bytes")
    if size and base_size:
        parts.append(f"{base_size / size:.1f}x smaller" if size < base_size else f"{size / base_size:.2f}x the size")
    return ", ".join(p for p in parts if p) or "No comparable numbers.", verdict
