"""One profiled operator's totals, and the profile dict built from them (the format is in profile.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A recorded call this many times slower than the median call was disturbed (another process took the core
# mid-call): its operators are left out, or one preempted kernel would claim most of the mean.
DISTURBED_FACTOR = 3.0


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


def undisturbed(durations: list[float]) -> list[bool]:
    """Which calls to keep: those at most DISTURBED_FACTOR times the median call's duration."""
    if not durations:
        return []
    limit = DISTURBED_FACTOR * float(np.median(durations))
    return [d <= limit for d in durations]
