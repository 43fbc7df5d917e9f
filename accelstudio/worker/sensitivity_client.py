"""Run a sensitivity study in a worker and keep it in the run store: recorded as running first, then its
result (done), or what was found before it stopped (cancelled) or why it failed."""

from __future__ import annotations

import threading
from typing import Any

from accelstudio.core.errors import AccelStudioError, JobCancelled
from accelstudio.core.runs.store import RunStore, StudyRecord
from accelstudio.core.studies.sensitivity_params import STUDY_KIND, SensitivityParams
from accelstudio.core.studies.sensitivity_store import study_identity
from accelstudio.core.studies.sensitivity_result import rank_rows
from accelstudio.worker.client import STUDY_TIMEOUT_S, OnMessage, execute_study

TIMEOUT_MARGIN_S = 300.0  # the worker's limit: the study's budget plus loading, profiling and a last layer


def run_sensitivity_study(params: SensitivityParams, store: RunStore, on_message: OnMessage | None = None,
                          cancel_event: threading.Event | None = None) -> StudyRecord:
    """Run `params` in a worker, store the study and return the stored record. A cancel stores the study as
    "stopped" and raises JobCancelled; a failure stores it as "failed" (with the reason) and raises again."""
    params = params.validate()
    study_id = store.add_study(STUDY_KIND, params.to_dict(), study_identity(params.model))
    rows: list[dict[str, Any]] = []

    def watch(msg) -> None:
        row = (getattr(msg, "partial", None) or {}).get("row")
        if row is not None:
            rows.append(row)
        if on_message is not None:
            on_message(msg)

    try:
        result = execute_study(STUDY_KIND, params.to_dict(), on_message=watch, cancel_event=cancel_event,
                               timeout_s=max(STUDY_TIMEOUT_S, params.budget_s + TIMEOUT_MARGIN_S))
    except JobCancelled:
        store.update_study(study_id, {"rows": rows, "ranking": rank_rows(rows),
                                      "notes": [f"cancelled after {len(rows)} layer(s); partial rows only"]},
                           "stopped")
        raise
    except (AccelStudioError, Exception) as exc:
        store.update_study(study_id, {"error": str(exc)}, "failed")
        raise
    store.update_study(study_id, result, "done")
    return store.get_study(study_id)


def study_result(record: StudyRecord) -> dict[str, Any]:
    """The record's result with its id and status, as the command line prints it."""
    return {"study_id": record.study_id, "status": record.status, "created": record.created,
            "params": record.params, **record.result}
