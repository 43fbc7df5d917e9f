"""How a search reads one trial: the objective with its interval, the constraint judged on an interval, and
when one candidate counts as better than another.

Constraint. With labels, on the accuracy drop's 95% interval (Newcombe's paired interval of the run, in points):
a candidate fails only when the interval's lower bound is above the allowed drop, i.e. when the data show it
dropped more than allowed; the point and the upper bound are kept and shown. Without labels (or with
--min-cosine), on the mean cosine similarity of the outputs to the unchanged model's over all samples given.

Objective. "latency" and "throughput": the speed-up over the unchanged model timed interleaved in the same job
(metrics["interleaved"]: median baseline / median run, with its interval); at a fixed batch the throughput
ratio is the latency ratio. "size": baseline bytes / compressed bytes of the parameters (exact, no interval).

Better. A candidate becomes the best only when its objective interval lies wholly above 1 (shown faster or
smaller than the unchanged model) and wholly above the current best's: within noise is not better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import RunResult
from accelstudio.core.measure.stats import pareto_front as stats_pareto_front

OBJECTIVES = ("latency", "size", "throughput")
DEFAULT_MIN_COSINE = 0.99


class ConstraintError(AccelStudioError):
    """A search constraint no result can meet or that means nothing (a cosine above 1, a negative drop)."""

    category = "usage"


@dataclass(frozen=True)
class Constraint:
    """At most `max_drop` accuracy points lost (judged where labels exist), or a cosine of at least
    `min_cosine` (always, when given; else only when the data have no labels, at DEFAULT_MIN_COSINE)."""

    max_drop: float | None = None
    min_cosine: float | None = None

    def __post_init__(self):
        if self.max_drop is not None and not 0.0 <= self.max_drop <= 100.0:
            raise ConstraintError(f"the accuracy drop limit must lie between 0 and 100 points, got {self.max_drop:g}")
        if self.min_cosine is not None and not 0.0 <= self.min_cosine <= 1.0:
            raise ConstraintError(f"the cosine limit must lie between 0 and 1, got {self.min_cosine:g}")

    def describe(self) -> str:
        if self.max_drop is not None:
            return f"accuracy drop <= {self.max_drop:g} pts (lower bound of its 95% interval)"
        return f"cosine >= {self.cosine_limit:g}"

    @property
    def cosine_limit(self) -> float:
        return self.min_cosine if self.min_cosine is not None else DEFAULT_MIN_COSINE

    def to_dict(self) -> dict[str, Any]:
        return {"max_drop": self.max_drop, "min_cosine": self.min_cosine}


@dataclass(frozen=True)
class TrialOutcome:
    """One measured point of a search. `value` is the objective (higher is better), `lo`/`hi` its interval;
    `violation` <= 0 when the constraint is met (Optuna's convention); `judged_on` "accuracy" or "cosine"."""

    number: int
    point: dict[str, Any]
    label: str
    phase: str  # "screen", "confirm" or "test"
    status: str
    run_id: int | None = None
    reason: str = ""
    value: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    drop: float | None = None
    drop_ci: tuple[float, float] | None = None
    cosine: float | None = None
    feasible: bool = False
    violation: float = math.inf
    judged_on: str = ""
    n_eval: int = 0
    size_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "done" and math.isfinite(self.value)

    @property
    def fidelity_axis(self) -> float:
        """What the Pareto plot's second axis shows: the accuracy drop (points) or 1 - cosine."""
        if self.drop is not None:
            return self.drop
        return 1.0 - self.cosine if self.cosine is not None else math.nan

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["drop_ci"] = list(self.drop_ci) if self.drop_ci is not None else None
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialOutcome":
        d = {k: v for k, v in dict(data).items() if k in cls.__dataclass_fields__}
        for key, default in (("value", math.nan), ("lo", math.nan), ("hi", math.nan), ("violation", math.inf)):
            if d.get(key) is None:
                d[key] = default
        if d.get("drop_ci") is not None:
            d["drop_ci"] = tuple(d["drop_ci"])
        return cls(**d)


def judge(result: RunResult, number: int, point: dict[str, Any], label: str, phase: str,
          constraint: Constraint, objective: str) -> TrialOutcome:
    """The TrialOutcome of a finished (or failed) trial run."""
    base = dict(number=number, point=dict(point), label=label, phase=phase, status=result.status,
                run_id=result.run_id, reason=result.reason)
    if result.status != "done":
        return TrialOutcome(**base)
    m = result.metrics
    value, lo, hi = _objective(m, objective)
    drop, drop_ci = _drop(m)
    fid = m.get("fidelity") if isinstance(m.get("fidelity"), dict) else {}
    cosine = fid.get("cosine") if isinstance(fid.get("cosine"), (int, float)) else None
    if constraint.max_drop is not None and drop_ci is not None and constraint.min_cosine is None:
        violation, judged_on = drop_ci[0] - constraint.max_drop, "accuracy"
    elif cosine is not None:
        violation, judged_on = constraint.cosine_limit - cosine, "cosine"
    else:
        violation, judged_on = math.inf, "nothing (no accuracy and no fidelity was measured)"
    return TrialOutcome(**base, value=value, lo=lo, hi=hi, drop=drop, drop_ci=drop_ci, cosine=cosine,
                        feasible=violation <= 0, violation=violation, judged_on=judged_on,
                        n_eval=int(m.get("n_eval") or 0), size_bytes=m.get("size_bytes"),
                        extra={"p50_ms": m.get("p50_ms"), "interleaved": m.get("interleaved"),
                               "recipe": (result.spec or {}).get("recipe"),
                               "runtime": (result.spec or {}).get("runtime")})


def _objective(m: dict[str, Any], objective: str) -> tuple[float, float, float]:
    if objective == "size":
        size, base = m.get("size_bytes"), m.get("baseline_size_bytes")
        if not size or not base:
            return math.nan, math.nan, math.nan
        ratio = float(base) / float(size)
        return ratio, ratio, ratio
    inter = m.get("interleaved") if isinstance(m.get("interleaved"), dict) else {}
    ratio = inter.get("ratio")
    if not isinstance(ratio, (int, float)):
        return math.nan, math.nan, math.nan
    return float(ratio), float(inter.get("lo", ratio)), float(inter.get("hi", ratio))


def _drop(m: dict[str, Any]) -> tuple[float | None, tuple[float, float] | None]:
    """The accuracy drop in points (baseline - run) and its interval, from the run's delta (run - baseline)."""
    delta, ci = m.get("accuracy_delta"), m.get("accuracy_delta_ci")
    if not isinstance(delta, (int, float)) or not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return None, None
    return 0.0 - float(delta), (0.0 - float(ci[1]), 0.0 - float(ci[0]))  # 0.0 - x: no "-0.0" shown


def is_better(candidate: TrialOutcome, best: TrialOutcome | None) -> bool:
    """A feasible candidate beats `best` only when its objective interval lies wholly above best's (and, for
    the first best, above 1)."""
    if not (candidate.ok and candidate.feasible):
        return False
    if best is None:  # the first best must be shown better than the unchanged model (ratio 1)
        return candidate.lo > 1.0
    return candidate.lo > best.hi


def pareto_front(outcomes: list[TrialOutcome]) -> list[TrialOutcome]:
    """Measured trials no other dominates (higher objective and lower fidelity axis), by objective."""
    pts = [o for o in outcomes if o.ok and math.isfinite(o.fidelity_axis)]
    front = [pts[i] for i in stats_pareto_front([(-o.value, -o.fidelity_axis) for o in pts])]
    return sorted(front, key=lambda o: o.value)


def hypervolume_2d(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by `points` (x maximized, y minimized) and bounded by `ref` (x below, y above all)."""
    pts = sorted({(x, y) for x, y in points if x > ref[0] and y < ref[1]}, key=lambda p: (-p[0], p[1]))
    area, best_y = 0.0, ref[1]
    for x, y in pts:  # sweep from the largest x: each point adds the strip below the best y so far
        if y < best_y:
            area += (x - ref[0]) * (best_y - y)
            best_y = y
    return area
