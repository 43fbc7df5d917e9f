"""The one typed reading of a run: `build_report(run, baseline)` -> RunReport.

A run's metrics stay stored as the dict the worker wrote (see RunResult's docstring for the keys); this module is
the only place that interprets it. The CLI, the GUI and the exports all show a RunReport, so they say the same
thing: the speed-up against a like-for-like baseline with its interval and verdict (accelstudio.core.measure.stats), the
quality headline (accuracy when labels exist, else fidelity under that name; cosine for embedding outputs), the
paired accuracy change with McNemar's exact test, sizes, the data the run used, a "broken" verdict when fidelity
collapses, and warnings from the machine and execution records. Old runs without newer keys still read.
"""


from __future__ import annotations

from typing import Any

from accelstudio.core.runs import baseline as bl
from accelstudio.core.job import RunResult
from accelstudio.core.runs.run_labels import recipe_text
from accelstudio.core.runs.report_checks import broken_check, run_warnings
from accelstudio.core.runs.report_model import (SYNTHESIZED_BADGE, AccuracyChange, BaselineInfo, Broken, DataRecord,
                                           Interval, Latency, Quality, RunReport, Sizes, Speedup, number)
from accelstudio.core.measure.stats import ALPHA, SpeedupInterval, paired_accuracy_change, speedup_interval, wilson_interval


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    v = number(value)
    return None if v is None else int(v)


# --- building ---------------------------------------------------------------------------------------------

def build_report(run: RunResult, baseline: RunResult | None = None) -> RunReport:
    """Read a run (and optionally its baseline run) into a RunReport.

    A baseline that is not like-for-like (another model identity, runtime, device, resolved threads or batch;
    see accelstudio.core.runs.baseline) is refused: no speed-up is given and `baseline_note` says what differs."""
    m = _dict(run.metrics)
    quality = read_quality(m)
    speedup, info, note = _compare(run, baseline)
    compared = baseline if baseline is not None and info is not None else None
    return RunReport(
        run_id=run.run_id, status=run.status, reason=run.reason or "", model=_model_name(run),
        model_key=bl.model_key(run), recipe=_recipe_label(run), settings=bl.describe_settings(run),
        is_baseline=bl.is_baseline_run(run), latency=read_latency(m), quality=quality, sizes=read_sizes(m),
        data=read_data(m, _dict(run.spec)), baseline=info, baseline_note=note, speedup=speedup,
        broken=broken_check(run, quality) if run.status == "done" else None,
        warnings=tuple(run_warnings(run, compared)),
        notes=tuple(str(n) for n in m.get("notes") or ()),
    )


def _model_name(run: RunResult) -> str:
    ident = _dict(run.model_identity)
    return str(ident.get("name") or ident.get("path") or _dict(run.spec).get("model") or "?")


def _recipe_label(run: RunResult) -> str:
    return recipe_text(run) or "-"


def baseline_info(run: RunResult) -> BaselineInfo:
    """The words that name a baseline run."""
    key = bl.comparison_key(run)
    return BaselineInfo(run.run_id, key["runtime"], key["device"], key["threads"], key["batch"], run.created)


def _compare(run: RunResult, baseline: RunResult | None) -> tuple[Speedup | None, BaselineInfo | None, str]:
    if bl.is_baseline_run(run):
        return None, None, ""
    if baseline is None:
        return None, None, ("No like-for-like baseline run of this model yet (same model, "
                            f"{bl.describe_settings(run)}): run the unchanged model to compare")
    differs = bl.mismatches(run, baseline)
    if differs:
        return None, None, (f"Run {baseline.run_id} is not a like-for-like baseline (differs in "
                            f"{', '.join(differs)}): no speed-up shown")
    if baseline.status != "done" or not bl.is_baseline_run(baseline):
        return None, None, f"Run {baseline.run_id} is not a finished baseline run"
    return speedup_of(run, baseline), baseline_info(baseline), ""


def speedup_of(run: RunResult, baseline: RunResult) -> Speedup | None:
    """The speed-up of `run` over `baseline` (callers make sure they are like-for-like)."""
    if run.latencies_ms and baseline.latencies_ms:
        try:
            s: SpeedupInterval = speedup_interval(baseline.latencies_ms, run.latencies_ms)
        except ValueError:
            s = None
        if s is not None:
            return Speedup(s.ratio, Interval(s.lo, s.hi), s.verdict)
    a, b = number(_dict(run.metrics).get("p50_ms")), number(_dict(baseline.metrics).get("p50_ms"))
    if not a or not b:
        return None
    return Speedup(b / a, None, "", "ratio of p50 latencies (no per-call timings stored)")


def compare_speed(a: RunResult, b: RunResult) -> tuple[Speedup | None, str]:
    """B's speed-up over A (> 1: B is faster) when the two runs are like-for-like (same model identity, runtime,
    device, resolved threads and batch; the recipes may differ); else None and the reason."""
    differs = bl.mismatches(b, a)
    if differs:
        return None, f"not like-for-like (differs in {', '.join(differs)}): no ratio"
    if a.status != "done" or b.status != "done":
        return None, "both runs must be finished"
    speed = speedup_of(b, a)
    return speed, "" if speed is not None else "no latencies recorded"


def read_latency(m: dict) -> Latency:
    """The latency figures of a metrics dict."""
    stable = m.get("stable")
    return Latency(*(number(m.get(k)) for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms")),
                   n=_int(m.get("n")), throughput=number(m.get("throughput")),
                   cold_start_ms=number(m.get("cold_start_ms")), load_ms=number(m.get("load_ms")),
                   spread_ratio=number(m.get("spread_ratio")), stable=stable if isinstance(stable, bool) else None)


def read_sizes(m: dict) -> Sizes:
    """The size figures of a metrics dict."""
    keys = ("size_bytes", "baseline_size_bytes", "artifact_bytes", "params", "baseline_params", "flops",
            "baseline_flops")
    return Sizes(*(_int(m.get(k)) for k in keys), sparsity=number(m.get("sparsity")))


def read_data(m: dict, spec: dict | None = None) -> DataRecord:
    """The data record; for runs older than it, what the spec and the notes tell (the --data file, an example's
    own test set, or "synthesized inputs" in the notes)."""
    data = _dict(m.get("data"))
    ev = _dict(data.get("eval"))
    shapes = {str(k): [int(d) for d in v] for k, v in _dict(data.get("input_shapes")).items()
              if isinstance(v, (list, tuple))}
    guessed = tuple(str(g) for g in data.get("guessed_dims") or ())
    if ev:
        return DataRecord(ev.get("source"), _int(ev.get("n")), bool(ev.get("synthesized")),
                          ev.get("labeled") if isinstance(ev.get("labeled"), bool) else None,
                          _calib_text(data.get("calib")), _train_text(data.get("train")), shapes, guessed)
    notes = " ".join(str(n) for n in m.get("notes") or ())
    synthesized = True if "synthesized inputs" in notes else None
    labeled = True if m.get("accuracy") is not None else (False if "no labels" in notes else None)
    ref, given = _dict(spec).get("model"), _dict(spec).get("data")
    source = "synthesized inputs" if synthesized else given if isinstance(given, str) and given else None
    if source is None and isinstance(ref, str) and ref.startswith(bl.EXAMPLE_PREFIX):
        source = f"{ref[len(bl.EXAMPLE_PREFIX):]} test set"
    if source is not None and synthesized is None:
        synthesized = False
    return DataRecord(source, _int(m.get("n_eval")), synthesized, labeled, input_shapes=shapes, guessed_dims=guessed)


def _calib_text(calib: Any) -> str:
    c = _dict(calib)
    if not c:
        return ""
    how = "split off the evaluation data, never evaluated" if c.get("split_from_eval") else "its own file"
    return f"{c.get('source') or '?'}, {c.get('n', '?')} samples ({how})"


def _train_text(train: Any) -> str:
    t = _dict(train)
    if not t:
        return ""
    overlap = _int(t.get("overlap_with_eval")) or 0
    text = f"{t.get('source') or '?'}, {t.get('n', '?')} samples"
    return text + (f" ({overlap} rows also in the evaluation data)" if overlap else "")


def read_quality(m: dict) -> Quality:
    """Accuracy with its paired change when labels exist; otherwise fidelity with the headline that fits the
    output kind (recorded by the worker; older runs: class scores assumed, and said)."""
    fid = _dict(m.get("fidelity"))
    acc = number(m.get("accuracy"))
    n_eval = _int(m.get("n_eval"))
    kind = fid.get("output_kind") if fid.get("output_kind") in ("class_scores", "embedding") else None
    reason = str(fid.get("output_reason") or "")
    if kind is None and acc is None and fid:
        kind, reason = "class_scores", "output kind not recorded (older run): read as class scores"
    if acc is not None:
        kind, reason = "class_scores", reason or "labels are given, so the outputs are class scores"
    common = dict(output_kind=kind, output_reason=reason,
                  agreement=number(fid.get("top1_agreement")), cosine=number(fid.get("cosine")),
                  max_abs_error=number(fid.get("max_abs_error")), kl_divergence=number(fid.get("kl_divergence")),
                  n_compared=_int(fid.get("n_compared")), nonfinite_outputs=_int(m.get("nonfinite_outputs")),
                  n_eval=n_eval)
    if acc is not None:
        n = n_eval or 0
        ci = m.get("accuracy_ci")
        lo, hi = (ci if _pair(ci) else wilson_interval(round(acc * n), n))
        return Quality("accuracy", "Accuracy", acc * 100.0, Interval(lo * 100.0, hi * 100.0), True,
                       accuracy=acc, baseline_accuracy=number(m.get("baseline_accuracy")),
                       change=read_change(m), **common)
    if kind == "embedding" and common["cosine"] is not None:
        return Quality("cosine", "Fidelity: cosine", common["cosine"], None, False, **common)
    agree = common["agreement"]
    if agree is not None:
        n = common["n_compared"] or n_eval or 0
        lo, hi = wilson_interval(round(agree * n), n)
        return Quality("agreement", "Fidelity: top-1 agreement", agree * 100.0, Interval(lo * 100.0, hi * 100.0),
                       False, **common)
    return Quality(None, "", None, None, False, **common)


def _pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(number(v) is not None for v in value)


def read_change(m: dict) -> AccuracyChange | None:
    """The paired accuracy change. From the discordant counts when stored (Newcombe interval + exact McNemar,
    recomputed so older runs read the same way); else the stored interval of an older run."""
    delta = number(m.get("accuracy_delta"))
    disc = _dict(m.get("discordant"))
    lost, gained = _int(disc.get("baseline_only")), _int(disc.get("new_only"))
    acc, base, n = number(m.get("accuracy")), number(m.get("baseline_accuracy")), _int(m.get("n_eval"))
    if lost is not None and gained is not None and base is not None and n:
        both = max(round(base * n) - lost, 0)
        neither = max(n - both - lost - gained, 0)
        c = paired_accuracy_change(both, lost, gained, neither)
        return AccuracyChange(c.delta_pts, Interval(c.lo_pts, c.hi_pts), lost, gained, c.p_value, c.verdict,
                              "Newcombe paired interval + exact McNemar test")
    if delta is None:
        return None
    ci = m.get("accuracy_delta_ci")
    interval = Interval(float(ci[0]), float(ci[1])) if _pair(ci) else None
    p = number(m.get("mcnemar_p"))
    verdict = "within noise"
    if interval is not None and not interval.contains(0.0) and (p is None or p < ALPHA):
        verdict = "real gain" if delta > 0 else "real drop"
    return AccuracyChange(delta, interval, None, None, p, verdict, "stored interval (older run)")


__all__ = ["AccuracyChange", "BaselineInfo", "Broken", "DataRecord", "Interval", "Latency", "Quality", "RunReport",
           "SYNTHESIZED_BADGE", "Sizes", "Speedup", "baseline_info", "build_report", "compare_speed", "number",
           "read_change", "read_quality", "speedup_of"]
