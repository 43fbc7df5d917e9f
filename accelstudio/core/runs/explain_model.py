"""The typed answer to "why is it (not) faster?": an Explanation of one run against its like-for-like baseline.

Plain frozen dataclasses with `to_dict()` for JSON; built by accelstudio.core.runs.explain.explain_run. Every
number here comes from the two runs' records (per-operator profiles, latencies, execution, machine and
environment records, recipe, the optimized graph); nothing is assumed about the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

CONVERTED = ("int8", "fp16", "bf16")  # precisions a recipe converts layers to
CONVERSION_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast")


@dataclass(frozen=True)
class BreakdownRow:
    """One layer (profile row) in both runs: time per call before and after, precision after, and what
    happened ("faster", "slower", "unchanged" within 10%, "added": only in the run, such as conversions,
    "removed": only in the baseline, e.g. fused away). `share_before` is its share of the baseline's operator time."""

    name: str
    op_type: str
    precision: str
    before_ms: float | None
    after_ms: float | None
    share_before: float | None
    change: str

    @property
    def speedup(self) -> float | None:
        if self.before_ms and self.after_ms:
            return self.before_ms / self.after_ms
        return None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "speedup": self.speedup}


def calm_ms(row: BreakdownRow) -> float:
    """A layer's baseline time with interference removed where the evidence allows: a layer that kept its precision
    did the same work in both runs, and other processes only ever add time, so the smaller of its two times is
    the better estimate (one preempted call can inflate a profiled mean many times over on a busy machine)."""
    if row.before_ms and row.after_ms and row.precision not in CONVERTED and row.precision != "mixed":
        return min(row.before_ms, row.after_ms)
    return row.before_ms or 0.0


def calm_share(rows: list[BreakdownRow], chosen: list[BreakdownRow]) -> float:
    """The share of `chosen` in the baseline's operator time, both counted with calm_ms."""
    total = sum(calm_ms(r) for r in rows if r.before_ms)
    return sum(calm_ms(r) for r in chosen if r.before_ms) / total if total else 0.0


@dataclass(frozen=True)
class Bound:
    """Amdahl's bound on this recipe here: the converted share of the baseline call can at most run
    `assumed_gain` times faster (the machine's int8/fp32 ceiling ratio, or without limit when unknown); the rest
    stays: layers left in float, call overhead, and what the recipe added (conversions, layers the original had
    fused away) at the time they took in the run."""

    max_speedup: float
    converted_share: float  # of the baseline's call latency (p50)
    float_share: float  # of the baseline's call latency, in layers the recipe left in float
    overhead_share: float  # of the baseline's call latency, in no operator (framework and call overhead)
    added_share: float  # what the recipe added (conversions, layers only the run has), in baseline-call units
    assumed_gain: float | None  # None: converted layers taken as free (no ceiling known)
    basis: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Cause:
    """A named reason the run is not (more) faster, detected from evidence, with what to do instead.
    `source` names the records the evidence came from (profile, graph, cpu flags, execution, machine, recipe)."""

    code: str
    title: str
    evidence: str
    advice: str
    source: tuple[str, ...]
    time_ms: float | None = None  # time per call at stake, when the profile gives it

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "source": list(self.source)}


@dataclass(frozen=True)
class Explanation:
    """Why run `run_id` is (not) faster than its baseline: a one- or two-sentence summary, the speed-up with its
    interval, the per-layer breakdown, conversion overhead, Amdahl's bound and the named causes."""

    run_id: int | None
    baseline_id: int | None
    recipe: str
    summary: str
    speedup: dict[str, Any] | None  # {"ratio", "lo", "hi", "verdict"}
    rows: tuple[BreakdownRow, ...] = ()
    conversions: dict[str, Any] | None = None  # {"count", "time_ms", "share"} of the run's call
    bound: Bound | None = None
    causes: tuple[Cause, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    compiled: tuple[str, ...] = ()  # one line per compiled form measured with the run (metrics["compile"])

    def cause_codes(self) -> list[str]:
        return [c.code for c in self.causes]

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "baseline_id": self.baseline_id, "recipe": self.recipe,
                "summary": self.summary, "speedup": self.speedup, "rows": [r.to_dict() for r in self.rows],
                "conversions": self.conversions, "bound": self.bound.to_dict() if self.bound else None,
                "causes": [c.to_dict() for c in self.causes], "notes": list(self.notes),
                "compiled": list(self.compiled)}

    def text(self) -> str:
        """A plain-text rendering (the CLI's human output and the GUI dialog's copyable text)."""
        lines = [self.summary, ""]
        if self.causes:
            lines.append("Causes:")
            for c in self.causes:
                lines += [f"- {c.title} [{c.code}]", f"    evidence: {c.evidence}", f"    instead:  {c.advice}"]
        else:
            lines.append("No cause detected from the evidence recorded.")
        if self.conversions and self.conversions.get("count"):
            c = self.conversions
            lines += ["", f"Conversions: {c.get('count', 0)} node(s) per call, {c.get('time_ms') or 0.0:.4f} ms "
                          f"({(c.get('share') or 0.0) * 100:.1f}% of the run's operator time)"]
        if self.bound is not None and self.bound.max_speedup != float("inf"):
            lines += [f"Bound: at most {self.bound.max_speedup:.2f}x ({self.bound.basis})"]
        if self.rows:
            lines += ["", f"{'layer':32} {'op':16} {'prec':6} {'before ms':>10} {'after ms':>10} {'x':>6} "
                          f"{'share':>6}  change"]
            for r in self.rows:
                lines.append(f"{r.name[:32]:32} {r.op_type[:16]:16} {r.precision:6} {_ms(r.before_ms):>10} "
                             f"{_ms(r.after_ms):>10} {_x(r.speedup):>6} {_pct(r.share_before):>6}  {r.change}")
        if self.compiled:
            lines += ["", "Compiled forms (interleaved with eager):"] + [f"- {c}" for c in self.compiled]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"
