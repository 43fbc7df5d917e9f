"""Where a recipe search stands (SearchState, stored as the study's result after every trial), and what it reads
about the model and the machine: a stored sensitivity ranking, the model file's hash, native fp16."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accelstudio.core.studies.search_judge import TrialOutcome, pareto_front
from accelstudio.core.studies.sensitivity_store import studies_of, study_identity


@dataclass(frozen=True)
class SearchState:
    """Where a search stands: every trial so far, the best feasible screened and confirmed points, the final
    test measurement, the phase, seconds spent, when the first feasible candidate arrived, and notes."""

    study_id: int
    phase: str
    trials: tuple[TrialOutcome, ...] = ()
    best: TrialOutcome | None = None
    confirmed: tuple[TrialOutcome, ...] = ()
    final: TrialOutcome | None = None
    elapsed_s: float = 0.0
    first_valid_s: float | None = None
    status: str = "running"
    notes: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def notes_about_best(self) -> bool:
        return any("shown faster" in n or "met the constraint" in n for n in self.notes)

    @property
    def front(self) -> list[TrialOutcome]:
        return pareto_front([t for t in self.trials if t.phase == "screen"])

    def to_dict(self) -> dict[str, Any]:
        return {"study_id": self.study_id, "phase": self.phase, "status": self.status, "elapsed_s": self.elapsed_s,
                "first_valid_s": self.first_valid_s, "notes": list(self.notes), "facts": self.facts,
                "trials": [t.to_dict() for t in self.trials],
                "best": self.best.to_dict() if self.best else None,
                "confirmed": [t.to_dict() for t in self.confirmed],
                "final": self.final.to_dict() if self.final else None,
                "front": [t.number for t in self.front]}


def file_sha256_of(model: str) -> str | None:
    """The SHA-256 of a model file (None for a bundled example): how stored studies name the model."""
    return study_identity(model)["sha256"]


def fp16_native() -> bool:
    from accelstudio.core.measure.hardware import cpu_features

    try:
        return bool(cpu_features().get("fp16_native"))
    except OSError:
        return False


def sensitivity_ranking(store, model: str) -> tuple[tuple[str, ...], int | None]:
    """The layer names most sensitive first from the newest stored sensitivity study of this model that has a
    ranking (sensitivity_store.studies_of), and that study's id; ((), None) when there is none or its result is
    not the expected shape."""
    try:
        studies = studies_of(store, model)
    except Exception:  # an older store or an unreadable row: the dimension is skipped
        return (), None
    for record in studies:
        ranking = (record.result or {}).get("ranking")
        if isinstance(ranking, list) and ranking and all(isinstance(r, str) for r in ranking):
            return tuple(ranking), record.study_id
    return (), None
