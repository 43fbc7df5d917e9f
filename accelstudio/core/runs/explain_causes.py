"""The named causes of a run that is not (more) faster, each detected from evidence the runs recorded.

Every detector reads an `Evidence` (the run and its baseline, their profiles, the optimized graph's op counts, the
CPU features recorded with the run, the execution and machine records, the recipe) and returns a Cause only when
the evidence shows it, with that evidence in words and what to do instead. A cause is never named from the
recipe alone: "dynamic int8 leaves convolutions in fp32" needs fp32 convolutions in the profile or the graph.
Detectors run in order of how much they usually explain; the first found is the summary's main cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from accelstudio.core.job import RunResult
from accelstudio.core.runs.explain_model import CONVERSION_OPS, BreakdownRow, Cause, calm_share

MIN_SHARE = 0.10  # a part of the call below this share explains too little to be named
CALL_OVERHEAD_MS = 0.1  # a whole call this short is mostly the runtime's fixed cost per call
OVERHEAD_SHARE = 0.5  # or: no operator accounts for over half the call
MAX_CALL_COST_MS = 0.5  # ... and that unexplained part is short enough to be a per-call cost
BUSY_PCT = 10.0  # other processes' share of the machine's CPU that makes a measurement "busy" (machine_load.py)
ZEROING_METHODS = ("l1-unstructured", "random", "2:4")
INT8_CONV_OPS = ("ConvInteger", "QLinearConv")


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Evidence:
    """Everything the detectors may read, gathered once."""

    run: RunResult
    baseline: RunResult | None
    speed: dict | None
    graph_ops: dict[str, int] | None
    features: dict | None
    rows: tuple[BreakdownRow, ...]

    @classmethod
    def of(cls, run, baseline, speed, graph_ops, features, rows) -> "Evidence":
        if features is None:
            cpu = _dict(_dict(run.environment).get("cpu"))
            features = _dict(cpu.get("features")) or _dict(cpu.get("flags")) or None
            if features is not None:
                features = {"model_name": cpu.get("model"), **features}
        return cls(run, baseline, speed, graph_ops, features, tuple(rows))

    @property
    def quant(self) -> dict:
        return _dict(_dict(_dict(self.run.spec).get("recipe")).get("quantize"))

    @property
    def prune(self) -> dict:
        return _dict(_dict(_dict(self.run.spec).get("recipe")).get("prune"))

    @property
    def profile(self) -> dict:
        return _dict(_dict(self.run.metrics).get("profile"))

    def profile_rows(self) -> list[dict]:
        return [r for r in self.profile.get("layers") or () if isinstance(r, dict)]

    @property
    def not_faster(self) -> bool:
        return self.speed is not None and self.speed.get("verdict") != "faster"

    def cpu_name(self) -> str:
        return str(_dict(self.features).get("model_name") or "this CPU")


def _share(rows: list[dict], profile: dict) -> tuple[float, float]:
    """(time_ms, share of the profile's operator time) of `rows`."""
    t = sum(_num(r.get("time_ms")) or 0.0 for r in rows)
    total = _num(profile.get("total_ms")) or 0.0
    return t, (t / total if total else 0.0)


def _is_float_conv(row: dict) -> bool:
    op = str(row.get("op_type", ""))
    return "conv" in op.lower() and op not in INT8_CONV_OPS and row.get("precision") in ("fp32", "fp16", "bf16")


# --- detectors ---------------------------------------------------------------------------------------------

def convs_left_in_float(ev: Evidence) -> Cause | None:
    """Dynamic int8 quantizes MatMul/Gemm (and Linear) only: convolutions keep running in fp32."""
    if ev.quant.get("mode") != "dynamic-int8":
        return None
    matched = [r for r in ev.rows if r.before_ms and r.after_ms and _is_float_conv(
        {"op_type": r.op_type, "precision": r.precision})]
    convs = [r for r in ev.profile_rows() if _is_float_conv(r)]
    if matched:  # their share of the baseline call: what they hold back
        t, share = sum(r.after_ms for r in matched), calm_share(list(ev.rows), matched)
        evidence = (f"the profile shows {len(matched)} convolution layer(s) still running in fp32; they held "
                    f"{share * 100:.0f}% of the baseline's operator time and take {t:.3f} ms per call now")
        source: tuple[str, ...] = ("profile", "recipe")
    elif convs:
        t, share = _share(convs, ev.profile)
        evidence = (f"the profile shows {len(convs)} convolution layer(s) still running in fp32, "
                    f"{t:.3f} ms per call ({share * 100:.0f}% of the run's operator time)")
        source = ("profile", "recipe")
    else:
        ops = ev.graph_ops or {}
        if not ops.get("Conv") or any(ops.get(k) for k in INT8_CONV_OPS) or ev.profile_rows():
            return None
        t, share, source = None, 1.0, ("graph", "recipe")
        evidence = f"the optimized graph still has {ops['Conv']} fp32 Conv node(s) and no integer convolution"
    if share < MIN_SHARE:
        return None
    return Cause("dynamic-int8-convs-fp32", "dynamic int8 left the convolutions in fp32", evidence,
                 "use static-int8 (calibrated activation scales) with per-channel weights: it runs convolutions "
                 "as int8 kernels (QLinearConv)", source, t)


def convinteger_slower(ev: Evidence) -> Cause | None:
    """ConvInteger (integer convolution with dynamically quantized inputs) is often slower than fp32 Conv."""
    rows = [r for r in ev.rows if r.op_type == "ConvInteger" and r.before_ms and r.after_ms]
    if not rows:
        return None
    before = sum(r.before_ms for r in rows)
    after = sum(r.after_ms for r in rows)
    if after < before * (1 - 0.10):
        return None
    return Cause("convinteger-slow", "ConvInteger ran no faster than the fp32 convolutions it replaced",
                 f"{len(rows)} ConvInteger layer(s) took {after:.3f} ms per call against {before:.3f} ms as fp32 "
                 f"Conv in the baseline ({before / after:.2f}x)",
                 "quantize convolutions statically (static-int8: QLinearConv with fused requantization), or keep "
                 "them in fp32 (exclude them) and quantize only MatMul/Gemm", ("profile",), after - before)


SHAPE_OPS = ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "ReorderInput", "ReorderOutput", "Shape",
             "Gather", "Identity", "Softmax")


def qdq_not_fused(ev: Evidence) -> Cause | None:
    """QuantizeLinear/DequantizeLinear pairs left around float layers: those layers run in fp32 plus conversions.
    A static int8 graph always quantizes its inputs and dequantizes its outputs; the evidence is layers doing
    arithmetic in float (not only reshaping) between Q/DQ nodes, such as Conv under disabled graph optimization or a
    BatchNormalization that was not folded into its convolution before quantizing."""
    if ev.quant.get("mode") != "static-int8":
        return None
    qdq = [r for r in ev.profile.get("op_types") or () if isinstance(r, dict)
           and r.get("op_type") in ("QuantizeLinear", "DequantizeLinear")]
    excluded = set(ev.quant.get("exclude") or ())
    floating = [r for r in ev.profile_rows() if r.get("precision") == "fp32" and r.get("name") not in excluded
                and str(r.get("op_type")) not in SHAPE_OPS + CONVERSION_OPS]
    if not qdq or not floating:
        return None
    t_float, _ = _share(floating, ev.profile)
    t = sum(_num(r.get("time_ms")) or 0.0 for r in qdq)
    total = _num(ev.profile.get("total_ms")) or 0.0
    share = (t + t_float) / total if total else 0.0
    if share < MIN_SHARE:
        return None
    count = sum(int(r.get("count") or 0) for r in qdq)
    kinds: dict[str, int] = {}
    for r in floating:
        kinds[str(r.get("op_type"))] = kinds.get(str(r.get("op_type")), 0) + int(r.get("nodes") or 1)
    listed = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    level = _dict(_dict(ev.run.metrics).get("execution")).get("graph_opt_level")
    why = f" with ONNX Runtime graph optimization '{level}'" if level in ("disabled", "basic") else ""
    if why:
        advice = "keep ONNX Runtime graph optimization at 'extended' or 'all' (the Q/DQ fusions live there)"
    elif "BatchNormalization" in kinds:
        advice = ("fold BatchNormalization into the convolutions before quantizing (onnxruntime.quantization."
                  "quant_pre_process does), so each Conv+BN becomes one int8 kernel")
    else:
        advice = ("the float layers between int8 ones pay a conversion each way: for attention models use "
                  "dynamic-int8 per-channel (no activation Q/DQ), or exclude the small layers next to them")
    return Cause("qdq-not-fused", "QuantizeLinear/DequantizeLinear pairs were not fused into int8 kernels",
                 f"float layers ({listed}) still ran in fp32{why} ({t_float:.3f} ms per call) between {count} "
                 f"Q/DQ node(s) taking {t:.3f} ms: together {share * 100:.0f}% of the run's operator time",
                 advice, ("profile", "execution") if why else ("profile",), t + t_float)


def converted_slower(ev: Evidence) -> Cause | None:
    """Layers converted to int8/fp16 that ran slower than in fp32: at this size, quantizing activations on every
    call (dynamic int8) or the reorders around int8 kernels cost more than the narrower arithmetic saves."""
    slower = [r for r in ev.rows if r.precision in ("int8", "fp16", "bf16") and r.change == "slower"]
    converted = [r for r in ev.rows if r.precision in ("int8", "fp16", "bf16") and r.before_ms and r.after_ms]
    if not slower:
        return None
    before, after = sum(r.before_ms for r in slower), sum(r.after_ms for r in slower)
    if sum(r.share_before or 0.0 for r in slower) < MIN_SHARE:
        return None
    ops = ", ".join(sorted({r.op_type for r in slower}))
    return Cause("converted-slower", "layers converted to lower precision ran slower",
                 f"{len(slower)} of {len(converted)} converted layer(s) ({ops}) took {after:.3f} ms per call "
                 f"against {before:.3f} ms in fp32 ({before / after:.2f}x)",
                 "these layers are too small for int8 to pay for converting their inputs: exclude them from "
                 "quantization, or batch more samples per call so the arithmetic dominates", ("profile",),
                 after - before)


def per_tensor_without_vnni(ev: Evidence) -> Cause | None:
    """u8 x s8 products without VNNI go through 16-bit sums that saturate with per-tensor QInt8 weights."""
    q, f = ev.quant, ev.features
    if f is None or q.get("mode") not in ("dynamic-int8", "static-int8") or q.get("per_channel"):
        return None
    if q.get("weight_type", "qint8") != "qint8" or not _known_no_int8_dot(f):
        return None
    return Cause("per-tensor-int8-no-vnni", "per-tensor int8 weights on a CPU without VNNI",
                 f"{ev.cpu_name()} records no VNNI/AMX int8 dot-product instructions (flags avx512_vnni, avx_vnni, "
                 "amx all off), and the recipe uses per-tensor QInt8 weights: the int8 kernels go through "
                 "saturating 16-bit sums (slower and less accurate)",
                 "turn on per-channel quantization or use weight type QUInt8; on this CPU int8 gains little "
                 "over fp32", ("cpu flags", "recipe"))


def _known_no_int8_dot(f: dict) -> bool:
    keys = ("int8_dot", "avx512_vnni", "avx_vnni", "amx")
    return any(k in f for k in keys) and not any(f.get(k) for k in keys)


def zeros_on_dense_kernels(ev: Evidence) -> Cause | None:
    """Unstructured zeros leave every multiply in a dense kernel."""
    p = ev.prune
    sparsity = _num(_dict(ev.run.metrics).get("sparsity")) or 0.0
    if p.get("method") not in ZEROING_METHODS or not p.get("amount") or sparsity < MIN_SHARE:
        return None
    if ev.speed is not None and not ev.not_faster:
        return None
    unchanged = [r for r in ev.rows if r.before_ms and r.change == "unchanged"]
    detail = (f"; {len(unchanged)} of {len([r for r in ev.rows if r.before_ms])} layers ran unchanged"
              if ev.rows else "")
    speed = (f"; the run is {ev.speed['ratio']:.2f}x, {ev.speed['verdict']}" if ev.speed else "")
    return Cause("sparsity-no-speedup", "unstructured zeros on dense kernels",
                 f"{sparsity * 100:.0f}% of the weights are zero ({p['method']}) but dense kernels multiply every "
                 f"zero{speed}{detail}",
                 "prune whole channels (l1-structured) for speed, then recover accuracy; keep unstructured "
                 "pruning for compressed file size", ("recipe", "metrics", "profile" if ev.rows else "latency"))


def half_not_native(ev: Evidence) -> Cause | None:
    """fp16/bf16 without native arithmetic (or without CPU kernels) converts to fp32 and back."""
    mode, f = ev.quant.get("mode"), _dict(ev.features)
    if mode not in ("fp16", "bf16"):
        return None
    native = f.get("fp16_native" if mode == "fp16" else "bf16_native")
    casts = [r for r in ev.profile.get("op_types") or () if isinstance(r, dict) and r.get("op_type") == "Cast"]
    t, share = _share(casts, ev.profile) if casts else (0.0, 0.0)
    if native is False:
        evidence = f"{ev.cpu_name()} records no native {mode} arithmetic (only conversions)"
        source: tuple[str, ...] = ("cpu flags", "recipe")
    elif share >= MIN_SHARE:
        count = sum(int(r.get("count") or 0) for r in casts)
        evidence = (f"{count} Cast node(s) took {t:.3f} ms "
                    f"per call ({share * 100:.0f}% of operator time): the runtime has no {mode} kernels for "
                    "these operators on the CPU")
        source = ("profile", "recipe")
    else:
        return None
    if casts:
        evidence += f"; casts take {t:.3f} ms per call"
    return Cause(f"{mode}-not-native", f"{mode} without native support on this CPU", evidence,
                 "for CPU speed use int8 (static-int8 per-channel); keep fp16/bf16 for GPUs or for size",
                 source, t or None)


def call_overhead(ev: Evidence) -> Cause | None:
    """A model so small that the runtime's fixed cost per call is most of the call."""
    base = ev.baseline or ev.run
    p50 = _num(_dict(base.metrics).get("p50_ms"))
    if not p50:
        return None
    prof = _dict(_dict(base.metrics).get("profile"))
    ops = _num(prof.get("total_ms"))
    overhead_share = max(p50 - ops, 0.0) / p50 if ops else None
    # a fixed cost per call is tens of microseconds; more unexplained time than MAX_CALL_COST_MS is interference
    # or work outside the operators, not call overhead
    fixed = overhead_share is not None and overhead_share >= OVERHEAD_SHARE and p50 - ops <= MAX_CALL_COST_MS
    if p50 >= CALL_OVERHEAD_MS and not fixed:
        return None
    flops = _num(_dict(base.metrics).get("baseline_flops")) or _num(_dict(base.metrics).get("flops"))
    work = f" for {flops / 1e6:.2f} MFLOPs" if flops else ""
    part = (f"; operators account for {ops:.4f} ms, the rest ({overhead_share * 100:.0f}%) is the runtime's "
            "fixed cost per call") if overhead_share else ""
    return Cause("call-overhead", "the model is so small that call overhead dominates",
                 f"the baseline call takes {p50:.4f} ms{work}{part}",
                 "batch several samples per call (raise Batch) or fuse the model into a larger pipeline; "
                 "compression cannot remove the fixed cost per call", ("latency", "profile" if ops else "metrics"))


def threads_and_load(ev: Evidence) -> Cause | None:
    """Thread over-subscription, spinning on a busy machine, or a busy machine (either run)."""
    findings, sources = [], set()
    for label, r in (("this run", ev.run), ("the baseline", ev.baseline)):
        if r is None:
            continue
        ex, machine = _dict(_dict(r.metrics).get("execution")), _dict(_dict(r.metrics).get("machine"))
        cpu = _dict(_dict(r.environment).get("cpu"))
        cores = cpu.get("available_cores") or cpu.get("logical_cores")
        threads = int(ex.get("threads") or 0)
        inter = int(ex.get("inter_threads") or 1) if ex.get("execution_mode") == "parallel" else 1
        streams = int(_dict(_dict(r.spec).get("runtime")).get("streams") or 1)
        busy_pct = _num(machine.get("other_cpu_pct"))
        if cores and threads * inter * streams > cores:
            findings.append(f"{label} used {threads} intra-op x {inter} inter-op x {streams} stream thread(s) on "
                            f"{cores} core(s)")
            sources.add("execution")
        if ex.get("spinning") and busy_pct is not None and busy_pct > BUSY_PCT:
            findings.append(f"{label} had spinning threads while other processes used {busy_pct:.0f}% of the CPU")
            sources.update({"execution", "machine"})
        elif busy_pct is not None and busy_pct > BUSY_PCT:
            findings.append(f"other processes used {busy_pct:.0f}% of the CPU while {label} was timed")
            sources.add("machine")
    if not findings:
        return None
    return Cause("threads-oversubscribed", "thread over-subscription or a busy machine", "; ".join(findings),
                 "use at most one thread per free core (Threads), spinning off on a shared machine, and measure "
                 "again when the machine is quiet; compare A and B interleaved", tuple(sorted(sources)))


DISTURBED_RATIO = 1.5  # same-precision layers this much faster or slower between the runs: interference


def unequal_interference(ev: Evidence) -> Cause | None:
    """Layers that kept their precision did the same work in both runs; when they ran at very different speeds,
    the two measurements were disturbed differently and the comparison says more about the machine than the
    recipe."""
    same = [r for r in ev.rows if r.precision == "fp32" and r.before_ms and r.after_ms and r.before_ms > 0.005]
    if len(same) < 3:
        return None
    ratios = sorted(r.before_ms / r.after_ms for r in same)
    median = ratios[len(ratios) // 2]
    if 1 / DISTURBED_RATIO <= median <= DISTURBED_RATIO:
        return None
    way = "faster" if median > 1 else "slower"
    return Cause("unequal-interference", "the two runs were disturbed differently",
                 f"{len(same)} layers that stayed in fp32 (the same work in both runs) ran at a median "
                 f"{max(median, 1 / median):.1f}x {way} in this run than in the baseline",
                 "measure the baseline and the run again back to back on a quiet machine (or interleaved, as "
                 "benchmarks/speedups.py does) before trusting this speed-up", ("profile",))


def device_fallback(ev: Evidence) -> Cause | None:
    """The run asked for a device and ran on another (e.g. CUDA asked, CPU ran)."""
    m = _dict(ev.run.metrics)
    asked = _dict(_dict(ev.run.spec).get("runtime")).get("device")
    ran = _dict(m.get("execution")).get("device")
    if asked and ran and str(ran).split(":")[0] != str(asked).split(":")[0]:
        evidence = f"the run asked for {asked} and its execution record says it ran on {ran}"
    elif m.get("error_type") == "DeviceMismatchError":
        evidence = f"the run was refused: {ev.run.reason}"
    else:
        return None
    return Cause("device-fallback", f"asked for {asked}, ran elsewhere", evidence,
                 "install the runtime build with that device's provider (e.g. onnxruntime-gpu with CUDA and "
                 "cuDNN) and check the device is visible, or measure on the device that ran", ("execution",))


DETECTORS: tuple[Callable[[Evidence], Cause | None], ...] = (
    device_fallback, convs_left_in_float, convinteger_slower, qdq_not_fused, half_not_native,
    zeros_on_dense_kernels, converted_slower, per_tensor_without_vnni, call_overhead, threads_and_load,
    unequal_interference)


def detect_causes(ev: Evidence) -> list[Cause]:
    """Every cause the evidence shows, in DETECTORS order."""
    return [c for c in (d(ev) for d in DETECTORS) if c is not None]


__all__ = ["CONVERSION_OPS", "DETECTORS", "Evidence", "detect_causes"]
