"""The text form of a stored sensitivity study: one line per layer, most sensitive first."""

from __future__ import annotations

from accelstudio.core.runs.store import StudyRecord


def format_study(record: StudyRecord) -> str:
    """A table of layers (rank, kind, parameters, latency share, points lost per setting, score) and the notes."""
    result = record.result
    if not result.get("rows"):
        return f"study {record.study_id} ({record.status}): {result.get('error', 'no result')}"
    labels = [s["label"] for s in result.get("settings", [])]
    samples, metric = result.get("samples", {}), result.get("metric", {})
    lines = [f"sensitivity study {record.study_id} ({record.status}) of {record.params.get('model')}",
             f"loss: {metric.get('loss', '?')}; screened on {samples.get('n', '?')} samples from "
             f"{samples.get('split', '?')} ({samples.get('source', '?')})"]
    width = max([len(r["layer"]) for r in result["rows"]] + [5])
    head = f"{'rank':>4}  {'layer':<{width}}  {'kind':<6} {'params':>9} {'latency':>7}  " + \
        "  ".join(f"{label:>12}" for label in labels) + f"  {'score':>7}"
    lines += ["", head]
    rank = {name: i + 1 for i, name in enumerate(result.get("ranking", []))}
    rows = sorted(result["rows"], key=lambda r: (rank.get(r["layer"], 10**9), r["layer"]))
    for row in rows:
        share = row.get("latency_share")
        cells = "  ".join(f"{_cell(row, label):>12}" for label in labels)
        score = f"{row['score']:7.2f}" if row.get("score") is not None else "      -"
        lines.append(f"{rank.get(row['layer'], '-'):>4}  {row['layer']:<{width}}  {row['kind']:<6} "
                     f"{row['params']:>9,} {'-' if share is None else f'{share:.1%}':>7}  {cells}  {score}")
    if result.get("all_quantized"):
        lines.append(f"\nevery screened layer quantized: {result['all_quantized']['loss']:.2f} points lost")
    lines.append(f"took {result.get('elapsed_s', 0):.1f} s of a {result.get('budget_s', 0):.0f} s budget")
    lines += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


def _cell(row: dict, label: str) -> str:
    if not row.get("screened"):
        return "not screened"
    cell = (row.get("cells") or {}).get(label)
    if not cell or cell.get("loss") is None:
        return "n/a"
    return f"{cell['loss']:+.2f}"
