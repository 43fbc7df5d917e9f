"""The typed run report's data: frozen dataclasses that RunReport is made of (built by
accelstudio.core.runs.report.build_report, the one reading of a run's stored metrics)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

SYNTHESIZED_BADGE = "random inputs: fidelity only"


def number(value: Any) -> float | None:
    """A finite float, or None for missing, non-numeric, bool, NaN or Inf values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Interval:
    """A 95% interval [lo, hi] in the unit of the figure it belongs to."""

    lo: float
    hi: float

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi


@dataclass(frozen=True)
class Latency:
    """Per-call latency of the run (ms), throughput (samples/s) and whether the timing was stable."""

    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    n: int | None = None
    throughput: float | None = None
    cold_start_ms: float | None = None
    load_ms: float | None = None
    spread_ratio: float | None = None
    stable: bool | None = None


@dataclass(frozen=True)
class BaselineInfo:
    """The baseline run a result is compared with, named in words."""

    run_id: int | None
    runtime: str | None
    device: str | None
    threads: int | None
    batch: int | None
    created: str | None

    def describe(self) -> str:
        """'run 3 (onnxruntime on cpu, 2 threads, batch 1)'."""
        threads = "all cores" if self.threads == 0 else f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        return (f"run {self.run_id if self.run_id is not None else '?'} ({self.runtime or '?'} on "
                f"{self.device or '?'}, {threads}, batch {self.batch if self.batch is not None else '?'})")


@dataclass(frozen=True)
class Speedup:
    """median(baseline) / median(run) with its 95% interval; verdict 'faster', 'within noise' or 'slower', or ''
    when the runs lack per-call timings (no interval, no verdict)."""

    ratio: float
    interval: Interval | None
    verdict: str
    method: str = "ratio of medians; 95% interval: union of moving-block bootstrap and batch medians"

    def text(self) -> str:
        """'2.01x faster (95% CI 1.95-2.07x)', 'within noise: 1.03x (95% CI 0.91-1.18x)', '1.3x slower (...)'."""
        ci = f" (95% CI {self.interval.lo:.2f}-{self.interval.hi:.2f}x)" if self.interval else " (no interval)"
        if self.verdict == "faster":
            return f"{self.ratio:.2f}x faster{ci}"
        if self.verdict == "slower":
            slow_ci = f" (95% CI {1 / self.interval.hi:.2f}-{1 / self.interval.lo:.2f}x)" if self.interval else ci
            return f"{1 / self.ratio:.2f}x slower{slow_ci}"
        if self.verdict == "within noise":
            return f"same speed within noise: {self.ratio:.2f}x{ci}"
        return f"{self.ratio:.2f}x speed-up{ci}"


@dataclass(frozen=True)
class AccuracyChange:
    """Accuracy new - baseline on the same samples, in points, with its 95% interval, the discordant counts
    (`lost`: right before, wrong now; `gained`: the reverse), McNemar's exact p and the verdict
    ('real drop', 'within noise' or 'real gain')."""

    delta_pts: float
    interval: Interval | None
    lost: int | None
    gained: int | None
    p_value: float | None
    verdict: str
    method: str

    def text(self) -> str:
        """'-1.11 pts (95% CI -2.81..+0.11; 4 lost, 0 gained, exact p = 0.125: within noise)'."""
        test = []
        if self.lost is not None and self.gained is not None:
            test.append(f"{self.lost} lost, {self.gained} gained")
        if self.p_value is not None:
            test.append(f"exact p = {self.p_value:.3g}")
        ci = f"95% CI {self.interval.lo:+.2f}..{self.interval.hi:+.2f}" if self.interval is not None else ""
        inner = "; ".join(p for p in (ci, ", ".join(test)) if p)
        return f"{self.delta_pts:+.2f} pts ({inner + ': ' if inner else ''}{self.verdict})"


@dataclass(frozen=True)
class Quality:
    """What the run's outputs are worth. `headline` is "accuracy" (labels exist), "agreement" (class scores
    without labels: top-1 agreement with the uncompressed model) or "cosine" (embedding or regression outputs);
    `label` names it for display ("Accuracy" or "Fidelity: ..."). `value` is in percent for accuracy and agreement,
    the mean cosine for cosine; `interval` in the same unit (None for cosine). `output_reason` says how the
    output kind was decided."""

    headline: str | None = None
    label: str = ""
    value: float | None = None
    interval: Interval | None = None
    labeled: bool = False
    output_kind: str | None = None
    output_reason: str = ""
    accuracy: float | None = None  # fraction
    baseline_accuracy: float | None = None
    n_eval: int | None = None
    change: AccuracyChange | None = None
    agreement: float | None = None  # fraction
    cosine: float | None = None
    max_abs_error: float | None = None
    kl_divergence: float | None = None
    n_compared: int | None = None
    nonfinite_outputs: int | None = None

    def headline_text(self) -> str:
        """'Accuracy 98.61% (95% CI 96.8-99.4)', 'Fidelity: cosine 0.9931', '' when nothing was measured."""
        if self.value is None:
            return ""
        if self.headline == "cosine":
            return f"{self.label} {self.value:.4f}"
        ci = f" (95% CI {self.interval.lo:.1f}-{self.interval.hi:.1f})" if self.interval else ""
        return f"{self.label} {self.value:.2f}%{ci}"


@dataclass(frozen=True)
class Sizes:
    """Parameter bytes after and before (the same counting rule), the saved file, parameters, FLOPs, sparsity."""

    size_bytes: int | None = None
    baseline_size_bytes: int | None = None
    artifact_bytes: int | None = None
    params: int | None = None
    baseline_params: int | None = None
    flops: int | None = None
    baseline_flops: int | None = None
    sparsity: float | None = None

    @property
    def ratio(self) -> float | None:
        """baseline / after (> 1: smaller)."""
        if self.size_bytes and self.baseline_size_bytes:
            return self.baseline_size_bytes / self.size_bytes
        return None


@dataclass(frozen=True)
class DataRecord:
    """What the run was measured and evaluated on. `badge` is set for synthesized inputs."""

    source: str | None = None
    n: int | None = None
    synthesized: bool | None = None
    labeled: bool | None = None
    calib: str = ""
    train: str = ""
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    guessed_dims: tuple[str, ...] = ()

    @property
    def badge(self) -> str:
        return SYNTHESIZED_BADGE if self.synthesized else ""

    def describe(self) -> str:
        """'data.npz, 360 samples, labeled' or 'synthesized inputs, 64 samples (random inputs: fidelity only)'."""
        if self.source is None and self.synthesized is None:
            return "not recorded"
        source = "synthesized inputs" if self.synthesized else (self.source or "?")
        text = f"{source}, {self.n if self.n is not None else '?'} samples"
        if self.labeled is not None:
            text += ", labeled" if self.labeled else ", no labels"
        return text + (f" ({self.badge})" if self.badge else "")

    def shapes_text(self) -> str:
        """'x=1x3x224x224, mask=1x64' or ''."""
        return ", ".join(f"{k}={'x'.join(str(d) for d in v)}" for k, v in self.input_shapes.items())

    def guessed_text(self) -> str:
        """'GUESSED: x[2]=224 (H), x[3]=224 (W)' when dims were guessed, else ''."""
        return f"GUESSED: {', '.join(self.guessed_dims)}" if self.guessed_dims else ""


@dataclass(frozen=True)
class Broken:
    """Fidelity collapsed: what was seen and the likely cause with what to do."""

    reasons: tuple[str, ...]
    cause: str

    def text(self) -> str:
        return f"BROKEN: {'; '.join(self.reasons)}. Likely cause: {self.cause}"


@dataclass(frozen=True)
class RunReport:
    """Everything the views say about one run, read once from its stored record (see the module doc).

    `baseline` is the like-for-like baseline run compared with (None: none given or refused, `baseline_note`
    says why); `speedup` needs it. `is_baseline`: the run itself measured the unchanged model."""

    run_id: int | None
    status: str
    reason: str
    model: str
    model_key: str
    recipe: str
    settings: str
    is_baseline: bool
    latency: Latency
    quality: Quality
    sizes: Sizes
    data: DataRecord
    baseline: BaselineInfo | None = None
    baseline_note: str = ""
    speedup: Speedup | None = None
    broken: Broken | None = None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def accuracy_verdict(self) -> str:
        change = self.quality.change
        return change.verdict if change is not None else ""

    def verdict_line(self) -> str:
        """The one-line comparison the GUI and the CLI print (names the baseline used). A broken run's
        `broken.text()` is shown apart from it, in red / capitals."""
        if self.status != "done":
            return f"Run {self.run_id} {self.status}: {self.reason or 'no reason given'}"
        parts = []
        if self.is_baseline:
            parts.append(f"the baseline run for {self.settings}")
        elif self.speedup is not None and self.baseline is not None:
            parts.append(f"vs baseline {self.baseline.describe()}: {self.speedup.text()}")
        else:
            parts.append(self.baseline_note or "No like-for-like baseline run")
        if self.quality.change is not None:
            parts.append(f"accuracy {self.quality.change.text()}")
        elif self.quality.headline in ("agreement", "cosine") and not self.is_baseline:
            parts.append(self.quality.headline_text())
        if self.sizes.ratio is not None and not self.is_baseline:
            r = self.sizes.ratio
            parts.append(f"{r:.1f}x smaller" if r >= 1.05 else f"{1 / r:.2f}x the size" if r <= 0.95 else
                         "about the same size")
        return "; ".join(parts)

    def flags(self) -> tuple[str, ...]:
        """Short marks for a list of runs (the GUI's runs table and `accelstudio runs list`): BROKEN, the
        random-inputs badge, and the first warning's subject with how many more there are."""
        if self.status != "done":
            return ()
        marks = []
        if self.broken is not None:
            marks.append("BROKEN")
        if self.data.badge:
            marks.append("random inputs")
        if self.warnings:
            more = f" (+{len(self.warnings) - 1})" if len(self.warnings) > 1 else ""
            marks.append("⚠ " + self.warnings[0].split(":")[0] + more)
        return tuple(marks)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-safe plain data (intervals as {lo, hi}; badge and broken text included)."""
        d = asdict(self)
        d["data"]["badge"] = self.data.badge
        d["broken"] = None if self.broken is None else {**asdict(self.broken), "text": self.broken.text()}
        d["verdict_line"] = self.verdict_line()
        return d
