"""Text and JSON views of stored runs for the `runs` and `compare` commands: aligned tables, human units,
and a side-by-side comparison that says when a latency difference is within the per-call noise."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from accelstudio.core.evaluate import median_difference_ci
from accelstudio.core.job import RunResult
from accelstudio.core.store_export import flat_row, recipe_text

NONE = "-"


def table(headers: list[str], rows: Iterable[list[Any]], right: set[int] | None = None) -> str:
    """An aligned plain-text table; columns in `right` (indices) are right-aligned."""
    cells = [[NONE if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    right = right or set()

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def fmt_ms(v: Any) -> str:
    return NONE if v is None else f"{v:.3f}" if v < 10 else f"{v:.1f}"


def fmt_rate(v: Any) -> str:
    return NONE if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def fmt_pct(v: Any) -> str:
    return NONE if v is None else f"{100 * v:.2f}%"


def fmt_points(v: Any) -> str:
    return NONE if v is None else f"{v:+.2f}"


def fmt_ci(ci: Any) -> str:
    return NONE if not ci or None in ci else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def fmt_bytes(v: Any) -> str:
    if v is None:
        return NONE
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{int(v)} B"


def fmt_count(v: Any) -> str:
    return NONE if v is None else f"{int(v):,}"


def fmt_created(created: str | None) -> str:
    return NONE if not created else created.replace("T", " ")[:19]


def delta_text(m: dict[str, Any]) -> str:
    """'-0.56 [-1.39, +0.28]' with ' *' when the interval excludes 0 (a real change)."""
    if m.get("accuracy_delta") is None:
        return NONE
    star = " *" if m.get("delta_significant") else ""
    return f"{fmt_points(m['accuracy_delta'])} {fmt_ci(m.get('accuracy_delta_ci'))}{star}"


def list_table(runs: list[RunResult]) -> str:
    """The `runs list` table, newest first."""
    headers = ["ID", "CREATED (UTC)", "STATUS", "MODEL", "RECIPE", "RUNTIME", "P50 ms", "SAMPLES/s",
               "ACCURACY", "DELTA pts", "SIZE"]
    rows = []
    for r in runs:
        f = flat_row(r)
        runtime = f"{f['runtime'] or NONE}/{f['device'] or NONE}"
        rows.append([f["id"], fmt_created(f["created"]), f["status"], f["model"], f["recipe"], runtime,
                     fmt_ms(f["p50_ms"]), fmt_rate(f["throughput"]), fmt_pct(f["accuracy"]),
                     fmt_points(f["accuracy_delta"]), fmt_bytes(f["size_bytes"])])
    return table(headers, rows, right={0, 6, 7, 8, 9, 10})


def show_text(r: RunResult) -> str:
    """Everything worth reading about one run, as text."""
    from accelstudio.core.environment import summary_line

    m, f = r.metrics or {}, flat_row(r)
    fid = m.get("fidelity") or {}
    lines = [f"Run {r.run_id}: {r.status}" + (f" ({r.reason})" if r.reason else ""),
             f"created   {fmt_created(r.created)} UTC",
             f"model     {f['model']}  {(r.model_identity or {}).get('path') or ''}",
             f"sha256    {f['model_sha256'] or NONE}",
             f"recipe    {f['recipe']}",
             f"runtime   {f['runtime']} on {f['device']}, {f['threads']} threads, batch {f['batch']}"]
    if r.environment:
        lines.append(f"machine   {summary_line(r.environment)}")
    if r.artifact:
        lines.append(f"artifact  {r.artifact}")
    pairs = [("latency p50 / p90 / p99 ms",
              f"{fmt_ms(m.get('p50_ms'))} / {fmt_ms(m.get('p90_ms'))} / {fmt_ms(m.get('p99_ms'))}"),
             ("mean +- std ms", f"{fmt_ms(m.get('mean_ms'))} +- {fmt_ms(m.get('std_ms'))}  (n={m.get('n', NONE)})"),
             ("throughput samples/s", fmt_rate(m.get("throughput"))),
             ("cold start ms", fmt_ms(m.get("cold_start_ms"))),
             ("stable", NONE if m.get("stable") is None else ("yes" if m["stable"] else "no (noisy machine)")),
             ("accuracy", _acc_with_ci(m)),
             ("baseline accuracy", fmt_pct(m.get("baseline_accuracy"))),
             ("accuracy delta pts [95% CI]", delta_text(m)),
             ("top-1 agreement", fmt_pct(fid.get("top1_agreement"))),
             ("non-finite outputs", m.get("nonfinite_outputs")),
             ("size", f"{fmt_bytes(m.get('size_bytes'))} (baseline {fmt_bytes(m.get('baseline_size_bytes'))})"),
             ("params", f"{fmt_count(m.get('params'))} (baseline {fmt_count(m.get('baseline_params'))})"),
             ("sparsity", fmt_pct(m.get("sparsity")))]
    lines.append("")
    lines.append(table(["METRIC", "VALUE"], [[k, v] for k, v in pairs]))
    for note in m.get("notes") or []:
        lines.append(f"note: {note}")
    for w in r.warnings or []:
        lines.append(f"warning: {w.get('message', w)}" + (f" ({w['advice']})" if w.get("advice") else ""))
    if r.layers:
        lines.extend(["", layers_table(r.layers)])
    return "\n".join(lines)


def _acc_with_ci(m: dict[str, Any]) -> str:
    if m.get("accuracy") is None:
        return NONE
    ci = m.get("accuracy_ci")
    ci_text = f" [{fmt_pct(ci[0])}, {fmt_pct(ci[1])}]" if ci and None not in ci else ""
    return f"{fmt_pct(m['accuracy'])}{ci_text} on {m.get('n_eval', '?')} samples"


def layers_table(layers: list[dict[str, Any]]) -> str:
    """The per-layer report with whatever scalar columns the layers carry."""
    keys: list[str] = []
    for layer in layers:
        keys.extend(k for k, v in layer.items() if k not in keys and not isinstance(v, (dict, list)))
    rows = [[_cell(layer.get(k)) for k in keys] for layer in layers]
    numeric = {i for i, k in enumerate(keys) if all(isinstance(l.get(k), (int, float)) for l in layers)}
    return table([k.upper() for k in keys], rows, right=numeric)


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.4g}"
    return v


# --- compare ---------------------------------------------------------------------------------------------

def _ratio_text(a: Any, b: Any, lower_is_better: bool, word_up: str, word_down: str) -> str:
    if a is None or b is None or a == 0 or b == 0:
        return NONE
    ratio = (a / b) if lower_is_better else (b / a)
    return f"{ratio:.2f}x {word_up}" if ratio >= 1 else f"{1 / ratio:.2f}x {word_down}"


def _pct_change(a: Any, b: Any) -> str:
    if a is None or b is None or a == 0:
        return NONE
    return f"{100 * (b - a) / a:+.1f}%"


def _latency_noise(a: RunResult, b: RunResult) -> str:
    if not a.latencies_ms or not b.latencies_ms:
        return ""
    diff, lo, hi = median_difference_ci(np.asarray(a.latencies_ms), np.asarray(b.latencies_ms))
    return " (within per-call noise)" if lo <= 0 <= hi else f" (p50 diff {diff:+.3f} ms, 95% CI [{lo:+.3f}, {hi:+.3f}])"


def compare_document(a: RunResult, b: RunResult) -> dict[str, Any]:
    """The side-by-side comparison of two runs as a JSON-safe document: metrics rows, layer diff, notes."""
    ma, mb = a.metrics or {}, b.metrics or {}
    fa, fb = flat_row(a), flat_row(b)
    speed = _ratio_text(ma.get("p50_ms"), mb.get("p50_ms"), True, "faster", "slower")
    rows = [
        ("latency p50 ms", fmt_ms(ma.get("p50_ms")), fmt_ms(mb.get("p50_ms")), speed + (_latency_noise(a, b) if speed != NONE else "")),
        ("latency p90 ms", fmt_ms(ma.get("p90_ms")), fmt_ms(mb.get("p90_ms")),
         _ratio_text(ma.get("p90_ms"), mb.get("p90_ms"), True, "faster", "slower")),
        ("throughput samples/s", fmt_rate(ma.get("throughput")), fmt_rate(mb.get("throughput")),
         _ratio_text(ma.get("throughput"), mb.get("throughput"), False, "higher", "lower")),
        ("accuracy", fmt_pct(ma.get("accuracy")), fmt_pct(mb.get("accuracy")), _acc_change(ma, mb)),
        ("delta vs own baseline pts", delta_text(ma), delta_text(mb), ""),
        ("size", fmt_bytes(ma.get("size_bytes")), fmt_bytes(mb.get("size_bytes")),
         _pct_change(ma.get("size_bytes"), mb.get("size_bytes"))),
        ("params", fmt_count(ma.get("params")), fmt_count(mb.get("params")),
         _pct_change(ma.get("params"), mb.get("params"))),
        ("sparsity", fmt_pct(ma.get("sparsity")), fmt_pct(mb.get("sparsity")), ""),
    ]
    for key in ("recipe", "model", "runtime", "device", "threads", "batch", "status"):
        rows.append((key, fa[key], fb[key], "same" if fa[key] == fb[key] else "differs"))
    return {
        "runs": [_brief(a), _brief(b)],
        "metrics": [{"metric": k, "a": va, "b": vb, "change": c} for k, va, vb, c in rows],
        "layers": layer_diff(a.layers or [], b.layers or []),
        "notes": comparison_notes(a, b),
    }


def _acc_change(ma: dict[str, Any], mb: dict[str, Any]) -> str:
    if ma.get("accuracy") is None or mb.get("accuracy") is None:
        return NONE
    pa, pb = ma["accuracy"], mb["accuracy"]
    na, nb = ma.get("n_eval"), mb.get("n_eval")
    bar = ""
    if na and nb:  # unpaired 95% half-width: per-sample results are not stored, so this is conservative
        half = 196.0 * (pa * (1 - pa) / na + pb * (1 - pb) / nb) ** 0.5
        bar = f" (+-{half:.2f} pts 95%, unpaired)"
    return f"{100 * (pb - pa):+.2f} pts{bar}"


def _brief(r: RunResult) -> dict[str, Any]:
    return {"id": r.run_id, "created": r.created, "status": r.status, "model": flat_row(r)["model"],
            "recipe": recipe_text(r)}


def comparison_notes(a: RunResult, b: RunResult) -> list[str]:
    """Warnings that the two runs are not measured like for like."""
    notes = []
    ea, eb = a.environment or {}, b.environment or {}
    if ea and eb:
        if (ea.get("cpu") or {}).get("model") != (eb.get("cpu") or {}).get("model"):
            notes.append("the runs were measured on different CPUs; latencies are not directly comparable")
        if ea.get("versions") != eb.get("versions"):
            notes.append("library versions differ between the runs")
    if (a.model_identity or {}).get("sha256") != (b.model_identity or {}).get("sha256"):
        notes.append("the runs use different model files")
    notes.append("runs taken at different times include machine drift; for a decision, measure both in one "
                 "interleaved run")
    return notes


def _layer_view(layer: dict[str, Any]) -> dict[str, Any]:
    sparsity = layer.get("sparsity", layer.get("achieved"))
    params = layer.get("params", layer.get("params_after"))
    return {"sparsity": sparsity, "params": params, "dtype": layer.get("dtype")}


def layer_diff(layers_a: list[dict[str, Any]], layers_b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per layer (by name, union in order): sparsity, params and dtype of each run and whether they differ."""
    by_a = {l.get("name"): _layer_view(l) for l in layers_a}
    by_b = {l.get("name"): _layer_view(l) for l in layers_b}
    names = list(dict.fromkeys([*by_a, *by_b]))
    return [{"name": n, "a": by_a.get(n), "b": by_b.get(n), "changed": by_a.get(n) != by_b.get(n)}
            for n in names]


def compare_text(doc: dict[str, Any]) -> str:
    """The comparison document as aligned tables."""
    ra, rb = doc["runs"]
    head = [f"A = run {ra['id']} ({ra['model']}, {ra['recipe']})", f"B = run {rb['id']} ({rb['model']}, {rb['recipe']})", ""]
    metrics = table(["METRIC", "A", "B", "B vs A"], [[m["metric"], m["a"], m["b"], m["change"]] for m in doc["metrics"]],
                    right={1, 2})
    parts = ["\n".join(head) + metrics]
    if doc["layers"]:
        rows = []
        for l in doc["layers"]:
            va, vb = l["a"] or {}, l["b"] or {}
            rows.append([("* " if l["changed"] else "  ") + str(l["name"]),
                         fmt_pct(va.get("sparsity")), fmt_pct(vb.get("sparsity")),
                         fmt_count(va.get("params")), fmt_count(vb.get("params")),
                         va.get("dtype") or NONE, vb.get("dtype") or NONE])
        parts.append(table(["LAYER", "SPARSITY A", "SPARSITY B", "PARAMS A", "PARAMS B", "DTYPE A", "DTYPE B"],
                           rows, right={1, 2, 3, 4}) + "\n(* = differs)")
    notes = "\n".join(f"note: {n}" for n in doc["notes"])
    return "\n\n".join([*parts, notes] if notes else parts)
