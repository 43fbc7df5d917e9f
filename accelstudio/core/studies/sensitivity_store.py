"""Sensitivity studies in the run store: which model a study belongs to, and the latest one for a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelstudio.core.model.loading import EXAMPLE_PREFIX
from accelstudio.core.model.loading_common import file_sha256
from accelstudio.core.runs.store import RunStore, StudyRecord
from accelstudio.core.studies.sensitivity_params import STUDY_KIND


def study_identity(model: str) -> dict[str, Any]:
    """{"name", "sha256"} of the study's model: a bundled example by its "example:NAME" reference (no hash), a
    file by its name and the SHA-256 of its bytes."""
    if model.startswith(EXAMPLE_PREFIX):
        return {"name": model, "sha256": None}
    path = Path(model)
    return {"name": path.name, "sha256": file_sha256(path) if path.is_file() else None}


def studies_of(store: RunStore, model: str) -> list[StudyRecord]:
    """The stored sensitivity studies of `model`, newest first: a file matched by its SHA-256 (so a moved copy
    still finds them), a bundled example by its "example:NAME" reference."""
    identity = study_identity(model)
    if identity["sha256"]:
        return store.list_studies(STUDY_KIND, model_sha256=identity["sha256"])
    return [s for s in store.list_studies(STUDY_KIND) if s.params.get("model") == model]


def latest_study(store: RunStore, model: str, done_only: bool = True) -> StudyRecord | None:
    """The newest stored sensitivity study of `model` (an "example:NAME" reference or a file path, matched by
    the file's SHA-256 so a moved copy still finds it), finished ones only unless `done_only` is False."""
    for record in studies_of(store, model):
        if not done_only or (record.status == "done" and record.result.get("rows")):
            return record
    return None
