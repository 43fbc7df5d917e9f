"""File > Save Session, Open Session, Re-measure Imported Runs and Export Run as Script.

Saving writes one `.accelsession` file (core/runs/session.py) with the open model (embedded when small), the
recipe, runtime, data choices and every run of this model. Opening imports its runs
into the store, marked as imported, opens its model and restores its settings; Re-measure runs each imported
run's job again on this machine, one after another through the RunController. Files are written and read on the
background runner, never on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from accelstudio.app.views import dialogs
from accelstudio.app.views.results_panel import identity_matcher
from accelstudio.core.job import JobSpec, RunResult

SESSION_FILTER = "AccelStudio sessions (*.accelsession);;All files (*)"
EXAMPLE_PREFIX = "example:"


class SessionController(QObject):
    """Signals: saved(path), opened(Session, imported run ids), status(text, timeout_ms)."""

    saved = Signal(str)
    opened = Signal(object, list)
    status = Signal(str, int)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.imported: list[RunResult] = []
        self._pending_session = None
        self._queue: list[JobSpec] = []
        self._remeasuring = False
        self.save_action = self._action("Save &Session…", self.save_session, "Save the model, recipe, data "
                                        "choices and this model's runs in one shareable file")
        self.open_action = self._action("Open S&ession…", self.open_session, "Open a session file: its runs "
                                        "are imported and its model and settings restored")
        self.remeasure_action = self._action("Re-&measure Imported Runs", self.remeasure, "Measure every run of "
                                             "the opened session again on this machine")
        self.script_action = self._action("Export Run as &Script…", self.export_script, "Write a Python script "
                                          "that reproduces the selected run with the same job")
        self.remeasure_action.setEnabled(False)
        window.model_loaded.connect(self._model_loaded)
        window.runs.run_finished.connect(self._run_finished)
        self.status.connect(lambda text, ms: window.statusBar().showMessage(text, ms))

    def _action(self, text: str, slot, tip: str) -> QAction:
        action = QAction(text, self.window)
        action.setStatusTip(tip)
        action.triggered.connect(lambda _=False: slot())
        return action

    def fill_menu(self, menu) -> None:
        """The session entries of the File menu."""
        for action in (self.save_action, self.open_action, self.remeasure_action, self.script_action):
            menu.addAction(action)

    # -- file choosers (methods so tests can replace them) -------------------------------------------------
    def ask_save_path(self, title: str, suggested: str, file_filter: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self.window, title, suggested, file_filter)
        return path

    def ask_open_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open session", str(Path.home()), SESSION_FILTER)
        return path

    # -- save ----------------------------------------------------------------------------------------------
    def session_runs(self) -> list[RunResult]:
        """Every run of the open model in the run list (a run is selected after each run, so the selection
        would rarely be what a user means to share)."""
        results = self.window.results
        model = self.window.state.model
        if model is None:
            return []
        matcher = identity_matcher(None, model.summary.name,
                                   None if model.ref.startswith(EXAMPLE_PREFIX) else model.ref)
        return [r for r in results.runs() if matcher is None or matcher(r)]

    def save_session(self, path: str | None = None) -> bool:
        """Write the session (asks for a file when `path` is None); False when nothing was started."""
        from accelstudio import __version__
        from accelstudio.core.runs.session import save_session

        state = self.window.state
        if state.model is None:
            self.status.emit("Open a model first.", 5000)
            return False
        path = path or self.ask_save_path("Save session", str(Path.home() / f"{state.model.summary.name}.accelsession"),
                                          SESSION_FILTER)
        if not path:
            return False
        model, runs = state.model, self.session_runs()
        kwargs = dict(model_ref=model.ref, backend=getattr(model.handle, "backend", None),
                      model_name=model.summary.name, recipe=state.recipe, runtime=state.runtime, data=state.data,
                      runs=runs, app_version=__version__)

        def done(doc) -> None:
            embedded = "with the model embedded" if doc["model"]["embedded"] else "with a reference to the model"
            self.status.emit(f"Saved {len(runs)} runs {embedded} to {path}", 10000)
            self.saved.emit(str(path))

        self.window.models.runner.submit("session-save", lambda: save_session(path, **kwargs), done, self._failed)
        return True

    def _failed(self, exc: BaseException, trace: str) -> None:
        self.status.emit(f"Session: {exc}", 0)
        dialogs.show_error(self.window, "Session", exc, trace)

    # -- open ----------------------------------------------------------------------------------------------
    def open_session(self, path: str | None = None) -> bool:
        """Read a session, import its runs and open its model (asks for a file when `path` is None)."""
        from accelstudio.core.runs.session import import_session_runs, open_session

        path = path or self.ask_open_path()
        if not path:
            return False
        store = self.window.runs.store
        if store is None:
            self.status.emit("The run store is not available; the session's runs cannot be imported.", 0)
            return False

        def work():
            session = open_session(path)
            ids = import_session_runs(store, session)
            return session, ids

        self.window.models.runner.submit("session-open", work, self._opened, self._failed)
        return True

    def _opened(self, result) -> None:
        session, ids = result
        self.window.results.reload()
        store = self.window.runs.store
        self.imported = [store.get_run(i) for i in ids]
        self.remeasure_action.setEnabled(bool(self.imported))
        machine = session.machine.get("cpu") or session.machine.get("host") or "another machine"
        notes = ("; " + "; ".join(session.notes)) if session.notes else ""
        self.status.emit(f"Imported {len(ids)} runs measured on {machine}; File > Re-measure Imported Runs "
                         f"measures them here{notes}", 0)
        self._pending_session = session
        model = self.window.state.model
        if model is not None and model.ref == session.model_ref:
            self._restore(session)
        else:
            self.window.open_model(session.model_ref, backend=session.backend)
        self.opened.emit(session, ids)

    def _model_loaded(self, loaded) -> None:
        session = self._pending_session
        if session is not None and loaded.ref == session.model_ref:
            self._restore(session)

    def _restore(self, session) -> None:
        self._pending_session = None
        try:
            self.window.state.restore(session.recipe, session.runtime, "Open session", data=session.data)
        except Exception as exc:  # a recipe naming layers this model lacks
            self.status.emit(f"The session's recipe does not fit this model: {exc}", 0)
        if self.imported:
            self.window.results.select_runs([r.run_id for r in self.imported if r.run_id is not None])

    # -- re-measure ----------------------------------------------------------------------------------------
    def remeasure(self) -> bool:
        """Run every imported run's job again here, one after another; False when nothing started."""
        runs = self.window.runs
        if self._remeasuring or runs.is_running() or not self.imported:
            return False
        self._queue = []
        for run in self.imported:
            try:
                self._queue.append(JobSpec.from_dict(run.spec))
            except Exception as exc:  # an old or damaged record
                self.status.emit(f"Run {run.run_id} cannot be measured again: {exc}", 8000)
        if not self._queue:
            return False
        self._remeasuring = True
        return self._next()

    def _next(self) -> bool:
        spec = self._queue.pop(0)
        if not self.window.runs.start_job(spec):
            self._remeasuring = False
            self._queue.clear()
            return False
        return True

    def _run_finished(self, result: RunResult) -> None:
        if not self._remeasuring:
            return
        if self._queue and result.status != "cancelled":
            self._next()
            return
        self._remeasuring = False
        self._queue.clear()
        self.status.emit("Re-measured the imported runs on this machine." if result.status != "cancelled"
                         else "Re-measuring cancelled.", 10000)

    # -- export as script ----------------------------------------------------------------------------------
    def export_script(self, path: str | None = None) -> bool:
        """Write a script reproducing the selected run (the newest run when none is selected)."""
        from accelstudio.core.runs.script_export import export_script

        selected = self.window.results.selected_runs()
        runs = selected or self.window.results.runs()
        if not runs:
            self.status.emit("No run to export; run one first.", 5000)
            return False
        run = runs[0]
        path = path or self.ask_save_path("Export run as script", str(Path.home() / f"run_{run.run_id}.py"),
                                          "Python scripts (*.py)")
        if not path:
            return False
        try:
            written = export_script(run, path)
        except Exception as exc:
            self._failed(exc, "")
            return False
        self.status.emit(f"Wrote {written}: python {written.name} reproduces run {run.run_id}", 10000)
        return True
