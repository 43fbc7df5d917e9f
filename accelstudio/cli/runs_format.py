"""Text and JSON views of stored runs for the `runs` and `compare` commands: aligned tables, human units, and
the run report's reading of each run (accelstudio.core.runs.report): speed-up against the named like-for-like
baseline with its interval and verdict, accuracy change with discordant counts and exact p, fidelity under its
own name, BROKEN runs, the data used and its badge, warnings."""

from __future__ import annotations

from typing import Any, Iterable

from accelstudio.core.runs import baseline as bl
from accelstudio.core.job import RunResult
from accelstudio.core.runs.report import RunReport, build_report, compare_speed
from accelstudio.core.measure.stats import unpaired_difference_interval
from accelstudio.core.runs.run_labels import recipe_text
from accelstudio.core.runs.store_export import flat_row
from accelstudio.core.units import format_bytes

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
    """Sizes in decimal units (accelstudio.core.units.format_bytes)."""
    return format_bytes(v, NONE)


def fmt_count(v: Any) -> str:
    return NONE if v is None else f"{int(v):,}"


def fmt_created(created: str | None) -> str:
    return NONE if not created else created.replace("T", " ")[:19]


def delta_text(m: dict[str, Any]) -> str:
    """'-0.56 [-1.39, +0.28]' with ' *' when the change is real (the report's exact-test verdict)."""
    from accelstudio.core.runs.report import read_change

    change = read_change(m)
    if change is None:
        return NONE
    ci = [change.interval.lo, change.interval.hi] if change.interval else None
    star = " *" if change.verdict != "within noise" else ""
    return f"{fmt_points(change.delta_pts)} {fmt_ci(ci)}{star}"


def flags(report: RunReport) -> str:
    """Short marks for the list: BROKEN, random inputs, warnings (RunReport.flags, the GUI's too)."""
    return ", ".join(report.flags()) or NONE


def speed_cell(report: RunReport) -> str:
    """'2.01x faster', '~1.02x' (within noise), 'base' for baseline runs, '-' without a baseline."""
    if report.is_baseline:
        return "base"
    s = report.speedup
    if s is None:
        return NONE
    if s.verdict == "within noise":
        return f"~{s.ratio:.2f}x"
    return f"{s.ratio:.2f}x" + ("" if s.verdict else "?")


def quality_cell(report: RunReport) -> str:
    """'99.44%' for accuracy, 'agree 97.0%' or 'cos 0.9931' for fidelity."""
    q = report.quality
    if q.value is None:
        return NONE
    if q.headline == "accuracy":
        return f"{q.value:.2f}%"
    return f"cos {q.value:.4f}" if q.headline == "cosine" else f"agree {q.value:.1f}%"


def list_table(runs: list[RunResult], pool: list[RunResult] | None = None) -> str:
    """The `runs list` table, newest first; speed-ups against each run's like-for-like baseline in `pool`
    (default: the runs listed)."""
    pool = runs if pool is None else pool
    headers = ["ID", "CREATED (UTC)", "STATUS", "MODEL", "RECIPE", "RUNTIME", "P50 ms", "SPEEDUP", "SAMPLES/s",
               "QUALITY", "DELTA pts", "SIZE", "FLAGS"]
    rows = []
    for r in runs:
        base = bl.find_baseline(pool, r)
        rep = build_report(r, base)
        f = flat_row(r, report=rep)
        runtime = f"{f['runtime'] or NONE}/{f['device'] or NONE}"
        rows.append([f["id"], fmt_created(f["created"]), f["status"], f["model"], f["recipe"], runtime,
                     fmt_ms(f["p50_ms"]), speed_cell(rep), fmt_rate(f["throughput"]), quality_cell(rep),
                     fmt_points(f["accuracy_delta"]), fmt_bytes(f["size_bytes"]), flags(rep)])
    return table(headers, rows, right={0, 6, 7, 8, 9, 10, 11})


def studies_table(studies: list, trials: dict[int, int]) -> str:
    """The `runs studies` table: each stored study (a StudyRecord), newest first, with its trial runs' count."""
    headers = ["ID", "KIND", "STATUS", "CREATED (UTC)", "UPDATED (UTC)", "MODEL", "TRIALS"]
    rows = [[s.study_id, s.kind, s.status, fmt_created(s.created), fmt_created(s.updated),
             s.model_identity.get("name") or NONE, trials.get(s.study_id, 0)] for s in studies]
    return table(headers, rows, right={0, 6})


def show_text(r: RunResult, pool: list[RunResult] | None = None) -> str:
    """Everything worth reading about one run, as text, read through its report against the like-for-like
    baseline found in `pool` (the store's runs)."""
    from accelstudio.core.measure.environment import summary_line

    base = bl.find_baseline(pool or [], r)
    rep = build_report(r, base)
    m, f = r.metrics or {}, flat_row(r, report=rep)
    lines = [f"Run {r.run_id}: {r.status}" + (f" ({r.reason})" if r.reason else "")]
    if rep.broken is not None:
        lines.append(f"*** {rep.broken.text()} ***")
    lines += [f"created   {fmt_created(r.created)} UTC",
              f"model     {f['model']}  {(r.model_identity or {}).get('path') or ''}",
              f"identity  {rep.model_key or NONE}",
              f"recipe    {f['recipe']}",
              f"runtime   {rep.settings}"]
    if r.environment:
        lines.append(f"machine   {summary_line(r.environment)}")
    lines.append(f"data      {rep.data.describe()}")
    if rep.data.shapes_text():
        lines.append(f"inputs    {rep.data.shapes_text()}" + (" (guessed: " + ", ".join(rep.data.guessed_dims) + ")"
                                                             if rep.data.guessed_dims else ""))
    if rep.data.calib:
        lines.append(f"calib     {rep.data.calib}")
    if rep.data.train:
        lines.append(f"train     {rep.data.train}")
    if r.artifact:
        lines.append(f"artifact  {r.artifact}")
    if r.status == "done":
        lines.append(f"verdict   {rep.verdict_line()}")
    lines.append("")
    lines.append(table(["METRIC", "VALUE"], [[k, v] for k, v in metric_pairs(rep, m)]))
    lines.extend(f"warning: {w}" for w in rep.warnings)
    for note in rep.notes:
        lines.append(f"note: {note}")
    for w in r.warnings or []:
        lines.append(f"warning: {w.get('message', w)}" + (f" ({w['advice']})" if w.get("advice") else ""))
    if r.layers:
        lines.extend(["", layers_table(r.layers)])
    return "\n".join(lines)


def metric_pairs(rep: RunReport, m: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows of the report's figures, for `runs show`."""
    lat, q, sz = rep.latency, rep.quality, rep.sizes
    pairs = [("latency p50 / p90 / p99 ms", f"{fmt_ms(lat.p50_ms)} / {fmt_ms(lat.p90_ms)} / {fmt_ms(lat.p99_ms)}"),
             ("mean +- std ms", f"{fmt_ms(lat.mean_ms)} +- {fmt_ms(lat.std_ms)}  (n={lat.n if lat.n is not None else NONE})"),
             ("throughput samples/s", fmt_rate(lat.throughput)),
             ("cold start ms", fmt_ms(lat.cold_start_ms)),
             ("stable", NONE if lat.stable is None else ("yes" if lat.stable else "no (noisy machine)")),
             ("baseline", rep.baseline.describe() if rep.baseline else ("this run" if rep.is_baseline else
                                                                         rep.baseline_note or NONE)),
             ("speed-up vs baseline", rep.speedup.text() if rep.speedup else NONE)]
    if q.headline == "accuracy":
        pairs += [("accuracy", _acc_with_ci(m)),
                  ("baseline accuracy", fmt_pct(q.baseline_accuracy)),
                  ("accuracy change", q.change.text() if q.change else NONE)]
    elif q.headline:
        pairs.append(("quality (no labels)", q.headline_text()))
    if q.output_kind:
        pairs.append(("outputs", f"{q.output_kind.replace('_', ' ')}: {q.output_reason}"))
    pairs += [("fidelity: top-1 agreement", fmt_pct(q.agreement)),
              ("fidelity: cosine", NONE if q.cosine is None else f"{q.cosine:.4f}"),
              ("fidelity: max abs error", NONE if q.max_abs_error is None else f"{q.max_abs_error:.4g}"),
              ("fidelity: KL", NONE if q.kl_divergence is None else f"{q.kl_divergence:.4g}"),
              ("non-finite outputs", q.nonfinite_outputs if q.nonfinite_outputs is not None else NONE),
              ("size", f"{fmt_bytes(sz.size_bytes)} (baseline {fmt_bytes(sz.baseline_size_bytes)})"),
              ("params", f"{fmt_count(sz.params)} (baseline {fmt_count(sz.baseline_params)})"),
              ("sparsity", fmt_pct(sz.sparsity))]
    return pairs


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

def _pct_change(a: Any, b: Any) -> str:
    if a is None or b is None or a == 0:
        return NONE
    return f"{100 * (b - a) / a:+.1f}%"


def compare_document(a: RunResult, b: RunResult) -> dict[str, Any]:
    """The side-by-side comparison of two runs as a JSON-safe document: metrics rows (each run read through its
    report), the speed ratio only when the runs are like-for-like, layer diff, notes."""
    ma, mb = a.metrics or {}, b.metrics or {}
    ra, rb = build_report(a), build_report(b)
    fa, fb = flat_row(a), flat_row(b)
    speed, why = compare_speed(a, b)
    speed_text = f"B vs A: {speed.text()}" if speed else why
    qa, qb = ra.quality, rb.quality
    rows = [
        ("latency p50 ms", fmt_ms(ma.get("p50_ms")), fmt_ms(mb.get("p50_ms")), speed_text),
        ("latency p90 ms", fmt_ms(ma.get("p90_ms")), fmt_ms(mb.get("p90_ms")), ""),
        ("throughput samples/s", fmt_rate(ma.get("throughput")), fmt_rate(mb.get("throughput")), ""),
        ("quality", qa.headline_text() or NONE, qb.headline_text() or NONE, ""),
    ]
    if qa.headline == "accuracy" and qb.headline == "accuracy":
        rows.append(("accuracy", fmt_pct(ma.get("accuracy")), fmt_pct(mb.get("accuracy")), _acc_change(ma, mb)))
    rows += [
        ("delta vs own baseline pts", delta_text(ma), delta_text(mb), ""),
        ("lost / gained, exact p", _discordant(ra), _discordant(rb), ""),
        ("fidelity: top-1 agreement", fmt_pct(qa.agreement), fmt_pct(qb.agreement), ""),
        ("fidelity: cosine", _num(qa.cosine, 4), _num(qb.cosine, 4), ""),
        ("fidelity: max abs error", _num(qa.max_abs_error, 4), _num(qb.max_abs_error, 4), ""),
        ("broken", "BROKEN" if ra.broken else "no", "BROKEN" if rb.broken else "no", ""),
        ("data", ra.data.describe(), rb.data.describe(), ""),
        ("input shapes", ra.data.shapes_text() or NONE, rb.data.shapes_text() or NONE, ""),
        ("size", fmt_bytes(ma.get("size_bytes")), fmt_bytes(mb.get("size_bytes")),
         _pct_change(ma.get("size_bytes"), mb.get("size_bytes"))),
        ("params", fmt_count(ma.get("params")), fmt_count(mb.get("params")),
         _pct_change(ma.get("params"), mb.get("params"))),
        ("sparsity", fmt_pct(ma.get("sparsity")), fmt_pct(mb.get("sparsity")), ""),
    ]
    for key in ("recipe", "model", "runtime", "device", "threads", "batch", "status"):
        rows.append((key, fa[key], fb[key], "same" if fa[key] == fb[key] else "differs"))
    ci = [speed.interval.lo, speed.interval.hi] if speed is not None and speed.interval else None
    return {
        "runs": [_brief(a), _brief(b)],
        "speedup": None if speed is None else {"ratio": speed.ratio, "verdict": speed.verdict, "ci": ci},
        "metrics": [{"metric": k, "a": va, "b": vb, "change": c} for k, va, vb, c in rows],
        "layers": layer_diff(a.layers or [], b.layers or []),
        "notes": comparison_notes(a, b) + [f"A: {w}" for w in ra.warnings] + [f"B: {w}" for w in rb.warnings],
    }


def _num(v: Any, digits: int) -> str:
    return NONE if v is None else f"{v:.{digits}f}"


def _discordant(rep: RunReport) -> str:
    c = rep.quality.change
    if c is None or c.lost is None:
        return NONE
    return f"{c.lost} / {c.gained}, p={c.p_value:.3g}"


def _acc_change(ma: dict[str, Any], mb: dict[str, Any]) -> str:
    """B - A accuracy in points with Newcombe's unpaired 95% interval (two runs' per-sample results are not
    stored, so they cannot be paired)."""
    if ma.get("accuracy") is None or mb.get("accuracy") is None:
        return NONE
    pa, pb = ma["accuracy"], mb["accuracy"]
    na, nb = ma.get("n_eval"), mb.get("n_eval")
    bar = ""
    if na and nb:
        lo, hi = unpaired_difference_interval(round(pb * nb), nb, round(pa * na), na)
        bar = f" (95% CI {100 * lo:+.2f}..{100 * hi:+.2f}, unpaired)"
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
    if bl.model_key(a) != bl.model_key(b):
        notes.append("the runs measure different models")
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
