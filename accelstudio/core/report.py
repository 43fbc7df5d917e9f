"""The one typed reading of a run: `build_report(run, baseline)` -> RunReport.

A run's metrics stay stored as the dict the worker wrote (see RunResult's docstring for the keys); this module is
the only place that interprets it. The CLI, the GUI and the exports all show a RunReport, so they say the same
thing: the speed-up against a like-for-like baseline with its interval and verdict (accelstudio.core.stats), the
quality headline (accuracy when labels exist, else fidelity under that name; cosine for embedding outputs), the
paired accuracy change with McNemar's exact test, sizes, the data the run used, a "broken" verdict when fidelity
collapses, and warnings from the machine and execution records. Old runs without newer keys still read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from accelstudio.core import baseline as bl
from accelstudio.core.job import RunResult
from accelstudio.core.report_checks import broken_check, run_warnings
from accelstudio.core.stats import (ALPHA, SpeedupInterval, mcnemar_exact, paired_accuracy_change, speed_verdict,
                                    speedup_interval, wilson_interval)

SYNTHESIZED_BADGE = "random inputs: fidelity only"


def number(value: Any) -> float | None:
    """A finite float, or None for missing, non-numeric, bool, NaN or Inf values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    v = number(value)
    return None if v is None else int(v)


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

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-safe plain data (intervals as {lo, hi}; badge and broken text included)."""
        d = asdict(self)
        d["data"]["badge"] = self.data.badge
        d["broken"] = None if self.broken is None else {**asdict(self.broken), "text": self.broken.text()}
        d["verdict_line"] = self.verdict_line()
        return d


# --- building ---------------------------------------------------------------------------------------------

def build_report(run: RunResult, baseline: RunResult | None = None) -> RunReport:
    """Read a run (and optionally its baseline run) into a RunReport.

    A baseline that is not like-for-like (another model identity, runtime, device, resolved threads or batch;
    see accelstudio.core.baseline) is refused: no speed-up is given and `baseline_note` says what differs."""
    m = _dict(run.metrics)
    quality = read_quality(m)
    speedup, info, note = _compare(run, baseline)
    base_metrics = _dict(baseline.metrics) if baseline is not None and info is not None else None
    return RunReport(
        run_id=run.run_id, status=run.status, reason=run.reason or "", model=_model_name(run),
        model_key=bl.model_key(run), recipe=_recipe_label(run), settings=bl.describe_settings(run),
        is_baseline=bl.is_baseline_run(run), latency=read_latency(m), quality=quality, sizes=read_sizes(m),
        data=read_data(m, _dict(run.spec)), baseline=info, baseline_note=note, speedup=speedup,
        broken=broken_check(run, quality) if run.status == "done" else None,
        warnings=tuple(run_warnings(run, base_metrics)),
        notes=tuple(str(n) for n in m.get("notes") or ()),
    )


def _model_name(run: RunResult) -> str:
    ident = _dict(run.model_identity)
    return str(ident.get("name") or ident.get("path") or _dict(run.spec).get("model") or "?")


def _recipe_label(run: RunResult) -> str:
    from accelstudio.core.store_export import recipe_text

    return recipe_text(run) or "-"


def baseline_info(run: RunResult) -> BaselineInfo:
    """The words that name a baseline run."""
    key = bl.comparison_key(run)
    return BaselineInfo(run.run_id, key["runtime"], key["device"], key["threads"], key["batch"], run.created)


def _compare(run: RunResult, baseline: RunResult | None) -> tuple[Speedup | None, BaselineInfo | None, str]:
    if bl.is_baseline_run(run):
        return None, None, ""
    if baseline is None:
        return None, None, ("No like-for-like baseline run of this model yet (same model, "
                            f"{bl.describe_settings(run)}): run the unchanged model to compare")
    differs = bl.mismatches(run, baseline)
    if differs:
        return None, None, (f"Run {baseline.run_id} is not a like-for-like baseline (differs in "
                            f"{', '.join(differs)}): no speed-up shown")
    if baseline.status != "done" or not bl.is_baseline_run(baseline):
        return None, None, f"Run {baseline.run_id} is not a finished baseline run"
    return speedup_of(run, baseline), baseline_info(baseline), ""


def speedup_of(run: RunResult, baseline: RunResult) -> Speedup | None:
    """The speed-up of `run` over `baseline` (callers make sure they are like-for-like)."""
    if run.latencies_ms and baseline.latencies_ms:
        try:
            s: SpeedupInterval = speedup_interval(baseline.latencies_ms, run.latencies_ms)
        except ValueError:
            s = None
        if s is not None:
            return Speedup(s.ratio, Interval(s.lo, s.hi), s.verdict)
    a, b = number(_dict(run.metrics).get("p50_ms")), number(_dict(baseline.metrics).get("p50_ms"))
    if not a or not b:
        return None
    return Speedup(b / a, None, "", "ratio of p50 latencies (no per-call timings stored)")


def compare_speed(a: RunResult, b: RunResult) -> tuple[Speedup | None, str]:
    """B's speed-up over A (> 1: B is faster) when the two runs are like-for-like (same model identity, runtime,
    device, resolved threads and batch; the recipes may differ); else None and the reason."""
    differs = bl.mismatches(b, a)
    if differs:
        return None, f"not like-for-like (differs in {', '.join(differs)}): no ratio"
    if a.status != "done" or b.status != "done":
        return None, "both runs must be finished"
    speed = speedup_of(b, a)
    return speed, "" if speed is not None else "no latencies recorded"


def read_latency(m: dict) -> Latency:
    """The latency figures of a metrics dict."""
    stable = m.get("stable")
    return Latency(*(number(m.get(k)) for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms")),
                   n=_int(m.get("n")), throughput=number(m.get("throughput")),
                   cold_start_ms=number(m.get("cold_start_ms")), load_ms=number(m.get("load_ms")),
                   spread_ratio=number(m.get("spread_ratio")), stable=stable if isinstance(stable, bool) else None)


def read_sizes(m: dict) -> Sizes:
    """The size figures of a metrics dict."""
    keys = ("size_bytes", "baseline_size_bytes", "artifact_bytes", "params", "baseline_params", "flops",
            "baseline_flops")
    return Sizes(*(_int(m.get(k)) for k in keys), sparsity=number(m.get("sparsity")))


def read_data(m: dict, spec: dict | None = None) -> DataRecord:
    """The data record; for runs older than it, what the spec and the notes tell (the --data file, an example's
    own test set, or "synthesized inputs" in the notes)."""
    data = _dict(m.get("data"))
    ev = _dict(data.get("eval"))
    shapes = {str(k): [int(d) for d in v] for k, v in _dict(data.get("input_shapes")).items()
              if isinstance(v, (list, tuple))}
    guessed = tuple(str(g) for g in data.get("guessed_dims") or ())
    if ev:
        return DataRecord(ev.get("source"), _int(ev.get("n")), bool(ev.get("synthesized")),
                          ev.get("labeled") if isinstance(ev.get("labeled"), bool) else None,
                          _calib_text(data.get("calib")), _train_text(data.get("train")), shapes, guessed)
    notes = " ".join(str(n) for n in m.get("notes") or ())
    synthesized = True if "synthesized inputs" in notes else None
    labeled = True if m.get("accuracy") is not None else (False if "no labels" in notes else None)
    ref, given = _dict(spec).get("model"), _dict(spec).get("data")
    source = "synthesized inputs" if synthesized else given if isinstance(given, str) and given else None
    if source is None and isinstance(ref, str) and ref.startswith(bl.EXAMPLE_PREFIX):
        source = f"{ref[len(bl.EXAMPLE_PREFIX):]} test set"
    if source is not None and synthesized is None:
        synthesized = False
    return DataRecord(source, _int(m.get("n_eval")), synthesized, labeled, input_shapes=shapes, guessed_dims=guessed)


def _calib_text(calib: Any) -> str:
    c = _dict(calib)
    if not c:
        return ""
    how = "split off the evaluation data, never evaluated" if c.get("split_from_eval") else "its own file"
    return f"{c.get('source') or '?'}, {c.get('n', '?')} samples ({how})"


def _train_text(train: Any) -> str:
    t = _dict(train)
    if not t:
        return ""
    overlap = _int(t.get("overlap_with_eval")) or 0
    text = f"{t.get('source') or '?'}, {t.get('n', '?')} samples"
    return text + (f" ({overlap} rows also in the evaluation data)" if overlap else "")


def read_quality(m: dict) -> Quality:
    """Accuracy with its paired change when labels exist; otherwise fidelity with the headline that fits the
    output kind (recorded by the worker; older runs: class scores assumed, and said)."""
    fid = _dict(m.get("fidelity"))
    acc = number(m.get("accuracy"))
    n_eval = _int(m.get("n_eval"))
    kind = fid.get("output_kind") if fid.get("output_kind") in ("class_scores", "embedding") else None
    reason = str(fid.get("output_reason") or "")
    if kind is None and acc is None and fid:
        kind, reason = "class_scores", "output kind not recorded (older run): read as class scores"
    if acc is not None:
        kind, reason = "class_scores", reason or "labels are given, so the outputs are class scores"
    common = dict(output_kind=kind, output_reason=reason,
                  agreement=number(fid.get("top1_agreement")), cosine=number(fid.get("cosine")),
                  max_abs_error=number(fid.get("max_abs_error")), kl_divergence=number(fid.get("kl_divergence")),
                  n_compared=_int(fid.get("n_compared")), nonfinite_outputs=_int(m.get("nonfinite_outputs")),
                  n_eval=n_eval)
    if acc is not None:
        n = n_eval or 0
        ci = m.get("accuracy_ci")
        lo, hi = (ci if _pair(ci) else wilson_interval(round(acc * n), n))
        return Quality("accuracy", "Accuracy", acc * 100.0, Interval(lo * 100.0, hi * 100.0), True,
                       accuracy=acc, baseline_accuracy=number(m.get("baseline_accuracy")),
                       change=read_change(m), **common)
    if kind == "embedding" and common["cosine"] is not None:
        return Quality("cosine", "Fidelity: cosine", common["cosine"], None, False, **common)
    agree = common["agreement"]
    if agree is not None:
        n = common["n_compared"] or n_eval or 0
        lo, hi = wilson_interval(round(agree * n), n)
        return Quality("agreement", "Fidelity: top-1 agreement", agree * 100.0, Interval(lo * 100.0, hi * 100.0),
                       False, **common)
    return Quality(None, "", None, None, False, **common)


def _pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(number(v) is not None for v in value)


def read_change(m: dict) -> AccuracyChange | None:
    """The paired accuracy change. From the discordant counts when stored (Newcombe interval + exact McNemar,
    recomputed so older runs read the same way); else the stored interval of an older run."""
    delta = number(m.get("accuracy_delta"))
    disc = _dict(m.get("discordant"))
    lost, gained = _int(disc.get("baseline_only")), _int(disc.get("new_only"))
    acc, base, n = number(m.get("accuracy")), number(m.get("baseline_accuracy")), _int(m.get("n_eval"))
    if lost is not None and gained is not None and base is not None and n:
        both = max(round(base * n) - lost, 0)
        neither = max(n - both - lost - gained, 0)
        c = paired_accuracy_change(both, lost, gained, neither)
        return AccuracyChange(c.delta_pts, Interval(c.lo_pts, c.hi_pts), lost, gained, c.p_value, c.verdict,
                              "Newcombe paired interval + exact McNemar test")
    if delta is None:
        return None
    ci = m.get("accuracy_delta_ci")
    interval = Interval(float(ci[0]), float(ci[1])) if _pair(ci) else None
    p = number(m.get("mcnemar_p"))
    verdict = "within noise"
    if interval is not None and not interval.contains(0.0) and (p is None or p < ALPHA):
        verdict = "real gain" if delta > 0 else "real drop"
    return AccuracyChange(delta, interval, None, None, p, verdict, "stored interval (older run)")


__all__ = ["AccuracyChange", "BaselineInfo", "Broken", "DataRecord", "Interval", "Latency", "Quality", "RunReport",
           "SYNTHESIZED_BADGE", "Sizes", "Speedup", "baseline_info", "build_report", "compare_speed", "number", "read_quality",
           "speedup_of", "mcnemar_exact", "speed_verdict"]
