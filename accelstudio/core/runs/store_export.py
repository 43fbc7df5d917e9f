"""Flat rows and strict JSON for runs, and the atomic CSV/JSON writers used by the store's exports."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from accelstudio.core.job import RunResult
from accelstudio.core.runs.report import build_report
from accelstudio.core.runs.run_labels import recipe_text, to_json_safe

CSV_COLUMNS = (
    "id", "created", "status", "reason", "model", "model_key", "model_sha256", "recipe", "runtime", "device",
    "threads", "batch", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "n", "throughput", "cold_start_ms",
    "stable", "baseline_run", "baseline", "speedup", "speedup_ci_lo", "speedup_ci_hi", "speed_verdict",
    "quality_headline", "accuracy", "accuracy_top5", "baseline_accuracy", "accuracy_delta", "accuracy_delta_ci_lo",
    "accuracy_delta_ci_hi", "accuracy_verdict", "lost", "gained", "mcnemar_p", "delta_significant", "n_eval",
    "output_kind", "top1_agreement", "cosine", "max_abs_error", "kl_divergence", "nonfinite_outputs", "broken",
    "broken_cause", "data_source", "data_samples", "data_badge", "input_shapes", "size_bytes", "baseline_size_bytes",
    "params", "baseline_params", "sparsity", "flops", "warnings", "cpu", "artifact",
)
_METRIC_COLUMNS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "n", "throughput", "cold_start_ms", "stable",
                   "accuracy", "accuracy_top5", "baseline_accuracy", "n_eval", "size_bytes", "baseline_size_bytes",
                   "params", "baseline_params", "sparsity", "flops")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def flat_row(result: RunResult, baseline: RunResult | None = None, report=None) -> dict[str, Any]:
    """One run as a flat dict with the CSV_COLUMNS keys (missing values None): the stored figures and the
    report's reading of them (accelstudio.core.runs.report) against `baseline`, the run's like-for-like baseline
    (or the given `report`, already built)."""
    m = result.metrics or {}
    runtime = (result.spec or {}).get("runtime", {}) or {}
    report = report if report is not None else build_report(result, baseline)
    row: dict[str, Any] = {
        "id": result.run_id, "created": result.created, "status": result.status, "reason": result.reason,
        "model": (result.model_identity or {}).get("name"), "model_key": report.model_key,
        "model_sha256": (result.model_identity or {}).get("sha256"),
        "recipe": recipe_text(result), "runtime": runtime.get("runtime"), "device": runtime.get("device"),
        "threads": (result.environment or {}).get("threads", runtime.get("threads")),
        "batch": runtime.get("batch"),
        "cpu": ((result.environment or {}).get("cpu") or {}).get("model"), "artifact": result.artifact,
    }
    row.update({k: m.get(k) for k in _METRIC_COLUMNS})
    row.update(report_columns(report))
    return {k: to_json_safe(row.get(k)) for k in CSV_COLUMNS}


def report_columns(report) -> dict[str, Any]:
    """The flat export columns a RunReport fills (speed-up, verdicts, fidelity, broken, data, warnings)."""
    q, change, speed = report.quality, report.quality.change, report.speedup
    return {
        "baseline_run": report.baseline.run_id if report.baseline else None,
        "baseline": report.baseline.describe() if report.baseline else report.baseline_note or None,
        "speedup": speed.ratio if speed else None,
        "speedup_ci_lo": speed.interval.lo if speed and speed.interval else None,
        "speedup_ci_hi": speed.interval.hi if speed and speed.interval else None,
        "speed_verdict": speed.verdict if speed else None,
        "quality_headline": q.headline,
        "accuracy_delta": change.delta_pts if change else None,
        "accuracy_delta_ci_lo": change.interval.lo if change and change.interval else None,
        "accuracy_delta_ci_hi": change.interval.hi if change and change.interval else None,
        "accuracy_verdict": change.verdict if change else None,
        "delta_significant": (change.verdict != "within noise") if change else None,
        "lost": change.lost if change else None, "gained": change.gained if change else None,
        "mcnemar_p": change.p_value if change else None,
        "output_kind": q.output_kind, "top1_agreement": q.agreement, "cosine": q.cosine,
        "max_abs_error": q.max_abs_error, "kl_divergence": q.kl_divergence, "nonfinite_outputs": q.nonfinite_outputs,
        "broken": report.broken is not None if report.status == "done" else None,
        "broken_cause": report.broken.cause if report.broken else None,
        "data_source": report.data.source, "data_samples": report.data.n, "data_badge": report.data.badge or None,
        "input_shapes": report.data.shapes_text() or None,
        "warnings": " | ".join(report.warnings) or None,
    }


def flat_rows(runs: list[RunResult], pool: list[RunResult]) -> list[dict[str, Any]]:
    """flat_row of each run against its like-for-like baseline found in `pool` (e.g. every stored run)."""
    from accelstudio.core.runs.baseline import find_baseline

    return [flat_row(r, find_baseline(pool, r)) for r in runs]


def runs_document(runs: list[RunResult], pool: list[RunResult]) -> dict[str, Any]:
    """The JSON export: every run in full, each with "report", its reading against its baseline in `pool`."""
    from accelstudio.core.runs.baseline import find_baseline
    return {"schema": "accelstudio-runs/2",
            "runs": [{**r.to_dict(), "report": build_report(r, find_baseline(pool, r)).to_dict()} for r in runs]}


def _csv_cell(value: Any) -> Any:
    # A text cell starting like a formula would run as one in a spreadsheet.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def write_csv_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows (CSV_COLUMNS) to `path` via a temporary file in the same folder and os.replace."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(row.get(k)) for k in CSV_COLUMNS})
    write_text_atomic(path, buf.getvalue())


def write_json_atomic(path: Path, document: Any) -> None:
    """Write strict JSON (NaN/Inf as null) to `path` atomically."""
    write_text_atomic(path, json.dumps(to_json_safe(document), indent=2, allow_nan=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to a temporary file next to `path`, fsync it, then os.replace it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
