"""Compilation as a measured step: a compiled form timed next to the eager one, interleaved in one process.

`measure_compile(handle, settings, inputs, backend)` builds the eager reference and the compiled form(s)
(compile_forms.py), times them in alternating blocks for the run's time budget, and returns a CompileReport per
compiled form: compile time, medians, the speed-up with its 95% interval (stats.speedup_interval), calls to pay the
compile time back (compile_ms / (eager_ms - compiled_ms), with the range the interval allows), graph breaks, and
`no_effect` saying why a compile did nothing measurable: a speed-up interval that includes 1.0, a graph that
dynamo could not capture, graph breaks, a provider that fell back. A form is `recommended` only when its whole
interval is above 1.0.

Backends: "inductor" and "torchscript" against torch eager (torch models); "ort-levels": ONNX Runtime's basic,
extended and all graph optimization levels against "disabled"; "openvino": the OpenVINO execution provider
against the CPU provider at the run's level (only when installed). `compile_metrics` is the pipeline's entry:
it never fails a run, it records why a backend could not be measured.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelstudio.core.errors import AccelStudioError, JobCancelled
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.measure import compile_forms as cf
from accelstudio.core.measure.stats import speedup_interval
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.progress import CancelToken, ProgressCallback, ProgressEvent, check_cancel

BLOCK = 5  # calls of one form before switching to the other
MIN_CALLS = 20


@dataclass(frozen=True)
class CompileReport:
    """One compiled form against the eager reference (see the module doc). status: "measured", "unavailable"
    (the compiler or provider does not exist here, `message` says what to install) or "failed"."""

    backend: str
    reference: str
    status: str
    message: str = ""
    compile_s: float | None = None
    eager_ms: float | None = None
    compiled_ms: float | None = None
    speedup: float | None = None
    lo: float | None = None
    hi: float | None = None
    verdict: str = ""
    n: int = 0
    payback_calls: float | None = None  # None: never pays back (not faster by the medians)
    payback_range: tuple[float, float | None] | None = None  # from the interval; None upper = maybe never
    graphs: int | None = None
    graph_breaks: int | None = None
    break_reasons: tuple[str, ...] = ()
    no_effect: str = ""
    recommended: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["break_reasons"] = list(self.break_reasons)
        d["payback_range"] = list(self.payback_range) if self.payback_range else None
        return d

    def text(self) -> str:
        """One line: 'inductor: 1.31x [1.20, 1.45] faster than torch eager, compile 21.3 s, pays back after
        5,100 calls [4,200, 6,800]' or why it was not measured."""
        if self.status != "measured":
            return f"{self.backend}: {self.status}: {self.message}"
        pay = ("never pays back" if self.payback_calls is None
               else f"pays back after {self.payback_calls:,.0f} calls" + _range_text(self.payback_range))
        line = (f"{self.backend}: {self.speedup:.2f}x [{self.lo:.2f}, {self.hi:.2f}] {self.verdict} vs "
                f"{self.reference} ({self.compiled_ms:.4f} vs {self.eager_ms:.4f} ms, n={self.n}), compile "
                f"{_seconds(self.compile_s)}, {pay}")
        if self.no_effect:
            line += f"; did nothing measurable: {self.no_effect}"
        return line + ("; recommended" if self.recommended else "; not recommended")


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.2f} s" if s >= 1.0 else f"{s * 1000:.1f} ms"


def _range_text(r: tuple[float, float | None] | None) -> str:
    if not r:
        return ""
    return f" [{r[0]:,.0f}, {'never' if r[1] is None else f'{r[1]:,.0f}'}]"


def interleaved_timings(calls: dict[str, Any], budget_s: float, max_calls: int,
                        cancel: CancelToken | None = None) -> dict[str, list[float]]:
    """Per-call milliseconds of each call, timed in alternating blocks of BLOCK (the order flips every round, so
    neither form always follows the other) until `budget_s` has passed (at least MIN_CALLS each) or `max_calls`."""
    samples: dict[str, list[float]] = {k: [] for k in calls}
    names = list(calls)
    start, rounds = time.perf_counter(), 0
    while True:
        n = len(samples[names[0]])
        if n >= max_calls or (n >= MIN_CALLS and time.perf_counter() - start > budget_s):
            break
        check_cancel(cancel)
        for name in (names if rounds % 2 == 0 else names[::-1]):
            fn, out = calls[name], samples[name]
            for _ in range(BLOCK):
                t = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t) * 1000.0)
        rounds += 1
    return samples


def compare_forms(eager: cf.Form, form: cf.Form, budget_s: float, max_calls: int, warmup: int = 3,
                  cancel: CancelToken | None = None) -> CompileReport:
    """Time `form` against `eager` (warm-up calls of both discarded) into a CompileReport."""
    for _ in range(max(warmup, 1)):
        eager.call()
        form.call()
    t = interleaved_timings({"eager": eager.call, "compiled": form.call}, budget_s, max_calls, cancel)
    s = speedup_interval(t["eager"], t["compiled"])
    eager_ms, comp_ms = float(np.median(t["eager"])), float(np.median(t["compiled"]))
    compile_ms = (form.compile_s or 0.0) * 1000.0
    payback = compile_ms / (eager_ms - comp_ms) if eager_ms > comp_ms else None
    rng = None
    if payback is not None:
        def at(ratio: float) -> float | None:
            gain = eager_ms * (1.0 - 1.0 / ratio)
            return compile_ms / gain if gain > 0 else None
        rng = (at(s.hi) or payback, at(s.lo))
    no_effect = _no_effect(s.lo, s.hi, form)
    return CompileReport(form.name, eager.name, "measured", "; ".join(form.notes), form.compile_s, eager_ms,
                         comp_ms, s.ratio, s.lo, s.hi, s.verdict, min(len(t["eager"]), len(t["compiled"])),
                         payback, rng, form.graphs, form.graph_breaks, form.break_reasons, no_effect,
                         recommended=s.lo > 1.0 and not form.notes)


def _no_effect(lo: float, hi: float, form: cf.Form) -> str:
    reasons = []
    if lo <= 1.0 <= hi:
        reasons.append(f"the speed-up interval [{lo:.2f}, {hi:.2f}] includes 1.0")
    if form.graphs == 0:
        reasons.append("dynamo captured no graph (the model ran eagerly)")
    if form.graph_breaks:
        reasons.append(f"{form.graph_breaks} graph break(s)"
                       + (f": {'; '.join(form.break_reasons[:3])}" if form.break_reasons else ""))
    reasons.extend(form.notes)
    return "; ".join(reasons)


def measure_compile(handle: ModelHandle, settings: RuntimeSettings, inputs: dict[str, np.ndarray], backend: str,
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None
                    ) -> list[CompileReport]:
    """CompileReports of `backend`'s compiled form(s) against the eager one (see the module doc)."""
    budget, calls = settings.time_budget_s, settings.repeats

    def say(fraction: float, text: str) -> None:
        if progress is not None:
            progress(ProgressEvent("compile", fraction, text))

    if backend in ("inductor", "torchscript"):
        eager = _build(backend, lambda: cf.torch_eager(handle, inputs))
        say(0.0, f"compiling with {backend}")
        form = _build(backend, lambda: (cf.inductor if backend == "inductor" else cf.torchscript)(handle, inputs))
        pairs = [(eager, form)]
    elif backend == "ort-levels":
        eager = _build(backend, lambda: cf.ort_form(handle, settings, inputs, "disabled", name="ort-disabled"))
        pairs = [(eager, _build(f"ort-{lv}", lambda lv=lv: cf.ort_form(handle, settings, inputs, lv)))
                 for lv in ("basic", "extended", "all")]
    elif backend == "openvino":
        level = settings.graph_opt_level
        eager = _build(backend, lambda: cf.ort_form(handle, settings, inputs, level, name=f"ort-cpu-{level}"))
        pairs = [(eager, _build(backend, lambda: cf.ort_form(handle, settings, inputs, level,
                                                             cf.openvino_provider(), "openvino")))]
    else:
        raise cf.CompileUnavailable(f"unknown compile backend {backend!r}")
    out = []
    for i, (ref, form) in enumerate(pairs):
        check_cancel(cancel)
        if isinstance(ref, CompileReport) or isinstance(form, CompileReport):
            out.append(ref if isinstance(ref, CompileReport) else form)
            continue
        say(i / len(pairs), f"timing {form.name} against {ref.name}")
        out.append(compare_forms(ref, form, budget / len(pairs), calls, settings.warmup, cancel))
    say(1.0, "; ".join(r.text() for r in out))
    return out


def _build(name: str, make) -> cf.Form | CompileReport:
    """make() or the report saying why it could not be built."""
    try:
        return make()
    except JobCancelled:
        raise
    except cf.CompileUnavailable as exc:
        return CompileReport(name, "", "unavailable", str(exc))
    except Exception as exc:  # noqa: BLE001 - compilers raise many types; the run keeps its eager figures
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        return CompileReport(name, "", "failed", f"{type(exc).__name__}: {text}")


def compile_metrics(handle: ModelHandle, settings: RuntimeSettings, inputs: dict[str, np.ndarray],
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> dict[str, Any]:
    """metrics["compile"] of a run: {"backend", "results": [CompileReport.to_dict()], "recommended": name | None,
    "lines": [CompileReport.text() per result], "summary": the lines joined}. Never raises for a compiler
    problem (it is recorded); cancellation still stops the job."""
    try:
        reports = measure_compile(handle, settings, inputs, settings.compile, progress, cancel)
    except JobCancelled:
        raise
    except AccelStudioError as exc:
        reports = [CompileReport(settings.compile, "", "unavailable", str(exc))]
    best = [r for r in reports if r.recommended]
    best.sort(key=lambda r: -(r.lo or 0.0))
    return {"backend": settings.compile, "results": [_finite(r.to_dict()) for r in reports],
            "recommended": best[0].backend if best else None,
            "lines": [r.text() for r in reports], "summary": " | ".join(r.text() for r in reports)}


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
