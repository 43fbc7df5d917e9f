"""Per-operator profile of a model: where one call's time goes, layer by layer, and in what precision.

`profile_model` runs a separate pass after the timed benchmark (profilers add overhead per operator, so their
figures never enter the latency statistics): a fresh session or module on the same runtime, threads and inputs,
`warmup` calls discarded and `calls` calls recorded, each operator's time averaged per call over the recorded
calls that were not disturbed (a call over 3x the median call's time, where another process took the core
mid-call, is left out; "calls" says how many were averaged).

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

import numpy as np

from accelstudio.core.job import RuntimeSettings
from accelstudio.core.measure.op_timing import summarize
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.progress import CancelToken, ProgressCallback, ProgressEvent, check_cancel

PROFILE_CALLS = 20
PROFILE_WARMUP = 3
PROFILE_STAGE = "profile"
PRECISIONS = ("fp32", "int8", "fp16", "bf16", "mixed", "other")


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

        (timings, kept), source = profile_onnx(handle, settings, inputs, calls, warmup, cancel), "onnxruntime"
    elif settings.runtime == "torch":
        from accelstudio.core.measure.profile_torch import profile_torch

        (timings, kept), source = profile_torch(handle, settings, inputs, calls, warmup, cancel), "torch"
    else:
        from accelstudio.core.errors import RuntimeUnavailableError

        raise RuntimeUnavailableError(f"a per-operator profile is made on onnxruntime or torch eager, not "
                                      f"{settings.runtime}; choose one of those runtimes to profile")
    if progress is not None:
        progress(ProgressEvent(PROFILE_STAGE, 1.0, f"{len(timings)} operators profiled"))
    return summarize(timings, max(kept, 1), source)
