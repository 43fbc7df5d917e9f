"""Text for per-operator profiles and this machine's roofs, as `accelstudio run --profile` and
`accelstudio roofline` print them."""

from __future__ import annotations

from typing import Any

TOP_ROWS = 10


def profile_lines(metrics: dict[str, Any], baseline_metrics: dict[str, Any] | None = None,
                  baseline_id: int | None = None, top: int = TOP_ROWS) -> list[str]:
    """The profile summary and its `top` slowest rows with precision, bound class and, when the like-for-like
    baseline run has a profile too, that run's time for the same row."""
    if "profile" not in metrics:
        return [f"profile     not made: {metrics['profile_error']}"] if metrics.get("profile_error") else []
    p = metrics["profile"]
    conv = p.get("conversions", {})
    lines = [f"profile     {p['source']}, {p['calls']} profiled calls after the timed ones: "
             f"{p['total_ms']:.3f} ms per call; conversions {conv.get('count', 0)} per call "
             f"({conv.get('time_ms', 0.0):.3f} ms, {conv.get('share', 0.0):.1%})"]
    base = {r["name"]: r for r in (baseline_metrics or {}).get("profile", {}).get("layers", [])}
    bounds = {r["name"]: r["bound"] for r in metrics.get("roofline", {}).get("layers", [])}
    head = f"  {'layer':<34} {'op type':<22} {'precision':<9} {'ms/call':>9} {'share':>6}  {'bound':<9}"
    if base:
        head += f" {'baseline ms':>11}"
    lines.append(head)
    for r in sorted(p["layers"], key=lambda r: -r["time_ms"])[:top]:
        line = (f"  {_cut(r['name'], 34):<34} {_cut(r['op_type'], 22):<22} {r['precision']:<9} "
                f"{r['time_ms']:>9.4f} {r['share']:>6.1%}  {bounds.get(r['name'], '-'):<9}")
        if base:
            b = base.get(r["name"])
            line += f" {b['time_ms']:>11.4f}" if b else f" {'-':>11}"
        lines.append(line)
    if base:
        lines.append(f"  baseline: run {baseline_id if baseline_id is not None else '-'}, "
                     f"{baseline_metrics['profile']['total_ms']:.3f} ms per call profiled")
    roof = metrics.get("roofline") or {}
    if roof.get("model"):
        m = roof["model"]
        lines.append(f"roofline    whole model {m['achieved_gflops']:.2f} GFLOP/s at {m['intensity']:.1f} FLOP/byte "
                     f"(roof there {m['roof_gflops']:.1f}): {m['bound']}-bound")
        lines.append(f"            bound classes: {roof.get('rule', '')}")
    elif metrics.get("roofline_error"):
        lines.append(f"roofline    not made: {metrics['roofline_error']}")
    return lines


def ceilings_lines(c: dict[str, Any]) -> list[str]:
    """The roofs of this machine, one per line, with the ridge points."""
    def rate(v, unit):
        return f"{v:9.1f} {unit}" if v else f"{'-':>9} (no native arithmetic on this CPU)"

    bw = c["bandwidth_gbs"]
    lines = [f"CPU         {c['cpu']}   threads {c['threads']}   "
             f"({'from the cache' if c.get('cached') else 'measured now'}, {c.get('measured_at', '')})"]
    for label, key, unit in (("fp32", "fp32_gflops", "GFLOP/s"), ("int8", "int8_gops", "GOP/s"),
                             ("bf16", "bf16_gflops", "GFLOP/s"), ("fp16", "fp16_gflops", "GFLOP/s")):
        v = c.get(key)
        ridge = f"   ridge {v / bw:7.1f} FLOP/byte" if v and bw else ""
        source = f"   ({c.get('sources', {}).get(label, '')})" if v else ""
        lines.append(f"{label:<11} {rate(v, unit)}{ridge}{source}")
    lines.append(f"{'memory':<11} {bw:9.1f} GB/s      ({c.get('sources', {}).get('bandwidth', '')})")
    machine = c.get("machine") or {}
    if machine.get("busy"):
        lines.append(f"WARNING: busy machine while measuring (other processes used {machine['other_cpu_pct']:.0f}% "
                     "of the CPU): these roofs are low; measure again on a quiet machine with --refresh")
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]
