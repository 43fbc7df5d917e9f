"""Running jobs from the window: Run/Cancel, progress in the status bar, the outcome shown inline.

A job runs in the worker process through JobBridge; nothing here blocks. A failed or cancelled run never
opens a modal dialog: its reason goes to the status bar and the results panel lists it as failed.
Restoring a past run puts its recipe and runtime back into the controls (reloading its model if needed).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from accelstudio.app.views.data_panel import spec_input_shapes
from accelstudio.app.control.state import AppState
from accelstudio.core.data.settings import DataSettings
from accelstudio.core.job import JobSpec, RunResult

from accelstudio.app.bridges.job_bridge import JobBridge

STAGE_NAMES = {"starting": "Starting", "cancelling": "Cancelling…", "load": "Loading the model",
               "data": "Loading data", "compress": "Compressing", "export": "Saving the model",
               "benchmark": "Measuring", "profile": "Profiling operators", "compile": "Compiling",
               "evaluate": "Evaluating"}
# Steps the compress stage reports inside its text as "<step>: ..." (pipeline._Stages.within).
SUB_STAGES = {"prune": "pruning", "recover": "recovering accuracy", "quantize": "quantizing"}


def open_store():
    """The user's run store, or None (with the reason) when it cannot be opened."""
    from accelstudio.core.paths import default_store_path
    from accelstudio.core.runs.store import RunStore

    try:
        return RunStore(default_store_path()), ""
    except Exception as exc:  # a broken store must not stop the app; runs are then not kept
        return None, f"The run store could not be opened ({exc}); runs will not be saved."


class RunController(QObject):
    """Starts, follows and cancels jobs; `status(text, timeout_ms)` feeds the status bar."""

    status = Signal(str, int)
    run_finished = Signal(object)  # RunResult (any status), after the views show it

    def __init__(self, window, state: AppState, results, store=None):
        super().__init__(window)
        self._window, self._state, self._results = window, state, results
        self.store_problem = ""
        if store is None:
            store, self.store_problem = open_store()
        self.store = store
        results.set_store(store)
        self.bridge = JobBridge(store, self)
        results.connect_bridge(self.bridge)
        if hasattr(results, "run_baseline_requested"):
            results.run_baseline_requested.connect(self.start_job)
        self.bridge.progress.connect(self._progress)
        self.bridge.finished.connect(self._finished)
        self.bridge.failed.connect(self._bridge_failed)
        self._pending_restore: tuple | None = None
        self.last_result: RunResult | None = None
        self._widgets: tuple = ()
        self._actions: tuple = ()
        self.data_problem = lambda: ""  # the window's data panel says why its chosen data cannot be used

    def attach_status(self, stage_label, progress_bar, cancel_button, run_button) -> None:
        """The status-bar widgets this controller drives."""
        self._widgets = (stage_label, progress_bar, cancel_button, run_button)
        self._set_running(False)

    def attach_actions(self, run_action, cancel_action) -> None:
        """Run (F5) and Cancel (Esc) actions, enabled to match the job state."""
        self._actions = (run_action, cancel_action)
        self._set_running(False)

    def is_running(self) -> bool:
        return self.bridge.is_running()

    # -- commands -------------------------------------------------------------------------------------------
    def job_spec(self) -> JobSpec | None:
        """The job the Run button would start now (None without a model)."""
        model = self._state.model
        if model is None:
            return None
        data, runtime = self._state.data, self._state.runtime
        return JobSpec(model=model.ref, recipe=self._state.recipe, runtime=runtime, trust=model.trust,
                       data=data.data, calib_data=data.calib_data, train_data=data.train_data,
                       input_shapes=spec_input_shapes(data, runtime.batch))

    def start_run(self) -> bool:
        """Run the current recipe; False (and a status line) when it cannot start."""
        if self.is_running():
            return False
        spec = self.job_spec()
        if spec is None:
            self.status.emit("Open a model first.", 5000)
            return False
        problem = self.data_problem()
        if problem:
            self.status.emit(f"Not started: {problem}", 0)
            return False
        refusal = feasibility_refusal(self._state.model.handle, spec)
        if refusal:
            self.status.emit(f"Cannot run: {refusal}", 0)
            return False
        return self.start_job(spec)

    def start_job(self, spec: JobSpec) -> bool:
        """Run a given job (e.g. the like-for-like baseline the results panel asks for); False when busy."""
        if self.is_running():
            self.status.emit("A run is in progress; start the baseline when it has finished.", 5000)
            return False
        if not self.bridge.start(spec):
            return False  # the bridge said why through `failed`
        self._set_running(True)
        self._show_stage("starting", 0.0, f"{spec.recipe.describe()} on {spec.runtime.runtime}")
        return True

    def cancel(self) -> None:
        """Ask the running job to stop (Esc)."""
        if self.is_running():
            self.bridge.cancel()
            self._show_stage("cancelling", self._progress_fraction(), "")

    def restore(self, result: RunResult) -> None:
        """Put a past run's recipe and runtime back; reload its model first when another one is open."""
        try:
            spec = JobSpec.from_dict(result.spec)
        except Exception as exc:  # an old or damaged record
            self.status.emit(f"Cannot restore run {result.run_id}: {exc}", 8000)
            return
        model = self._state.model
        if model is None or model.ref != spec.model:
            self._pending_restore = (spec.recipe, spec.runtime, result.run_id, restored_data(spec))
            self._window.open_model(spec.model)
            return
        self._apply_restore(spec.recipe, spec.runtime, result.run_id, restored_data(spec))

    def model_ready(self) -> None:
        """Called when a model finished loading: apply a restore that waited for it."""
        if self._pending_restore is not None:
            recipe, runtime, run_id, data = self._pending_restore
            self._pending_restore = None
            self._apply_restore(recipe, runtime, run_id, data)

    def _apply_restore(self, recipe, runtime, run_id, data=None) -> None:
        try:
            self._state.restore(recipe, runtime, f"Restore run {run_id}", data=data)
        except Exception as exc:  # a recipe naming layers this model lacks
            self.status.emit(f"Cannot restore run {run_id}: {exc}", 8000)
            return
        self.status.emit(f"Restored the settings of run {run_id}: {recipe.describe()}", 6000)

    def shutdown(self) -> None:
        """Cancel a running job and wait for the worker to exit."""
        if not self.bridge.shutdown():
            self.status.emit("The worker did not stop in time; it will be ended with the app.", 0)

    # -- bridge signals -------------------------------------------------------------------------------------
    def _progress(self, stage: str, fraction: float, text: str, _partial: dict) -> None:
        self._show_stage(stage, fraction, text)

    def _finished(self, result: RunResult) -> None:
        self._set_running(False)
        self.last_result = result
        self.status.emit(outcome_text(result), 0 if result.status != "done" else 15000)
        self.run_finished.emit(result)

    def _bridge_failed(self, message: str) -> None:
        self._set_running(False)
        self.status.emit(f"Run failed: {message}", 0)

    # -- widgets --------------------------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        if self._widgets:
            stage_label, progress_bar, cancel_button, run_button = self._widgets
            progress_bar.setVisible(running)
            cancel_button.setVisible(running)
            stage_label.setVisible(running)
            run_button.setEnabled(not running)
            if not running:
                progress_bar.setValue(0)
        if self._actions:
            self._actions[0].setEnabled(not running)
            self._actions[1].setEnabled(running)

    def _show_stage(self, stage: str, fraction: float, text: str) -> None:
        if not self._widgets:
            return
        stage_label, progress_bar = self._widgets[0], self._widgets[1]
        progress_bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        stage_label.setText(stage_text(stage, text))

    def _progress_fraction(self) -> float:
        return self._widgets[1].value() / 1000 if self._widgets else 0.0


def restored_data(spec: JobSpec) -> DataSettings:
    """The data choices of a past run's spec (files that are gone are left to the defaults)."""
    exists = lambda p: p if p and Path(p).exists() else None  # noqa: E731
    shapes = tuple(sorted((name, tuple(int(d) for d in dims)) for name, dims in (spec.input_shapes or {}).items()))
    return DataSettings(exists(spec.data), exists(spec.calib_data), exists(spec.train_data), shapes)


def feasibility_refusal(handle, spec: JobSpec) -> str | None:
    """Why the model's format cannot take this recipe on this runtime (core/compress/feasibility.py), or None."""
    from accelstudio.core.compress.feasibility import RecipeNotPossible, check_job_feasible, check_model_feasible

    try:
        check_job_feasible(handle.source_format, handle.backend, spec.runtime.runtime, spec.runtime.device,
                           spec.recipe, getattr(handle, "inputs", None), getattr(handle, "name", None))
        check_model_feasible(handle, spec.recipe)
    except RecipeNotPossible as exc:
        return str(exc)
    return None


def stage_text(stage: str, text: str) -> str:
    """The status-bar line for a progress message, e.g. 'Compressing › recovering accuracy: finetune epoch
    1/3: loss 0.41' for the recover step inside the compress stage."""
    name = STAGE_NAMES.get(stage, stage)
    step, sep, rest = text.partition(": ")
    if sep and step in SUB_STAGES:
        label = SUB_STAGES[step]
        if rest.lower().startswith(label.split()[0]):  # "prune: pruning: l1-structured" says it twice
            return f"{name} › {rest}"
        return f"{name} › {label}: {rest}"
    return f"{name}: {text}" if text else name


def outcome_text(result: RunResult) -> str:
    """One status-bar line for a finished run: its headline numbers, or why it failed."""
    run = f"Run {result.run_id}" if result.run_id is not None else "Run"
    if result.status == "cancelled":
        return f"{run} cancelled."
    if result.status != "done":
        return f"{run} failed: {result.reason or 'no reason given'}"
    m = result.metrics
    parts = []
    if m.get("p50_ms") is not None:
        parts.append(f"p50 {m['p50_ms']:.3f} ms")
    if m.get("accuracy") is not None:
        parts.append(f"accuracy {m['accuracy'] * 100:.1f}%" if m["accuracy"] <= 1 else f"accuracy {m['accuracy']:.1f}%")
    if m.get("size_bytes"):
        parts.append(f"size {m['size_bytes'] / 1e6:.3f} MB")
    name = Path(str(result.model_identity.get("name", ""))).name
    from accelstudio.core.runs.report import build_report

    broken = build_report(result).broken
    verdict = f" — {broken.text()}" if broken is not None else ""
    return f"{run} done{f' ({name})' if name else ''}: " + ", ".join(parts) + verdict
