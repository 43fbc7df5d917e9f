"""Why is a run (not) faster than its like-for-like baseline? `explain_run(run, baseline)` -> Explanation.

From both runs' per-operator profiles (RunResult.metrics["profile"]) it lays out an Amdahl breakdown: which layers
got faster and by how much, which stayed in float and their share of the baseline call, the conversions the recipe
added, the call time no operator accounts for (framework and call overhead), and the bound "at most N x is
possible with this recipe on this machine": Amdahl's law with the converted share sped up by the machine's
int8/fp32 (or fp16/fp32) ceiling ratio when the run records one, else taken as free. The named causes come from
explain_causes.py, each detected from evidence. Without profiles the causes that need none are still named and
the breakdown's absence is said.

Shares are of the baseline's median call latency (p50), not of the profiled operator time: the profiler adds
overhead per operator, so operator times are scaled down to the measured call when they sum to more than it.
"""

from __future__ import annotations

import re
from typing import Any

from accelstudio.core.job import RunResult
from accelstudio.core.runs import baseline as bl
from accelstudio.core.runs.explain_causes import Evidence, detect_causes
from accelstudio.core.runs.explain_model import CONVERSION_OPS, CONVERTED, Bound, BreakdownRow, Explanation, \
    calm_ms
from accelstudio.core.runs.run_labels import recipe_text

UNCHANGED_WITHIN = 0.10  # a layer within 10% of its baseline time counts as unchanged
MIN_MATCHED = 0.5  # below this share of the baseline's time matched by name, layers are compared by op family
FAMILIES = {"Conv": ("Conv", "FusedConv", "NhwcFusedConv", "QLinearConv", "ConvInteger"),
            "MatMul/Gemm": ("MatMul", "Gemm", "FusedMatMul", "FusedGemm", "QGemm", "QLinearMatMul", "MatMulInteger",
                            "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "Attention", "QAttention"),
            "conversions": CONVERSION_OPS}
_SUFFIXES = re.compile(r"(_quant|_QuantizeLinear|_DequantizeLinear|_output_0|_fused|_token_\d+)+$")


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def profile_of(run: RunResult | None) -> dict | None:
    """The run's per-operator profile, when it holds one with layers."""
    prof = _dict(_dict(run.metrics).get("profile")) if run is not None else {}
    return prof if isinstance(prof.get("layers"), list) and prof.get("layers") else None


def explain_run(run: RunResult, baseline: RunResult | None, graph_ops: dict[str, int] | None = None,
                features: dict | None = None) -> Explanation:
    """The Explanation of `run` against `baseline` (its like-for-like baseline run, or None). `graph_ops` (op type
    counts of the optimized graph) is read from the run's artifact when not given; `features` (CPU flags)
    from the run's environment record, never from the machine explaining it."""
    from accelstudio.core.runs.report import speedup_of

    notes: list[str] = []
    if baseline is not None and (differs := bl.mismatches(run, baseline)):
        notes.append(f"run {baseline.run_id} is not like-for-like (differs in {', '.join(differs)}): not compared")
        baseline = None
    speed = None
    if baseline is not None and run.status == "done" and not bl.is_baseline_run(run):
        s = speedup_of(run, baseline)
        if s is not None:
            speed = {"ratio": s.ratio, "lo": s.interval.lo if s.interval else None,
                     "hi": s.interval.hi if s.interval else None, "verdict": s.verdict}
    after, before = profile_of(run), profile_of(baseline)
    rows = breakdown_rows(before, after) if after and before else []
    if rows and _matched_share(rows) < MIN_MATCHED:
        rows = family_rows(before, after)
        notes.append("layer names differ between the two graphs (the recipe renamed nodes): layers are compared "
                     "by operator family")
    bound = amdahl_bound(run, baseline, rows) if rows else None
    if not (after and before) and run.status == "done":
        missing = " and ".join(w for w, p in (("this run", after), ("its baseline", before)) if not p)
        notes.append(f"no per-operator profile for {missing}: measure with profiling on for the layer breakdown "
                     "and the bound")
    if bound is not None and speed is not None and speed["ratio"] > bound.max_speedup:
        notes.append(f"the measured speed-up ({speed['ratio']:.2f}x) is above the bound ({bound.max_speedup:.2f}x): "
                     "the baseline took longer than its operators explain (interference while it was measured) "
                     "or the recipe also sped up layers it left in float; measure both again back to back")
    ev = Evidence.of(run, baseline, speed, graph_ops if graph_ops is not None else graph_op_counts(run),
                     features, rows)
    causes = tuple(detect_causes(ev))
    conversions = _dict(after.get("conversions")) if after else None
    summary = summarize(run, baseline, speed, bound, causes)
    compiled = _dict(_dict(run.metrics).get("compile"))
    lines = tuple(str(x) for x in compiled.get("lines") or ())
    return Explanation(run.run_id, baseline.run_id if baseline else None, recipe_text(run) or "-", summary,
                       speed, tuple(rows), conversions or None, bound, causes, tuple(notes), lines)


# --- breakdown ---------------------------------------------------------------------------------------------

def _key(name: str) -> str:
    return _SUFFIXES.sub("", str(name))


def breakdown_rows(before: dict, after: dict) -> list[BreakdownRow]:
    """Baseline and run profile rows matched by layer name (exact, then without the suffixes quantizers add),
    slowest baseline layer first; rows only in the run (conversions, new kernels) follow."""
    total = _num(before.get("total_ms")) or sum(_num(r.get("time_ms")) or 0.0 for r in before["layers"]) or 1.0
    after_rows = {str(r.get("name")): r for r in after["layers"]}
    by_key: dict[str, list[dict]] = {}
    for r in after["layers"]:
        by_key.setdefault(_key(str(r.get("name"))), []).append(r)
    used: set[str] = set()
    out = []
    for b in sorted(before["layers"], key=lambda r: -(_num(r.get("time_ms")) or 0.0)):
        name = str(b.get("name"))
        match = [after_rows[name]] if name in after_rows and name not in used else \
            [r for r in by_key.get(_key(name), []) if str(r.get("name")) not in used]
        used.update(str(r.get("name")) for r in match)
        t0 = _num(b.get("time_ms"))
        t1 = sum(_num(r.get("time_ms")) or 0.0 for r in match) if match else None
        prec = _merge_precision([str(r.get("precision", "other")) for r in match]) if match else "-"
        op = match[0].get("op_type", b.get("op_type")) if match else b.get("op_type")
        out.append(BreakdownRow(name, str(op), prec, t0, t1, (t0 or 0.0) / total, _change(t0, t1)))
    for r in after["layers"]:
        if str(r.get("name")) not in used:
            out.append(BreakdownRow(str(r.get("name")), str(r.get("op_type")), str(r.get("precision", "other")),
                                    None, _num(r.get("time_ms")), None, "added"))
    return out


def _matched_share(rows: list[BreakdownRow]) -> float:
    total = sum(r.before_ms or 0.0 for r in rows)
    return sum(r.before_ms or 0.0 for r in rows if r.after_ms is not None and r.before_ms) / total if total else 0.0


def op_family(op_type: str) -> str:
    """The family an operator belongs to whatever its precision (QLinearConv and ConvInteger are Conv)."""
    for family, ops in FAMILIES.items():
        if op_type in ops:
            return family
    return op_type.removeprefix("Nhwc").removeprefix("QLinear")


def family_rows(before: dict, after: dict) -> list[BreakdownRow]:
    """Breakdown rows per operator family ("all Conv layers (53)"), for graphs whose layer names do not match."""
    total = _num(before.get("total_ms")) or sum(_num(r.get("time_ms")) or 0.0 for r in before["layers"]) or 1.0

    def group(profile: dict) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for r in profile["layers"]:
            out.setdefault(op_family(str(r.get("op_type"))), []).append(r)
        return out

    b, a = group(before), group(after)
    rows = []
    for fam in sorted(set(b) | set(a), key=lambda f: -sum(_num(r.get("time_ms")) or 0.0 for r in b.get(f, []))):
        t0 = sum(_num(r.get("time_ms")) or 0.0 for r in b[fam]) if fam in b else None
        t1 = sum(_num(r.get("time_ms")) or 0.0 for r in a[fam]) if fam in a else None
        ops = sorted({str(r.get("op_type")) for r in a.get(fam, b.get(fam, []))})
        count = len(a.get(fam) or b.get(fam) or [])
        prec = _merge_precision([str(r.get("precision", "other")) for r in a[fam]]) if fam in a else "-"
        rows.append(BreakdownRow(f"all {fam} layers ({count})", "/".join(ops), prec, t0, t1,
                                 None if t0 is None else t0 / total, _change(t0, t1)))
    return rows


def _merge_precision(values: list[str]) -> str:
    distinct = set(values)
    return values[0] if len(distinct) == 1 else "mixed"


def _change(t0: float | None, t1: float | None) -> str:
    if t1 is None:
        return "removed"
    if not t0:
        return "added"
    ratio = t0 / t1 if t1 > 0 else float("inf")
    if ratio > 1 + UNCHANGED_WITHIN:
        return "faster"
    if ratio < 1 / (1 + UNCHANGED_WITHIN):
        return "slower"
    return "unchanged"


# --- Amdahl's bound ----------------------------------------------------------------------------------------

def amdahl_bound(run: RunResult, baseline: RunResult | None, rows: list[BreakdownRow]) -> Bound | None:
    """At most how much faster than the baseline this recipe can make the call here (see the module doc), from
    the breakdown `rows`."""
    p50 = _num(_dict(baseline.metrics).get("p50_ms")) if baseline is not None else None
    ops_ms = sum(calm_ms(r) for r in rows if r.before_ms)
    if not ops_ms:
        return None
    call_ms = p50 if p50 else ops_ms
    scale = min(1.0, call_ms / ops_ms)  # profiled operator time above the measured call is profiler overhead
    converted = sum(calm_ms(r) for r in rows if r.before_ms and _converted(r)) * scale / call_ms
    overhead = max(call_ms - ops_ms, 0.0) / call_ms
    floating = max(1.0 - converted - overhead, 0.0)
    added = _added_ms(run, rows) / call_ms
    gain, basis = ceiling_gain(run, rows)
    rest = floating + overhead + added + (converted / gain if gain else 0.0)
    return Bound(1.0 / rest if rest > 0 else float("inf"), converted, floating, overhead, added, gain, basis)


def _added_ms(run: RunResult, rows: list[BreakdownRow]) -> float:
    """Milliseconds per call of what only the run has (conversions, unfused layers), scaled like the baseline's
    operators to the run's measured call when the profiled operators sum to more than it."""
    added = sum(r.after_ms or 0.0 for r in rows if r.change == "added")
    after_ops = sum(r.after_ms or 0.0 for r in rows)
    p50 = _num(_dict(run.metrics).get("p50_ms"))
    return added * min(1.0, p50 / after_ops) if p50 and after_ops else added


def _converted(row: BreakdownRow) -> bool:
    """A layer the recipe changed: it ran in a converted precision, or it was fused away (upper bound)."""
    return row.precision in CONVERTED or row.precision == "mixed" or row.change == "removed"


def ceiling_gain(run: RunResult, rows: list[BreakdownRow]) -> tuple[float | None, str]:
    """The machine's peak ratio of the converted precision to fp32 (e.g. int8 ops/s over fp32 flop/s), read from
    the run's ceilings record, and the words that say where the bound comes from."""
    precisions = [r.precision for r in rows if r.precision in CONVERTED]
    target = max(set(precisions), key=precisions.count) if precisions else "int8"
    ceilings = _ceilings(run)
    fp32, low = _num(ceilings.get("fp32")), _num(ceilings.get(target))
    if fp32 and low:
        return low / fp32, (f"Amdahl's law with the converted layers at this machine's measured {target}/fp32 "
                            f"peak ratio ({low / fp32:.1f}x); layers left in float, call overhead and what the "
                            "recipe added unchanged")
    return None, ("Amdahl's law with the converted layers taken as free (no measured int8/fp32 ceiling for this "
                  "machine); layers left in float, call overhead and what the recipe added unchanged")


def _ceilings(run: RunResult) -> dict:
    """Peak rates by precision ({"fp32": GFLOP/s, "int8": GOP/s, "fp16", "bf16"}) measured on the run's machine at
    its thread count, from the run's roofline record (metrics["roofline"]["ceilings"], core/measure/ceilings.py);
    {} when the run has none. A precision the CPU has no native arithmetic for is left out."""
    c = _dict(_dict(_dict(run.metrics).get("roofline")).get("ceilings"))
    peaks = {"fp32": c.get("fp32_gflops"), "int8": c.get("int8_gops"), "fp16": c.get("fp16_gflops"),
             "bf16": c.get("bf16_gflops")}
    return {k: _num(v) for k, v in peaks.items() if _num(v)}


# --- graph and summary ---------------------------------------------------------------------------------------

def graph_op_counts(run: RunResult) -> dict[str, int] | None:
    """Op type counts of the run's saved optimized ONNX graph (None when it has none or it cannot be read)."""
    from pathlib import Path

    path = Path(run.artifact) if run.artifact else None
    if path is None or path.suffix != ".onnx" or not path.is_file():
        return None
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - an unreadable artifact only loses this evidence
        return None
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def summarize(run: RunResult, baseline: RunResult | None, speed: dict | None, bound: Bound | None,
              causes) -> str:
    """One or two plain sentences: the speed-up and its verdict, then what bounds it and the main cause."""
    who = f"Run {run.run_id}" if run.run_id is not None else "This run"
    if run.status != "done":
        first = f"{who} did not finish ({run.status}): {run.reason or 'no reason recorded'}."
    elif bl.is_baseline_run(run):
        first = f"{who} is a baseline (the unchanged model): there is no speed-up to explain."
    elif baseline is None:
        first = f"{who} has no like-for-like baseline run, so its speed-up is unknown."
    elif speed is None:
        first = f"{who} has no per-call timings to compare with baseline run {baseline.run_id}."
    else:
        interval = f" [{speed['lo']:.2f}, {speed['hi']:.2f}]" if speed.get("lo") is not None else ""
        first = (f"{who} is {speed['ratio']:.2f}x{interval} against baseline run {baseline.run_id}: "
                 f"{speed['verdict'] or 'no interval'}.")
    parts = []
    if bound is not None and bound.max_speedup != float("inf"):
        added = (f", the recipe added {bound.added_share * 100:.0f}% (conversions, unfused layers)"
                 if bound.added_share >= 0.01 else "")
        parts.append(f"{bound.float_share * 100:.0f}% of the baseline call stayed in float, "
                     f"{bound.overhead_share * 100:.0f}% is call overhead{added}, so at most "
                     f"{bound.max_speedup:.2f}x is possible with this recipe on this machine")
    elif bound is not None:
        parts.append("every layer was converted, nothing was added and no int8/fp32 ceiling is known here, so no "
                     "bound can be given")
    if causes:
        parts.append(f"main cause: {causes[0].title}")
    second = ("; ".join(parts) + ".") if parts else ""
    return f"{first} {second[0].upper() + second[1:]}" if second else first
