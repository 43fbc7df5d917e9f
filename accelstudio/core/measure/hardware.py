"""What this CPU can do, and which recipe choices will disappoint on it (with what to do instead).

`cpu_features()` reads the instruction-set flags at run time (Linux /proc/cpuinfo; elsewhere only what the
platform module says), with no extra dependency. `hardware_warnings()` turns a recipe plus those features
into plain advice; tests pass a features dict so the advice does not depend on the machine running them.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from accelstudio.core.quant_modes import quant_mode
from accelstudio.core.recipe import Recipe

ZEROING_METHODS = ("l1-unstructured", "random", "2:4")


@dataclass(frozen=True)
class HardwareWarning:
    """A recipe choice that will not pay off (or will hurt) here: what happens, what to do instead, and the
    control it concerns ("prune" or "quantize") so the GUI can show it beside that slider."""

    code: str
    message: str
    advice: str
    control: str


def cpu_features(cpuinfo_path: str | Path = "/proc/cpuinfo") -> dict:
    """The CPU's name, core count and SIMD flags relevant to int8 / fp16 / bf16 inference.

    Keys: model_name, cores, arch, and booleans avx2, avx512f, avx512_vnni, avx_vnni, amx, f16c, avx512_fp16,
    avx512_bf16, amx_bf16, amx_fp16, plus the derived int8_dot (any VNNI/AMX, or ARM dot product), fp16_native and
    bf16_native (arithmetic, not only conversion).
    """
    flags: set[str] = set()
    model_name = ""
    try:
        text = Path(cpuinfo_path).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key in ("model name", "cpu model", "hardware") and not model_name:
            model_name = value.strip()
    features = {
        "model_name": model_name or platform.processor() or platform.machine() or "unknown CPU",
        "cores": os.cpu_count() or 1,
        "arch": platform.machine(),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "avx_vnni": "avx_vnni" in flags,
        "amx": bool(flags & {"amx_tile", "amx_int8"}),
        "f16c": "f16c" in flags,
        "avx512_fp16": "avx512_fp16" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "amx_fp16": "amx_fp16" in flags,
    }
    arm = {"asimddp", "asimdhp", "bf16"} & flags
    features["int8_dot"] = features["avx512_vnni"] or features["avx_vnni"] or features["amx"] or "asimddp" in arm
    features["fp16_native"] = features["avx512_fp16"] or features["amx_fp16"] or "asimdhp" in arm
    features["bf16_native"] = features["avx512_bf16"] or features["amx_bf16"] or "bf16" in arm
    return features


def _has_int8_dot(f: dict) -> bool:
    return bool(f.get("int8_dot") or f.get("avx512_vnni") or f.get("avx_vnni") or f.get("amx"))


def _has_fp16(f: dict) -> bool:
    # AMX tiles alone do no fp16 arithmetic (only AMX-FP16 does), so plain "amx" does not count here
    return bool(f.get("fp16_native") or f.get("avx512_fp16") or f.get("amx_fp16"))


def _has_bf16(f: dict) -> bool:
    return bool(f.get("bf16_native") or f.get("avx512_bf16") or f.get("amx_bf16") or f.get("amx"))


def hardware_warnings(recipe: Recipe, backend: str, device: str = "cpu", features: dict | None = None
                      ) -> list[HardwareWarning]:
    """Advice on `recipe` for `backend` ("torch" or "onnx") on `device`; CPU features are read if not given."""
    out = _pruning_warnings(recipe, device)
    if not recipe.quantize.active:
        return out
    if device != "cpu":
        return out + _gpu_quant_warnings(recipe)
    return out + _cpu_quant_warnings(recipe, backend, cpu_features() if features is None else features)


def _cpu_quant_warnings(recipe: Recipe, backend: str, f: dict) -> list[HardwareWarning]:
    q, out = recipe.quantize, []
    mode = quant_mode(q.mode)
    name = f.get("model_name", "this CPU")
    # the modes with a weight type run int8 kernels on quantized activations (uint8 x int8 products)
    if mode.weight_type_allowed and not q.per_channel and q.weight_type == "qint8" \
            and not _has_int8_dot(f):
        out.append(HardwareWarning(
            "int8-saturation",
            f"{name} has no VNNI: int8 kernels multiply uint8 activations by int8 weights with 16-bit "
            "intermediate sums, which saturate with per-tensor QInt8 weights and cost accuracy",
            "turn on per-channel quantization, or use weight type QUInt8", "quantize"))
    if mode.needs_calibration and backend == "onnx" and q.weight_type == "quint8" and _has_int8_dot(f):
        out.append(HardwareWarning(
            "int8-uint8-weights",
            f"{name} has VNNI/AMX int8 dot products, which ONNX Runtime's fast kernels use for uint8 activations x "
            "int8 (QInt8) weights; QUInt8 weights take slower paths (static int8 on digits-resnet: 0.87x with "
            "QUInt8 against 2.95x with QInt8 on such a CPU)",
            "use weight type QInt8", "quantize"))
    if mode.half:
        native = _has_fp16(f) if q.mode == "fp16" else _has_bf16(f)
        if not native:
            f16c = q.mode == "fp16" and f.get("f16c")
            extra = " (F16C only converts; the arithmetic still runs in fp32)" if f16c else ""
            out.append(HardwareWarning(
                f"{q.mode}-slow",
                f"{name} has no native {q.mode} arithmetic{extra}: every operation converts to fp32 and back, "
                "so the model halves in size but runs slower than fp32",
                "for speed use int8 (dynamic-int8 per-channel), or keep fp32", "quantize"))
    if mode.needs_calibration and backend == "onnx":  # calibrated activation scales: QDQ pairs in the graph
        out.append(HardwareWarning(
            "static-int8-graph-optimization",
            "static int8 ONNX graphs carry QuantizeLinear/DequantizeLinear pairs; without ONNX Runtime graph "
            "optimization they run as fp32 plus conversions, slower than the original",
            "keep ONNX Runtime graph optimization enabled where you deploy (AccelStudio's runtime enables "
            "ORT_ENABLE_ALL, so the measured numbers include it)", "quantize"))
    if mode.weight_only:
        bits = q.mode.split("-")[1]
        out.append(HardwareWarning(
            f"weight-only-{bits}",
            f"weight-only {bits} shrinks the weights but dequantizes them on the fly on CPU: it saves memory, "
            "not latency",
            "for CPU latency use dynamic-int8 or static-int8; keep weight-only modes for memory-bound models",
            "quantize"))
    if mode.simulated:
        out.append(HardwareWarning(
            "simulated-quantization",
            f"sim-{q.bits} only simulates {q.bits}-bit rounding in fp32 storage: it shows the accuracy cost, "
            "never a size or speed gain",
            "to gain speed or size choose dynamic-int8, static-int8 or a weight-only mode", "quantize"))
    return out


def _pruning_warnings(recipe: Recipe, device: str) -> list[HardwareWarning]:
    p = recipe.prune
    if not p.active or p.method not in ZEROING_METHODS:
        return []
    if p.method == "2:4":
        where = ("CPU kernels ignore 2:4 patterns" if device == "cpu"
                 else "only sparse tensor-core kernels (e.g. TensorRT on Ampere or newer) use 2:4 patterns")
        message = f"2:4 sparsity sets half the weights to zero but {where}: the dense model runs at the same speed"
    else:
        message = (f"{p.method} pruning sets weights to zero but dense kernels still multiply every zero: "
                   "no speedup; the file only gets smaller once compressed (zip, gzip)")
    return [HardwareWarning("sparsity-no-speedup", message,
                            "for speed use l1-structured pruning, which removes whole channels", "prune")]


def _gpu_quant_warnings(recipe: Recipe) -> list[HardwareWarning]:
    q = recipe.quantize
    if quant_mode(q.mode).cpu_kernels:
        return [HardwareWarning(
            "int8-gpu", f"{q.mode} targets CPU kernels; on a GPU it falls back to slower paths or to the CPU",
            "on a GPU use fp16 or bf16", "quantize")]
    return []
