"""Guided lessons in the window: Help > Lessons and `accelstudio --lesson NAME`.

The controller opens the lesson's model, and for each step (core/studies/lessons.py) sets the recipe and runtime
through the undoable state, selects the layer, frames the control it talks about and the plot that shows the
result, and runs what the step needs: model jobs one after another through the RunController (worker process),
the transfer-learning experiment on a StudyThread. Cancel stops either at once. The lesson's first measured step
also measures the unchanged model with the same settings, so every verdict has a like-for-like baseline.
"""

from __future__ import annotations

import html
import os
from dataclasses import replace

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QScrollArea, QWidget

from accelstudio.app.bridges.study_thread import StudyThread
from accelstudio.app.control.run_controller import outcome_text
from accelstudio.app.plots import run_metrics as rm
from accelstudio.app.views.highlight import HighlightFrame
from accelstudio.app.views.lesson_panel import LessonPanel
from accelstudio.app.views.lesson_results import sensitivity_html, transfer_html, transfer_summary
from accelstudio.core.data.settings import DataSettings
from accelstudio.core.job import JobSpec, RunResult
from accelstudio.core.recipe import Recipe
from accelstudio.core.studies.lessons import (LESSONS, OUTLIER_MODEL, Lesson, get_lesson, step_jobs, step_recipe,
                                              step_runtime)

MIN_WIDTH = 240  # with the controls' and the results' minimum widths, the window still fits 1280 pixels
TRAINING_DATA = "bundled digits training split (scikit-learn load_digits; never the test split)"


class LessonController(QObject):
    """Runs lessons in `window` (a MainWindow). Signals: step_shown(index), step_finished(index, status)
    ("done", "cancelled" or "failed"), status(text, timeout_ms)."""

    step_shown = Signal(int)
    step_finished = Signal(int, str)
    status = Signal(str, int)

    def __init__(self, window):
        super().__init__(window)
        self.window, self.state, self.runs = window, window.state, window.runs
        self.panel = LessonPanel([(lesson.name, lesson.title) for lesson in LESSONS.values()])
        scroll = QScrollArea(objectName="lessonScroll")
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.dock = QDockWidget("Lesson", window, objectName="lessonDock")
        self.dock.setWidget(scroll)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        # the lesson runs the window's full height: its text, formula and plot need it more than the results
        window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.dock.setMinimumWidth(MIN_WIDTH)
        self.dock.hide()
        self.study = StudyThread(self)
        self.control_frame = HighlightFrame(window)
        self.plot_frame = HighlightFrame(window, color="#2ca02c", dashed=True)
        self.runtime_override: dict = {}  # values every lesson job uses (tests: short timings)
        self.transfer_params: dict = {}  # overrides of the transfer experiment's settings (tests)
        self.lesson: Lesson | None = None
        self.index = 0
        self.results: list[RunResult] = []  # the runs of the current step
        self.hardware_runs: list[RunResult] = []
        self.transfer_result: dict | None = None
        self._queue: list[JobSpec] = []
        self._jobs_total = 0
        self._running = False
        self._baselined: set[str] = set()
        self._data = DataSettings()
        self._waiting_for_model = False
        self._wire()

    def _wire(self) -> None:
        p = self.panel
        p.lesson_chosen.connect(self.start)
        p.back.connect(lambda: self.go(self.index - 1))
        p.next.connect(lambda: self.go(self.index + 1))
        p.run_step.connect(self.run_step)
        p.cancel.connect(self.cancel)
        self.runs.run_finished.connect(self._run_finished)
        self.runs.bridge.progress.connect(self._job_progress)
        self.study.progress.connect(self._transfer_progress)
        self.study.finished.connect(self._transfer_finished)
        self.study.cancelled.connect(lambda: self._finish_step("cancelled", "Training cancelled."))
        self.study.failed.connect(lambda message, _t: self._finish_step("failed", f"Training failed: {message}"))
        self.window.model_loaded.connect(self._model_loaded)
        self.dock.visibilityChanged.connect(self._dock_visibility)
        self.status.connect(lambda text, ms: self.window.statusBar().showMessage(text, ms))
        theme = self.window.theme
        theme.changed.connect(lambda *_: self.panel.apply_colors(theme.colors()))
        self.panel.apply_colors(theme.colors())

    def fill_menu(self, menu) -> None:
        """One entry per lesson in `menu` (Help > Lessons)."""
        for lesson in LESSONS.values():
            action = menu.addAction(lesson.title)
            action.setStatusTip(lesson.summary)
            action.triggered.connect(lambda _=False, n=lesson.name: self.start(n))

    def is_busy(self) -> bool:
        return self._running

    # -- lessons and steps ---------------------------------------------------------------------------------
    def start(self, name: str) -> None:
        """Open lesson `name`: show the panel, open its model (when another is open) and show step 1."""
        if self._running:
            self.status.emit("A lesson step is running; cancel it first.", 5000)
            return
        lesson = get_lesson(name)
        self.lesson, self.index, self.hardware_runs, self.transfer_result = lesson, 0, [], None
        self._baselined.clear()
        self.panel.show_lesson(lesson.name, lesson.summary)
        self.panel.training.clear()
        self.panel.show_results("")
        if not self.dock.isVisible():
            self.dock.show()
            QTimer.singleShot(0, self, self._size_dock)
        self.dock.raise_()
        self._data = DataSettings()
        if lesson.model == OUTLIER_MODEL:
            self.panel.set_status("Preparing the lesson's model…")
            self.window.models.runner.submit("lesson-model", _write_outlier_model, self._open_outlier,
                                             lambda exc, _t: self.panel.set_status(f"Could not prepare it: {exc}"))
            return
        if self._has_model(lesson.model, lesson.backend):
            self.go(0)
            return
        self._open(lesson.model, lesson.backend)

    def _size_dock(self) -> None:
        """A quarter of the window's width (at least MIN_WIDTH, at most 440 pixels)."""
        window = self.window
        window.resizeDocks([self.dock], [max(MIN_WIDTH, min(440, window.width() // 4))], Qt.Orientation.Horizontal)

    def _open_outlier(self, files) -> None:
        model, data, _unit = files
        self._data = DataSettings(data=str(model.parent / data.name))
        if self._has_model(str(model), "torch"):
            self.go(0)
        else:
            self._open(str(model), None)

    def _open(self, ref: str, backend: str | None) -> None:
        self._waiting_for_model = True
        self.panel.set_status(f"Opening {ref}…")
        self.window.open_model(ref, backend=backend)

    def _has_model(self, ref: str, backend: str | None) -> bool:
        model = self.state.model
        if model is None or model.ref != ref:
            return False
        return backend is None or getattr(model.handle, "backend", backend) == backend

    def _model_loaded(self, _loaded) -> None:
        if self._waiting_for_model:
            self._waiting_for_model = False
            self.go(0)

    def go(self, index: int) -> None:
        """Show step `index`: set its settings, select its layer, frame its control and plot."""
        if self.lesson is None or self._running or not 0 <= index < len(self.lesson.steps):
            return
        self.index = index
        step = self.lesson.steps[index]
        recipe = step_recipe(step, self.state.recipe if step.recipe is None else Recipe())
        runtime = replace(step_runtime({}, step, self.state.runtime), **self.runtime_override)
        self.state.edit(f"Lesson: {step.title}", recipe=recipe, runtime=runtime, data=self._data)
        if step.layer:
            self.window.model_view.select_layer(step.layer)
        self.panel.show_step(index, len(self.lesson.steps), step)
        self._frame(step)
        self._show_step_results(step)
        self.step_shown.emit(index)

    def _frame(self, step) -> None:
        control = self.window.findChild(QWidget, step.control) if step.control else None
        plot = self.window.findChild(QWidget, step.plot) if step.plot else None
        if plot is not None and self.panel.isAncestorOf(plot):
            plot = None  # the panel's own plot, shown under the text: no frame, and no scrolling away from it
        self.control_frame.show_on(control)
        self.plot_frame.show_on(plot if plot is not control else None)

    def _dock_visibility(self, visible: bool) -> None:
        if not visible:
            self.control_frame.show_on(None)
            self.plot_frame.show_on(None)

    # -- running -------------------------------------------------------------------------------------------
    def run_step(self) -> bool:
        """Run what the current step needs; False when nothing was started."""
        if self.lesson is None or self._running or self.runs.is_running():
            return False
        step = self.lesson.steps[self.index]
        if step.action == "transfer":
            return self._start_transfer()
        base = self.runs.job_spec()
        if base is None:
            self.panel.set_status("Open a model first.")
            return False
        jobs = step_jobs(step, base)
        if not jobs:
            return False
        key = f"{base.model}|{base.runtime.to_dict()}|{base.data}"
        if any(not job.recipe.is_identity for job in jobs) and key not in self._baselined:
            jobs.insert(0, replace(base, recipe=Recipe(), evaluate=True))
            self._baselined.add(key)
        self.results, self._queue, self._jobs_total = [], jobs, len(jobs)
        self._running = True
        self.panel.set_busy(True)
        self._next_job()
        return True

    def _next_job(self) -> None:
        spec = self._queue.pop(0)
        done = self._jobs_total - len(self._queue) - 1
        self.panel.set_progress(done / self._jobs_total, f"Job {done + 1} of {self._jobs_total}: "
                                                         f"{spec.recipe.describe()}, {_runtime_text(spec)}")
        self._current = spec
        if spec.recipe.recovery.active:
            self.panel.training.start_series(_series_name(spec, len(self.results)), spec.recipe.recovery.epochs,
                                             spec.train_data or TRAINING_DATA)
        if not self.runs.start_job(spec):
            self._finish_step("failed", "The job could not start (another run is in progress).")

    def _job_progress(self, stage: str, fraction: float, text: str, partial: dict) -> None:
        if not self._running or self._jobs_total == 0:
            return
        done = self._jobs_total - len(self._queue) - 1
        self.panel.set_progress((done + fraction) / self._jobs_total, f"Job {done + 1} of {self._jobs_total}: "
                                                                      f"{stage} {text}")
        if "loss" in partial and "epochs_done" in partial:
            name = _series_name(self._current, len(self.results))
            if partial.get("samples") and name in self.panel.training.series:
                self.panel.training.series[name].data_text = (
                    f"{self._current.train_data or TRAINING_DATA}, {partial['samples']} samples")
            self.panel.training.add_point(name, partial["epochs_done"], partial["loss"],
                                          partial.get("train_accuracy"))

    def _run_finished(self, result: RunResult) -> None:
        if not self._running or self.study.is_running():
            return
        self.results.append(result)
        if self._current.recipe.recovery.active:
            self.panel.training.finish_series(_series_name(self._current, len(self.results) - 1), result.status)
        if result.status == "cancelled":
            self._finish_step("cancelled", "Cancelled.")
        elif self._queue:
            self._next_job()
        else:
            self._finish_step("done" if all(r.status == "done" for r in self.results) else "failed",
                              outcome_text(result))

    def cancel(self) -> None:
        """Stop the step: no further jobs, the running job or training cancelled."""
        if not self._running:
            return
        self._queue.clear()
        self.panel.set_status("Cancelling…")
        if self.study.is_running():
            self.study.cancel()
        else:
            self.runs.cancel()

    def _finish_step(self, status: str, text: str) -> None:
        self._running = False
        self._queue.clear()
        self.panel.set_busy(False)
        self.panel.set_status(html.escape(text))
        if status == "done" and self.lesson is not None:
            step = self.lesson.steps[self.index]
            if self.lesson.name == "hardware":
                self.hardware_runs.extend(r for r in self.results if r.status == "done")
            self._show_step_results(step)
        self.step_finished.emit(self.index, status)

    # -- the transfer experiment ---------------------------------------------------------------------------
    def _start_transfer(self) -> bool:
        from accelstudio.core.studies.transfer import run_transfer

        threads = self.state.runtime.threads or os.cpu_count() or 1
        params = {"threads": threads, **self.transfer_params}
        if not self.study.start(run_transfer, params):
            return False
        self._running = True
        self.results = []
        self.panel.training.clear()
        self.panel.set_busy(True)
        self.panel.set_status("Training the source network on digits 0-4…")
        return True

    def _transfer_progress(self, fraction: float, text: str, partial: dict) -> None:
        phase = partial.get("phase")
        if phase is None:
            return
        name = {"source": "source (0-4, all samples)", "transfer": "transfer (5-9, few samples)",
                "scratch": "scratch (5-9, few samples)"}[phase]
        if name not in self.panel.training.series:
            self.panel.training.start_series(name, partial.get("epochs", 0), "bundled digits training split; "
                                             "accuracy on the test split")
        self.panel.training.add_point(name, partial["epoch"], partial["loss"], partial.get("accuracy"))
        if partial["epoch"] == partial.get("epochs"):
            self.panel.training.finish_series(name)
        self.panel.set_progress(fraction, text)

    def _transfer_finished(self, result: dict) -> None:
        self.transfer_result = result
        self._finish_step("done", "Training finished.")

    # -- what a finished step shows ------------------------------------------------------------------------
    def _show_step_results(self, step) -> None:
        if self.lesson is None:
            return
        if step.plot == "scalingPlot" and self.hardware_runs:
            self._show_scaling()
        elif step.action == "transfer" and self.transfer_result is not None:
            self.panel.show_results(transfer_html(self.transfer_result))
            self.panel.set_status(transfer_summary(self.transfer_result))
        elif step.action == "sweep" and step.variants and "recipe" in step.variants[0] and self.results:
            self.panel.show_results(sensitivity_html(self.results))
            self.panel.stack.setCurrentWidget(self.panel.results)
        elif step.action == "run" and self.results:
            runs = self.window.results.runs()
            last = self.results[-1]
            rep = rm.report(last, rm.find_baseline(last, runs))
            self.panel.show_results(html.escape(rep.verdict_line()))
            if step.plot != "trainingPlot":
                self.panel.stack.setCurrentWidget(self.panel.results)

    def _show_scaling(self) -> None:
        from accelstudio.core.studies.scaling import batch_throughput, fit_amdahl, stream_throughput, thread_scaling

        points = thread_scaling(self.hardware_runs)
        fit = fit_amdahl(points) if len(points) > 1 else None
        self.panel.scaling.show_scaling(points, fit, batch_throughput(self.hardware_runs),
                                        stream_throughput(self.hardware_runs))

    def shutdown(self) -> None:
        """Stop a running step and join the training thread (the window closes)."""
        self._queue.clear()
        self.study.shutdown()


def _write_outlier_model():
    from accelstudio.core.studies.lesson_models import write_outlier_cnn

    return write_outlier_cnn()


def _series_name(spec: JobSpec, i: int) -> str:
    return f"{spec.recipe.recovery.method} (job {i + 1})"


def _runtime_text(spec: JobSpec) -> str:
    rt = spec.runtime
    streams = f", {rt.streams} streams" if rt.streams > 1 else ""
    return f"{rt.runtime}, {rt.threads or 'all'} threads, batch {rt.batch}{streams}"
