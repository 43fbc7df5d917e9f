"""torch eager's per-module profile: torch.profiler with a record_function range around every module's forward.

Each module's range is named after its qualified path (the layer table's names for weighted modules), so a
row's time is the module's range minus the ranges of the modules it called: a Linear's row holds its addmm, a
residual block's row holds the Add written in its forward. The root module's own time is the row
"<ClassName> (top level)". Conversions are the quantize/dequantize/dtype-copy operators inside a module's own
time; precision is int8 for torch's quantized modules, else the element type of the module's first input.
"""

from __future__ import annotations

import numpy as np

from accelstudio.core.job import RuntimeSettings
from accelstudio.core.measure.op_timing import OpTiming, element_precision
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.progress import CancelToken, check_cancel

RANGE_PREFIX = "accelstudio.module:"
CONVERSION_OPS = {"aten::quantize_per_tensor", "aten::quantize_per_tensor_dynamic", "aten::quantize_per_channel",
                  "aten::dequantize", "aten::_to_copy"}


def profile_torch(handle: ModelHandle, settings: RuntimeSettings, inputs: dict[str, np.ndarray], calls: int,
                  warmup: int, cancel: CancelToken | None = None) -> list[OpTiming]:
    """Per-module timings over `calls` recorded calls of the eager module (after `warmup` discarded ones)."""
    from torch.profiler import ProfilerActivity, profile

    from accelstudio.core.measure.runtimes import make_predictor

    predictor = make_predictor(handle, settings)
    root = predictor.module
    names = {id(m): name for name, m in root.named_modules()}
    seen: dict[str, tuple[str, str]] = {}  # module name -> (class name, precision)
    hooks = _install_ranges(root, names, seen)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if settings.device == "cuda" else [])
    try:
        call = predictor.bind(inputs)
        with predictor.timing_context():
            for _ in range(warmup):
                call()
            check_cancel(cancel)
            with profile(activities=activities) as prof:
                for _ in range(calls):
                    call()
    finally:
        for h in hooks:
            h.remove()
    provider = "torch-" + settings.device
    return timings_from_events(prof.events(), type(root).__name__, seen, provider)


def _install_ranges(root, names: dict[int, str], seen: dict[str, tuple[str, str]]) -> list:
    """Pre/post forward hooks opening and closing a record_function range per module call."""
    import torch

    stack: list = []

    def pre(module, args):
        name = names.get(id(module), "")
        if name not in seen:
            kind = getattr(module, "original_name", None) or module._get_name()
            seen[name] = (kind, module_precision(module, args))
        rf = torch.autograd.profiler.record_function(RANGE_PREFIX + name)
        rf.__enter__()
        stack.append(rf)

    def post(module, args, output):
        if stack:
            stack.pop().__exit__(None, None, None)

    hooks = []
    for module in root.modules():
        hooks.append(module.register_forward_pre_hook(pre))
        hooks.append(module.register_forward_hook(post))
    return hooks


def module_precision(module, args) -> str:
    """int8 for torch's quantized modules (torch.ao...quantized), else the first tensor input's precision."""
    import torch

    if ".quantized" in type(module).__module__:
        return "int8"
    for a in args:
        if isinstance(a, torch.Tensor):
            return element_precision(str(a.dtype)) or "other"
    return "other"


def timings_from_events(events, root_class: str, seen: dict[str, tuple[str, str]],
                        provider: str) -> list[OpTiming]:
    """OpTimings from the profiler's events: each module range's own time and its conversions (`seen` maps
    a module name to its class name and precision)."""
    totals: dict[str, dict] = {}
    for ev in events:
        if not ev.name.startswith(RANGE_PREFIX):
            continue
        name = ev.name[len(RANGE_PREFIX):]
        own_us, conversions = _own_time(ev)
        rec = totals.setdefault(name, {"us": 0.0, "n": 0, "conv": {}})
        rec["us"] += own_us
        rec["n"] += 1
        for op, (us, n) in conversions.items():
            c = rec["conv"].setdefault(op, [0.0, 0])
            c[0] += us
            c[1] += n
    out: list[OpTiming] = []
    for name, rec in totals.items():
        row = name or f"{root_class} (top level)"
        conv_us = sum(us for us, _ in rec["conv"].values())
        kind, precision = seen.get(name, (root_class if not name else "Module", "other"))
        out.append(OpTiming(row, kind, max(rec["us"] - conv_us, 0.0), rec["n"], precision, provider))
        for op, (us, n) in rec["conv"].items():
            out.append(OpTiming(row, op, us, n, precision, provider, conversion=True))
    return out


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
