"""torch eager's per-module profile: wall-clock time per module call, and torch.profiler for what runs inside.

Forward pre/post hooks on every module take perf_counter_ns readings, so a row's time is the module's call
minus the calls of the modules it made (a Linear's row holds its addmm, a residual block's row holds the Add
written in its forward); the root module's own time is the row "<ClassName> (top level)". Module times are
wall-clock readings because torch.profiler's own overhead per operator is large and erratic on a busy machine
(measured here: a 0.2 ms call took 75-100 ms with the profiler on); the profiler runs on a few further calls
with a record_function range per module (named by its qualified path) only to find the conversions inside
each module's own time (quantize/dequantize/dtype copies): their count per call, and their share of the
module's profiled own time, applied to its wall-clock time. Precision is int8 for torch's quantized modules,
else the element type of the module's first input. On CUDA module times are host-side times (launch and
synchronization): read them as where the Python and dispatch time goes, not as kernel times.
"""

from __future__ import annotations

import time

import numpy as np

from accelstudio.core.job import RuntimeSettings
from accelstudio.core.measure.op_timing import OpTiming, element_precision, undisturbed
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.progress import CancelToken, check_cancel

RANGE_PREFIX = "accelstudio.module:"
CONVERSION_OPS = {"aten::quantize_per_tensor", "aten::quantize_per_tensor_dynamic", "aten::quantize_per_channel",
                  "aten::dequantize", "aten::_to_copy"}
PROFILER_CALLS = 5


def profile_torch(handle: ModelHandle, settings: RuntimeSettings, inputs: dict[str, np.ndarray], calls: int,
                  warmup: int, cancel: CancelToken | None = None) -> tuple[list[OpTiming], int]:
    """Per-module timings over the undisturbed ones of `calls` recorded calls of the eager module (after
    `warmup` discarded ones), and how many calls they cover."""
    from torch.profiler import ProfilerActivity, profile

    from accelstudio.core.measure.runtimes import make_predictor

    predictor = make_predictor(handle, settings)
    root = predictor.module
    clock = ModuleClock({id(m): name for name, m in root.named_modules()})
    hooks = clock.install(root)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if settings.device == "cuda" else [])
    try:
        call = predictor.bind(inputs)
        with predictor.timing_context():
            for _ in range(warmup):
                call()
            check_cancel(cancel)
            clock.calls.clear()
            for _ in range(calls):
                call()
            check_cancel(cancel)
            clock.profiling, timed = True, list(clock.calls)
            with profile(activities=activities) as prof:
                for _ in range(min(calls, PROFILER_CALLS)):
                    call()
    finally:
        for h in hooks:
            h.remove()
    conversions = conversion_shares(prof.events(), min(calls, PROFILER_CALLS))
    return timings_from_calls(timed, conversions, type(root).__name__, clock.seen, "torch-" + settings.device)


class ModuleClock:
    """Forward hooks timing each module call's own time (its call minus its children's calls); with
    `profiling` set they also open a record_function range per module call."""

    def __init__(self, names: dict[int, str]):
        self.names = names
        self.seen: dict[str, tuple[str, str]] = {}  # module name -> (class name, precision)
        self.calls: list[dict[str, float]] = []  # per root call: module name -> own microseconds
        self.profiling = False
        self._stack: list[list] = []  # [name, start ns, children ns, record_function or None]
        self._current: dict[str, float] = {}

    def install(self, root) -> list:
        hooks = []
        for module in root.modules():
            hooks.append(module.register_forward_pre_hook(self._pre))
            hooks.append(module.register_forward_hook(self._post))
        return hooks

    def _pre(self, module, args) -> None:
        import torch

        name = self.names.get(id(module), "")
        if name not in self.seen:
            kind = getattr(module, "original_name", None) or module._get_name()
            self.seen[name] = (kind, module_precision(module, args))
        rf = None
        if self.profiling:
            rf = torch.autograd.profiler.record_function(RANGE_PREFIX + name)
            rf.__enter__()
        self._stack.append([name, time.perf_counter_ns(), 0, rf])

    def _post(self, module, args, output) -> None:
        now = time.perf_counter_ns()
        if not self._stack:
            return
        name, start, children, rf = self._stack.pop()
        if rf is not None:
            rf.__exit__(None, None, None)
        total = now - start
        self._current[name] = self._current.get(name, 0.0) + (total - children) / 1000.0
        if self._stack:
            self._stack[-1][2] += total
        else:  # the root call ended
            self.calls.append(self._current)
            self._current = {}


def conversion_shares(events, calls: int) -> dict[str, dict[str, tuple[float, float]]]:
    """Per module name, per conversion op: (share of the module's profiled own time, occurrences per call)."""
    own: dict[str, float] = {}
    conv: dict[str, dict[str, list[float]]] = {}
    for ev in events:
        if not ev.name.startswith(RANGE_PREFIX):
            continue
        name = ev.name[len(RANGE_PREFIX):]
        own_us, found = _own_time(ev)
        own[name] = own.get(name, 0.0) + own_us
        for op, (us, n) in found.items():
            c = conv.setdefault(name, {}).setdefault(op, [0.0, 0.0])
            c[0] += us
            c[1] += n
    return {name: {op: (min(us / own[name], 1.0) if own.get(name) else 0.0, n / max(calls, 1))
                   for op, (us, n) in ops.items()} for name, ops in conv.items()}


def timings_from_calls(calls: list[dict[str, float]], conversions: dict, root_class: str,
                       seen: dict[str, tuple[str, str]], provider: str) -> tuple[list[OpTiming], int]:
    """OpTimings from per-call module own times (undisturbed calls only) split by the conversion shares."""
    keep = undisturbed([sum(c.values()) for c in calls])
    kept = [c for c, k in zip(calls, keep) if k]
    totals: dict[str, float] = {}
    for c in kept:
        for name, us in c.items():
            totals[name] = totals.get(name, 0.0) + us
    out: list[OpTiming] = []
    n = len(kept)
    for name, us in totals.items():
        row = name or f"{root_class} (top level)"
        kind, precision = seen.get(name, (root_class if not name else "Module", "other"))
        shares = conversions.get(name, {})
        conv_share = min(sum(share for share, _ in shares.values()), 1.0)
        out.append(OpTiming(row, kind, us * (1.0 - conv_share), n, precision, provider))
        for op, (share, per_call) in shares.items():
            out.append(OpTiming(row, op, us * share, max(int(round(per_call * n)), 1), precision, provider,
                                conversion=True))
    return out, n


def module_precision(module, args) -> str:
    """int8 for torch's quantized modules (torch.ao...quantized), else the first tensor input's precision."""
    import torch

    if ".quantized" in type(module).__module__:
        return "int8"
    for a in args:
        if isinstance(a, torch.Tensor):
            return element_precision(str(a.dtype)) or "other"
    return "other"


def _own_time(ev) -> tuple[float, dict[str, tuple[float, int]]]:
    """A module range's time minus its child modules' ranges, and the top-most conversion ops inside it."""
    child_us = 0.0
    conversions: dict[str, tuple[float, int]] = {}
    todo = list(ev.cpu_children)
    while todo:
        child = todo.pop()
        if child.name.startswith(RANGE_PREFIX):
            child_us += child.cpu_time_total
            continue
        if child.name in CONVERSION_OPS:
            us, n = conversions.get(child.name, (0.0, 0))
            conversions[child.name] = (us + child.cpu_time_total, n + 1)
            continue
        todo.extend(child.cpu_children)
    return ev.cpu_time_total - child_us, conversions
