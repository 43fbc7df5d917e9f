"""What a recipe search is asked (SearchConfig), the executor it runs trials through (TrialExecutor), and the
job spec of each trial."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import JobSpec, RunResult, RuntimeSettings
from accelstudio.core.model.model_data import ModelData
from accelstudio.core.studies.search_judge import OBJECTIVES, Constraint
from accelstudio.core.studies.search_space import ModelFacts, SearchSpace, point_recipe, point_runtime

STRATEGIES = ("tpe", "nsga2")
PHASES = ("screen", "confirm", "test")


class SearchError(AccelStudioError):
    """A search that cannot start or resume as asked."""

    category = "search"


class TrialExecutor(Protocol):
    """Runs trial jobs somewhere (a local worker process, a cluster). `run` returns one RunResult per spec, in
    order, stored as trials of `study_id` (run_id set); setting `cancel` stops the running job and skips the
    rest (status "cancelled"). `describe_model` returns the model's data-only snapshot (ModelData: layers,
    inputs, whether it holds attention), loading the model where models may be loaded."""

    def run(self, specs: list[JobSpec], cancel: threading.Event, study_id: int | None) -> list[RunResult]: ...

    def describe_model(self, model: str, trust: bool, cancel: threading.Event) -> ModelData: ...


@dataclass(frozen=True)
class SearchConfig:
    """A search: the model and its data, the constraint, the objective, the wall-clock budget, the base
    runtime settings (the reference every speed-up is measured against), the space, the strategy, and how
    much each phase measures: screening trials evaluate `screen_samples` of the validation half and time for
    `screen_time_s`; the `confirm_top` best are measured again on the whole validation half; the chosen one on
    the test half. `max_trials` caps screening trials (None: the budget decides)."""

    model: str
    constraint: Constraint
    objective: str = "latency"
    budget_s: float = 600.0
    runtime: RuntimeSettings = field(default_factory=lambda: RuntimeSettings(threads=1))
    space: SearchSpace = field(default_factory=SearchSpace)
    strategy: str = "tpe"
    data: str | None = None
    calib_data: str | None = None
    train_data: str | None = None
    trust: bool = False
    input_shapes: dict[str, list[int]] = field(default_factory=dict)  # as JobSpec.input_shapes
    screen_samples: int = 120
    screen_time_s: float = 0.6
    confirm_top: int = 3
    confirm_time_s: float = 1.5
    max_trials: int | None = None
    screen_fraction: float = 0.75  # of the budget spent screening before confirmation
    seed: int = 0

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise SearchError(f"objective {self.objective!r} is unknown; use one of {', '.join(OBJECTIVES)}")
        if self.strategy not in STRATEGIES:
            raise SearchError(f"strategy {self.strategy!r} is unknown; use one of {', '.join(STRATEGIES)}")
        if self.constraint.max_drop is None and self.constraint.min_cosine is None:
            raise SearchError("a search needs a constraint: a maximum accuracy drop or a minimum cosine")
        if self.budget_s <= 0:
            raise SearchError(f"the budget must be positive, got {self.budget_s:g} s")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["runtime"] = self.runtime.to_dict()
        d["space"] = self.space.to_dict()
        d["constraint"] = self.constraint.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in dict(data).items() if k in names}
        d["runtime"] = RuntimeSettings.from_dict(d.get("runtime", {}))
        d["space"] = SearchSpace.from_dict(d.get("space", {}))
        d["constraint"] = Constraint(**d.get("constraint", {}))
        return cls(**d)


def trial_spec(config: SearchConfig, point: dict[str, Any], facts: ModelFacts, phase: str,
               labeled: bool) -> JobSpec:
    """The job of one trial. Screening and confirmation evaluate the validation half (all samples when the
    data have no labels: the constraint is then fidelity), the final re-measurement the test half; every
    trial times the unchanged model, at the base runtime settings, interleaved with the candidate."""
    base = config.runtime
    seconds = config.screen_time_s if phase == "screen" else config.confirm_time_s
    runtime = dataclasses.replace(point_runtime(point, base), time_budget_s=seconds, compile="", profile=False,
                                  streams=1)
    split = ("validation" if phase != "test" else "test") if labeled else "all"
    samples = config.screen_samples if phase == "screen" else 100_000
    reference = {k: getattr(base, k) for k in ("runtime", "graph_opt_level", "spinning")}
    return JobSpec(model=config.model, recipe=point_recipe(point, facts), runtime=runtime, data=config.data,
                   train_data=config.train_data, calib_data=config.calib_data, trust=config.trust, evaluate=True,
                   input_shapes={k: list(v) for k, v in config.input_shapes.items()},
                   max_eval_samples=samples, keep_artifact=phase == "test", eval_split=split,
                   baseline_latency=True, baseline_runtime=reference)
