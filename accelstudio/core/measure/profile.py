"""Per-operator profile of a model: where one call's time goes, layer by layer, and in what precision.

`profile_model` runs a separate pass after the timed benchmark (profilers add overhead per operator, so their
figures never enter the latency statistics): a fresh session or module on the same runtime, threads and inputs,
`warmup` calls discarded and `calls` calls recorded, each operator's time averaged per call.

ONNX Runtime (profile_onnx.py) is profiled with its own trace (SessionOptions.enable_profiling) written into a
private temporary folder that is deleted afterwards; torch eager (profile_torch.py) with torch.profiler and a
record_function range around every module. Both produce the same dict, RunResult.metrics["profile"]:

    {"source": "onnxruntime" | "torch", "calls": int, "total_ms": float (mean per call, all operators),
     "layers": [{"name", "op_type", "time_ms", "share", "precision", "provider", "nodes"}],  (slowest first)
     "op_types": [{"op_type", "time_ms", "share", "count"}],
     "conversions": {"count": int, "time_ms": float, "share": float}}

A row's `name` is the layer name the layer table uses when the operator belongs to a weighted layer (fused
kernels such as Conv+BatchNorm+Relu count for their Conv layer); otherwise the operator's own node or module
name. `precision` is what actually executed: int8 for integer kernels (ConvInteger, MatMulInteger, QLinear*,
DynamicQuantizeMatMul, quantized torch modules), else the element type of the float inputs; "mixed" when a
row's kernels differ; "other" for kernels on integers that are not quantized arithmetic (shapes, indices).
`conversions` counts the precision-changing operators of one call (QuantizeLinear, DequantizeLinear,
DynamicQuantizeLinear, Cast; torch's quantize/dequantize/to) and the time they take.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelstudio.core.job import RuntimeSettings
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.progress import CancelToken, ProgressCallback, ProgressEvent, check_cancel

PROFILE_CALLS = 20
PROFILE_WARMUP = 3
PROFILE_STAGE = "profile"
PRECISIONS = ("fp32", "int8", "fp16", "bf16", "mixed", "other")


@dataclass(frozen=True)
class OpTiming:
    """One operator (node or module range) of the profiled model: its total time over all recorded calls."""

    row: str  # the profile row it is counted in (a layer name, or its own name)
    op_type: str
    total_us: float
    occurrences: int  # how many times it ran over all recorded calls
    precision: str
    provider: str
    conversion: bool = False


def profile_model(handle: ModelHandle, settings: RuntimeSettings, inputs: dict[str, np.ndarray],
                  calls: int = PROFILE_CALLS, warmup: int = PROFILE_WARMUP,
                  progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> dict:
    """The metrics["profile"] dict of `handle` run on `settings` (runtime, device, threads) with `inputs`
    (one call's feed): `warmup` calls discarded, then `calls` recorded and averaged per call."""
    if progress is not None:
        progress(ProgressEvent(PROFILE_STAGE, 0.0, f"profiling {calls} calls on {settings.runtime}"))
    check_cancel(cancel)
    calls = max(int(calls), 1)
    if settings.runtime == "onnxruntime":
        from accelstudio.core.measure.profile_onnx import profile_onnx

        timings, source = profile_onnx(handle, settings, inputs, calls, warmup, cancel), "onnxruntime"
    elif settings.runtime == "torch":
        from accelstudio.core.measure.profile_torch import profile_torch

        timings, source = profile_torch(handle, settings, inputs, calls, warmup, cancel), "torch"
    else:
        from accelstudio.core.errors import RuntimeUnavailableError

        raise RuntimeUnavailableError(f"a per-operator profile is made on onnxruntime or torch eager, not "
                                      f"{settings.runtime}; choose one of those runtimes to profile")
    if progress is not None:
        progress(ProgressEvent(PROFILE_STAGE, 1.0, f"{len(timings)} operators profiled"))
    return summarize(timings, calls, source)


def summarize(timings: list[OpTiming], calls: int, source: str) -> dict:
    """The profile dict from per-operator totals over `calls` recorded calls (see the module docstring)."""
    total_us = sum(t.total_us for t in timings)
    per_call = total_us / calls

    def share(us: float) -> float:
        return us / total_us if total_us > 0 else 0.0

    rows: dict[str, list[OpTiming]] = {}
    for t in timings:
        rows.setdefault(t.row, []).append(t)
    layers = [_row(name, ops, calls, share) for name, ops in rows.items()]
    layers.sort(key=lambda r: -r["time_ms"])
    kinds: dict[str, list[OpTiming]] = {}
    for t in timings:
        kinds.setdefault(t.op_type, []).append(t)
    op_types = [{"op_type": k, "time_ms": _ms(sum(t.total_us for t in ops), calls),
                 "share": share(sum(t.total_us for t in ops)),
                 "count": int(round(sum(t.occurrences for t in ops) / calls))} for k, ops in kinds.items()]
    op_types.sort(key=lambda r: -r["time_ms"])
    conv = [t for t in timings if t.conversion]
    conv_us = sum(t.total_us for t in conv)
    return {"source": source, "calls": int(calls), "total_ms": per_call / 1000.0, "layers": layers,
            "op_types": op_types,
            "conversions": {"count": int(round(sum(t.occurrences for t in conv) / calls)),
                            "time_ms": _ms(conv_us, calls), "share": share(conv_us)}}


def _row(name: str, ops: list[OpTiming], calls: int, share) -> dict:
    us = sum(t.total_us for t in ops)
    main = max(ops, key=lambda t: (not t.conversion, t.total_us))  # the row's kernel, conversions aside
    computing = [t for t in ops if not t.conversion] or ops
    precisions = {t.precision for t in computing}
    providers = sorted({t.provider for t in ops})
    return {"name": name, "op_type": main.op_type, "time_ms": _ms(us, calls), "share": share(us),
            "precision": precisions.pop() if len(precisions) == 1 else "mixed",
            "provider": ",".join(providers), "nodes": len(ops)}


def _ms(total_us: float, calls: int) -> float:
    return total_us / calls / 1000.0


def element_precision(type_name: str) -> str | None:
    """The precision a tensor element type means ("float" -> fp32, "float16" -> fp16, "int8" -> int8 ...),
    None for types that carry no arithmetic precision (int64 shapes, bool masks)."""
    name = type_name.lower().removeprefix("tensor(").removesuffix(")").removeprefix("torch.")
    return {"float": "fp32", "float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
            "int8": "int8", "uint8": "int8", "qint8": "int8", "quint8": "int8", "float64": "other",
            "double": "other"}.get(name)


def top_rows(profile: dict, n: int = 10) -> list[dict]:
    """The `n` slowest rows of a profile dict (its layers are stored slowest first)."""
    return sorted(profile.get("layers", []), key=lambda r: -r.get("time_ms", 0.0))[:n]
