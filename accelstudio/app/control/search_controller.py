"""Run > Search for a recipe...: the Search dock (hidden until opened), a search on the open model run by the
core loop on a plain thread with each trial in a worker process (LocalWorkerExecutor), the live Pareto plot,
Stop (one cancel for the loop and the running trial) and "Use this recipe" (restores the controls to the chosen
trial's recipe and runtime knobs as one undoable edit; export then goes through the usual path)."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QObject

from accelstudio.app.control.side_dock import side_tab_dock
from accelstudio.app.bridges.study_thread import StudyThread
from accelstudio.app.views.search_panel import SearchPanel
from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.recipe import Recipe

KNOBS = ("runtime", "graph_opt_level", "spinning")


class SearchController(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.panel = SearchPanel()
        self.dock = side_tab_dock(window, "Search", "searchDock", self.panel)
        self.thread = StudyThread(self)
        self.thread.progress.connect(self._progress)
        self.thread.finished.connect(self._finished)
        self.thread.cancelled.connect(lambda: self._ended("Search stopped."))
        self.thread.failed.connect(lambda message, _trace: self._ended(f"Search failed: {message}"))
        self.panel.start_button.clicked.connect(self.start)
        self.panel.stop_button.clicked.connect(self.thread.cancel)
        self.panel.resume_button.clicked.connect(self.resume)
        window.state.model_changed.connect(lambda _model: self.refresh_resumable())
        self.panel.use_button.clicked.connect(self.use_selected)
        self.panel.plot.trial_clicked.connect(self.select)
        self.state: dict[str, Any] = {}
        self.selected: dict[str, Any] | None = None
        theme = window.theme
        theme.changed.connect(lambda *_: self.panel.plot.apply_colors(theme.colors()))
        self.panel.plot.apply_colors(theme.colors())

    def fill_menu(self, menu) -> None:
        action = menu.addAction("Search for a &recipe...")
        action.setObjectName("searchAction")
        action.triggered.connect(self.open)

    def open(self) -> None:
        self.dock.show()
        self.dock.raise_()
        self.refresh_resumable()

    def resumable(self) -> int | None:
        """The id of the open model's newest search if it was stopped (None: none to continue)."""
        spec = self.window.runs.job_spec()
        if spec is None:
            return None
        from accelstudio.core.studies.search import STUDY_KIND

        store = self.window.runs.store
        if store is None:
            return None
        newest = next((s for s in store.list_studies(kind=STUDY_KIND) if s.params.get("model") == spec.model), None)
        return newest.study_id if newest is not None and newest.status == "stopped" else None

    def refresh_resumable(self) -> None:
        study_id = None if self.is_running() else self.resumable()
        self.panel.resume_button.setEnabled(study_id is not None)
        self.panel.resume_button.setText("Resume" if study_id is None else f"Resume {study_id}")

    def is_running(self) -> bool:
        return self.thread.is_running()

    def config(self):
        """The SearchConfig of the open model, its data and runtime, and the panel's choices (None: no model)."""
        from accelstudio.core.studies.search_config import SearchConfig
        from accelstudio.core.studies.search_judge import Constraint
        from accelstudio.core.studies.search_space import space_from_vary

        spec = self.window.runs.job_spec()
        if spec is None:
            return None
        p = self.panel
        training = spec.train_data is not None or spec.model.startswith("example:")
        space = space_from_vary(p.vary(), p.modes(), spec.runtime.runtime, training)
        runtime = dataclasses.replace(spec.runtime, compile="", profile=False)
        return SearchConfig(model=spec.model, constraint=Constraint(**p.constraint()), objective=p.objective.currentText(),
                            budget_s=p.budget.value() * 60.0, runtime=runtime, space=space, data=spec.data,
                            calib_data=spec.calib_data, train_data=spec.train_data, trust=spec.trust,
                            input_shapes=dict(spec.input_shapes))

    def resume(self, max_trials: int | None = None) -> bool:
        """Continue the open model's last stopped search (its stored settings, the panel's budget)."""
        study_id = self.resumable()
        return study_id is not None and self.start(max_trials, resume=study_id)

    def start(self, max_trials: int | None = None, resume: int | None = None) -> bool:
        if self.is_running() or self.window.runs.is_running():
            self.panel.status.setText("A job is running; wait for it or cancel it first.")
            return False
        try:
            config = self.config()
        except AccelStudioError as exc:
            self.panel.status.setText(str(exc))
            return False
        if config is None:
            self.panel.status.setText("Open a model first.")
            return False
        if max_trials is not None:
            config = dataclasses.replace(config, max_trials=max_trials, confirm_top=1)
        self.state, self.selected = {}, None
        self.panel.use_button.setEnabled(False)
        self.panel.notes.setText("")
        self.panel.plot.set_axis_names(config.objective, "accuracy")
        self.panel.set_running(True)
        self._run_action_enabled(False)  # a run timed next to the trials would measure them both
        what = f"search {resume}" if resume is not None else f"{config.model} ({config.constraint.describe()})"
        self.panel.status.setText(f"Searching {what}...")
        return self.thread.start(_search_body(self.window.runs.store), {"config": config, "resume": resume})

    def stop(self) -> None:
        self.thread.cancel()

    # --- updates ---------------------------------------------------------------------------------------------

    def _progress(self, _fraction: float, _text: str, partial: dict) -> None:
        state = partial.get("state")
        if not isinstance(state, dict):
            return
        self.state = state
        best = state.get("best")
        trials = state.get("trials", [])
        if any(t.get("drop") is None and t.get("cosine") is not None for t in trials):
            self.panel.plot.set_axis_names(self.panel.objective.currentText(), "cosine")
        # the best may be a confirmation re-measurement: ring the screened trial of the same point
        ringed = next((t["number"] for t in trials if best and t.get("phase") == "screen"
                       and t.get("point") == best.get("point")), None)
        self.panel.plot.set_trials(trials, state.get("front", []), ringed)
        screened = sum(1 for t in trials if t.get("phase") == "screen")
        self.panel.status.setText(f"{state.get('phase')}: {screened} trials, {state.get('elapsed_s', 0):.0f} s")
        self.panel.best.setText(_best_text(state))
        if best is not None and self.selected is None:
            self.select(best["number"])

    def select(self, number: int) -> None:
        trial = next((t for t in self.state.get("trials", []) if t.get("number") == number), None)
        if trial is None or not (trial.get("extra") or {}).get("recipe"):
            return
        self.selected = trial
        self.panel.selected.setText(f"Selected trial {number}: {trial.get('label')}")
        self.panel.use_button.setEnabled(True)

    def use_selected(self) -> bool:
        """Restore the controls to the selected trial's recipe and runtime knobs (one undo step)."""
        if self.selected is None:
            return False
        extra = self.selected.get("extra") or {}
        recipe = Recipe.from_dict(extra["recipe"])
        knobs = {k: v for k, v in RuntimeSettings.from_dict(extra.get("runtime") or {}).to_dict().items()
                 if k in KNOBS}
        runtime = dataclasses.replace(self.window.state.runtime, **knobs)
        self.window.state.restore(recipe, runtime, f"Use searched recipe: {self.selected.get('label')}")
        self.window.controls_dock.raise_()  # show the restored controls
        return True

    def _finished(self, state: dict) -> None:
        self._progress(1.0, "", {"state": state})
        self._ended(f"Search {state.get('status')} after {state.get('elapsed_s', 0):.0f} s "
                    f"(study {state.get('study_id')}).")
        self.panel.notes.setText("\n".join(f"Note: {n}" for n in state.get("notes", [])))

    def _ended(self, text: str) -> None:
        self.panel.set_running(False)
        self._run_action_enabled(True)
        self.panel.status.setText(text)
        self.window.results.reload()  # the trials are stored runs: show them in the runs table
        self.refresh_resumable()

    def _run_action_enabled(self, enabled: bool) -> None:
        action = getattr(self.window, "run_action", None)
        if action is not None:
            action.setEnabled(enabled and not self.window.runs.is_running())

    def shutdown(self) -> None:
        self.thread.shutdown()


def _search_body(store):
    """The thread body: the core loop with the local worker executor; progress carries the state dict."""
    def body(params, report, cancel) -> dict:
        from accelstudio.core.progress import ProgressEvent
        from accelstudio.core.runs.store import RunStore
        from accelstudio.core.studies.search import run_search
        from accelstudio.worker.search_executor import LocalWorkerExecutor

        runs = store if store is not None else RunStore()
        # `cancel` (set/is_set) is the one cancel of the loop, run_many and the running trial
        state = run_search(params["config"], LocalWorkerExecutor(runs), runs, cancel,
                           on_state=lambda s: report(ProgressEvent("search", 0.0, s.phase, {"state": s.to_dict()})),
                           resume=params.get("resume"))
        return state.to_dict()
    return body


def _best_text(state: dict) -> str:
    best, final = state.get("best"), state.get("final")
    if best is None:
        return "Best so far: none shown faster than the unchanged model within the constraint yet."
    text = f"Best so far: {best['label']} x{best['value']:.2f} [{best['lo']:.2f}, {best['hi']:.2f}] ({best['phase']})"
    if final is not None and final.get("value") is not None:
        text += f"; on the test half x{final['value']:.2f} [{final['lo']:.2f}, {final['hi']:.2f}]"
        if final.get("drop") is not None:
            text += f", drop {final['drop']:+.1f} pts"
    return text
