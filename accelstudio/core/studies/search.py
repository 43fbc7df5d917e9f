"""The budgeted recipe search: Optuna proposes points of a SearchSpace, a TrialExecutor measures them, the
store keeps every trial (a run tagged with the study) and the study's history, so a stopped search resumes.

Phases. Screening: known-good defaults first (dynamic int8 per-channel, static int8 per-channel on a small
calibration set, fp16 where the CPU computes it natively, a moderate structured prune), then TPE under the
constraint (or NSGA-II on objective and accuracy), each trial on a subset of the validation half with a short
timing. Confirmation: the best few feasible screened points measured again on the whole validation half, where
the choice is made. Test: the chosen point measured once more on the test half, which nothing was chosen on;
those are the figures reported. Anytime: the best so far is kept and reported after every trial, and a cancel
(one threading.Event for the loop and the running job) ends the search with what it has.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
import warnings
from typing import Any, Callable

from accelstudio.core.studies.search_config import SearchConfig, SearchError, TrialExecutor, trial_spec
from accelstudio.core.studies.search_judge import TrialOutcome, is_better, judge
from accelstudio.core.studies.search_state import SearchState, file_sha256_of, fp16_native, \
    sensitivity_ranking  # noqa: F401 - sensitivity_ranking is read from here
from accelstudio.core.studies.search_space import ModelFacts, count_points, default_points, describe_point, \
    distributions_of, grid, point_recipe, point_runtime, suggest_point

STUDY_KIND = "search"
MAX_REPEATS = 25  # proposals of already measured points in a row before the space counts as exhausted
REPEATS_BEFORE_JUMP = 3  # known points proposed in a row before an unmeasured point is tried instead


OnState = Callable[[SearchState], None]


def run_search(config: SearchConfig, executor: TrialExecutor, store, cancel: threading.Event | None = None,
               on_state: OnState | None = None, resume: int | None = None) -> SearchState:
    """Run (or, with `resume` = a stored study id, continue) a search within config.budget_s and return its
    final state; the study row in `store` is updated after every trial."""
    cancel = cancel if cancel is not None else threading.Event()
    prior: list[TrialOutcome] = []
    if resume is not None:
        record = store.get_study(resume)
        if record.kind != STUDY_KIND:
            raise SearchError(f"{store.path}: study {resume} is a {record.kind} study, not a search")
        stored = SearchConfig.from_dict(record.params)
        config = dataclasses.replace(stored, budget_s=config.budget_s, max_trials=config.max_trials)
        prior = [TrialOutcome.from_dict(t) for t in record.result.get("trials", []) if t.get("phase") == "screen"]
        study_id = resume
    else:
        study_id = store.add_study(STUDY_KIND, config.to_dict(),
                                   {"name": config.model, "sha256": file_sha256_of(config.model)})
    loop = _Loop(config, executor, store, cancel, on_state, study_id, prior)
    try:
        return loop.run()
    except KeyboardInterrupt:  # Ctrl-C between trials: stopped, resumable
        cancel.set()
        loop.save("stopped")
        raise
    except BaseException:
        loop.save("failed" if not cancel.is_set() else "stopped")
        raise


class _Loop:
    def __init__(self, config, executor, store, cancel, on_state, study_id, prior):
        self.config, self.executor, self.store, self.cancel = config, executor, store, cancel
        self.on_state, self.prior = on_state, prior
        self.state = SearchState(study_id=study_id, phase="screen", trials=tuple(prior))
        self.start = time.monotonic()
        self.labeled = True
        self.facts = ModelFacts()
        self.model_data = None
        self.screen_seconds: list[float] = []  # wall time of each screening trial (to keep the budget)

    # --- the phases ----------------------------------------------------------------------------------------

    def run(self) -> SearchState:
        self._describe()
        for outcome in self.prior:
            self._keep_best(outcome, count_first=False)
        self._screen()
        if not self.cancel.is_set():
            self._confirm()
        if not self.cancel.is_set() and self.state.best is not None:
            self._test()
        status = "stopped" if self.cancel.is_set() else "done"
        if self.state.best is None and not self.state.notes_about_best:
            feasible = any(t.ok and t.feasible for t in self.state.trials)
            self._note("no candidate meeting the constraint was shown better than the unchanged model" if feasible
                       else "no candidate met the constraint (" + self.config.constraint.describe() + ")")
        return self.save(status)

    def _describe(self) -> None:
        self.model_data = self.executor.describe_model(self.config.model, self.config.trust, self.cancel)
        layers = tuple((layer.name, layer.op_type) for layer in self.model_data.summary.layers)
        sha = file_sha256_of(self.config.model)
        ranking, ranking_study = sensitivity_ranking(self.store, self.config.model)
        self.facts = ModelFacts(layers=tuple(layers), ranking=ranking, ranking_study=ranking_study)
        self._update(facts={"layers": len(layers), "sha256": sha, "ranking_study": ranking_study,
                            "points": count_points(self.config.space, self.facts, self._training())})
        if not ranking and self.config.space.keep_float:
            self._note("no stored sensitivity study for this model: 'keep the most sensitive layers in float' is "
                       "not searched")

    def _screen(self) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        study = self._study()
        measured = {_key(t.point): t for t in self.state.trials}
        for point in default_points(self.config.space, self.facts, fp16_native(), self.config.runtime):
            if _key(point) not in measured:
                study.enqueue_trial(point, skip_if_exists=True)
        every = list(grid(self.config.space, self.facts, self._training()))
        total, repeats, number = len(every), 0, len(measured)
        rng = random.Random(self.config.seed)
        while not self._screen_over(number) and repeats < MAX_REPEATS and len(measured) < total:
            if repeats and repeats % REPEATS_BEFORE_JUMP == 0:  # the sampler keeps proposing known points
                fresh = [p for p in every if _key(p) not in measured]
                if fresh:
                    study.enqueue_trial(rng.choice(fresh))
            trial = study.ask()
            point = suggest_point(self.config.space, self.facts,
                                  lambda n, c: trial.suggest_categorical(n, list(c)), self._training())
            known = measured.get(_key(point))
            if known is not None and known.status == "refused":
                repeats += 1
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            if known is not None:  # a discrete space: tell Optuna the measured figures again, run nothing
                repeats += 1
                self._tell(study, trial, known)
                continue
            refusal = self._refusal(point)
            if refusal:  # the model cannot take it (no run): never proposed again, costs no trial
                measured[_key(point)] = TrialOutcome(number=-1, point=point, label="", phase="refused",
                                                     status="refused", reason=refusal)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                if refusal not in self.state.notes:
                    self._note(refusal)
                continue
            repeats = 0
            outcome = self._measure(point, number, "screen")
            number += 1
            if outcome is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            measured[_key(point)] = outcome
            self._tell(study, trial, outcome)
        if len(measured) >= total:
            self._note(f"all {total} points of the space were measured")

    def _confirm(self) -> None:
        self._update(phase="confirm")
        screened = sorted((t for t in self.state.trials if t.phase == "screen" and t.ok and t.feasible),
                          key=lambda t: -t.value)
        best = None
        confirmed = []
        for cand in screened[:max(1, self.config.confirm_top)]:
            outcome = self._measure(cand.point, len(self.state.trials), "confirm")
            if outcome is None:
                return
            confirmed.append(outcome)
            if is_better(outcome, best):
                best = outcome
            self._update(confirmed=tuple(confirmed))
        if best is not None:
            self._update(best=best)
        elif confirmed:
            self._update(best=None)
            if any(c.ok and c.feasible for c in confirmed):
                self._note("no candidate meeting the constraint was shown faster than the unchanged model when "
                           "measured again (its interval reaches down to 1 or below)")
            else:
                self._note("no screened candidate met the constraint when measured again on all validation samples")

    def _test(self) -> None:
        self._update(phase="test")
        outcome = self._measure(self.state.best.point, len(self.state.trials), "test")
        if outcome is not None:
            self._update(final=outcome)
            if outcome.ok and not outcome.feasible:
                self._note("the chosen recipe met the constraint on the validation half but not on the test half")

    # --- one trial -----------------------------------------------------------------------------------------

    def _measure(self, point: dict[str, Any], number: int, phase: str) -> TrialOutcome | None:
        """Run one trial; None when it was cancelled (the loop then ends)."""
        spec = trial_spec(self.config, point, self.facts, phase, self.labeled)
        started = time.monotonic()
        result = self.executor.run([spec], self.cancel, self.state.study_id)[0]
        if phase == "screen":
            self.screen_seconds.append(time.monotonic() - started)
        if result.status == "cancelled":
            self.cancel.set()
            return None
        data = result.metrics.get("data") if isinstance(result.metrics.get("data"), dict) else {}
        if result.status == "done" and data.get("eval", {}).get("labeled") is False and self.labeled:
            self.labeled = False
            self._note("the data have no labels: the constraint is judged on the cosine to the original outputs "
                       f"(>= {self.config.constraint.cosine_limit:g}) over all samples given")
        outcome = _judge(result, number, point, self.facts, phase, self.config)
        self._update(trials=self.state.trials + (outcome,))
        if phase == "screen":
            self._keep_best(outcome)
        self.save("running")
        return outcome

    def _refusal(self, point: dict[str, Any]) -> str:
        """Why the model cannot take this point's recipe ('' when it can), from its snapshot alone."""
        from accelstudio.core.compress.feasibility import check_job_feasible, check_model_feasible
        from accelstudio.core.errors import AccelStudioError

        data, recipe = self.model_data, point_recipe(point, self.facts)
        runtime = point_runtime(point, self.config.runtime)
        fmt = "example" if self.config.model.startswith("example:") else data.source_format
        try:
            check_job_feasible(fmt, data.backend, runtime.runtime, runtime.device, recipe, data.inputs, data.name)
            check_model_feasible(data, recipe)
        except AccelStudioError as exc:
            return f"not searched: {exc}"
        return ""

    def _keep_best(self, outcome: TrialOutcome, count_first: bool = True) -> None:
        if outcome.phase != "screen":
            return
        if count_first and outcome.ok and outcome.feasible and self.state.first_valid_s is None:
            self._update(first_valid_s=time.monotonic() - self.start)
        if is_better(outcome, self.state.best):
            self._update(best=outcome)

    def _tell(self, study, trial, outcome: TrialOutcome) -> None:
        import optuna

        if not outcome.ok:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        trial.set_constraint("violation", _finite(outcome.violation))  # feasible when <= 0
        study.tell(trial, _values(outcome, self.config.strategy))

    def _study(self):
        """An Optuna study seeded with the stored screening trials (a resumed search learns from them)."""
        import optuna

        if self.config.strategy == "nsga2":
            sampler = optuna.samplers.NSGAIISampler(seed=self.config.seed, population_size=8)
            study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        else:
            sampler = optuna.samplers.TPESampler(seed=self.config.seed, n_startup_trials=5)
            study = optuna.create_study(direction="maximize", sampler=sampler)
        dists = distributions_of(self.config.space, self.facts)
        for t in self.prior:
            params = {k: v for k, v in t.point.items() if k in dists and v in dists[k].choices}
            if not t.ok:
                continue
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions={k: dists[k] for k in params},
                constraints={"violation": _finite(t.violation)}, **_value_kw(t, self.config.strategy)))
        return study

    # --- state ---------------------------------------------------------------------------------------------

    def _screen_over(self, number: int) -> bool:
        """Screening ends at screen_fraction of the budget, or earlier when one more screening trial plus the
        confirmations and the test measurement (each about as long as a screening trial so far) would overrun it."""
        c = self.config
        elapsed = time.monotonic() - self.start
        trial_s = sum(self.screen_seconds) / len(self.screen_seconds) if self.screen_seconds else 0.0
        still_to_come = trial_s * (1 + max(1, c.confirm_top) + 1)
        if self.cancel.is_set() or elapsed >= c.budget_s * c.screen_fraction or elapsed + still_to_come > c.budget_s:
            return True
        return c.max_trials is not None and number - len(self.prior) >= c.max_trials

    def _training(self) -> bool:
        return self.config.train_data is not None or self.config.model.startswith("example:")

    def _note(self, text: str) -> None:
        self._update(notes=self.state.notes + (text,))

    def _update(self, **changes) -> None:
        self.state = dataclasses.replace(self.state, elapsed_s=time.monotonic() - self.start, **changes)
        if self.on_state is not None:
            self.on_state(self.state)

    def save(self, status: str) -> SearchState:
        self._update(status=status)
        self.store.update_study(self.state.study_id, self.state.to_dict(), status)
        return self.state


def _judge(result, number, point, facts, phase, config) -> TrialOutcome:
    return judge(result, number, point, describe_point(point, facts), phase, config.constraint, config.objective)


def _values(outcome: TrialOutcome, strategy: str):
    return [outcome.value, _finite(outcome.fidelity_axis)] if strategy == "nsga2" else outcome.value


def _value_kw(outcome: TrialOutcome, strategy: str) -> dict[str, Any]:
    return {"values": _values(outcome, strategy)} if strategy == "nsga2" else {"value": outcome.value}


def _finite(x: float) -> float:
    return float(x) if math.isfinite(x) else 1e9


def _key(point: dict[str, Any]) -> tuple:
    return tuple(sorted(point.items()))
