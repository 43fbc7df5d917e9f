"""Visible training for every run that recovers accuracy (fine-tune or distill), not only in lessons: a Training
dock with the live loss and training-accuracy curves, the data used (source and samples), the time left from the
epoch times so far, and Cancel. It opens when the first training progress of a run arrives; lesson steps show
their curves in the lesson panel instead."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QDockWidget, QPushButton, QVBoxLayout, QWidget

from accelstudio.app.plots.training_plot import TrainingPlot

EXAMPLE_TRAINING = "the example's training split (never its test split)"


class TrainingController(QObject):
    """Follows the worker's recovery progress (partials with loss, train_accuracy, epochs_done, epochs, method,
    samples) and draws it."""

    def __init__(self, window, busy_elsewhere=lambda: False):
        super().__init__(window)
        self.window = window
        self._busy_elsewhere = busy_elsewhere  # a lesson step draws its own curves
        self.plot = TrainingPlot()
        self.cancel_button = QPushButton("Cancel training", objectName="trainingCancel")
        self.cancel_button.clicked.connect(window.runs.cancel)
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.cancel_button)
        self.dock = QDockWidget("Training", window, objectName="trainingDock")
        self.dock.setWidget(panel)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        self._series: str | None = None
        self._runs = 0
        self._data = EXAMPLE_TRAINING
        window.runs.bridge.started.connect(self._started)
        window.runs.bridge.progress.connect(self._progress)
        window.runs.run_finished.connect(self._finished)
        theme = window.theme
        theme.changed.connect(lambda *_: self.plot.apply_colors(theme.colors()))
        self.plot.apply_colors(theme.colors())

    def _started(self) -> None:
        self._series = None
        data = self.window.state.data
        self._data = data.train_data or EXAMPLE_TRAINING

    def _progress(self, _stage: str, _fraction: float, _text: str, partial: dict) -> None:
        if "loss" not in partial or "epochs_done" not in partial or self._busy_elsewhere():
            return
        if self._series is None:
            self._runs += 1
            self._series = f"{partial.get('method', 'training')} ({self._runs})"
            self.plot.start_series(self._series, float(partial.get("epochs") or 0), self._data)
            self.cancel_button.setEnabled(True)
            if not self.dock.isVisible():
                self.dock.show()
        if partial.get("samples"):
            self.plot.series[self._series].data_text = f"{self._data}, {partial['samples']} samples"
        self.plot.add_point(self._series, partial["epochs_done"], partial["loss"], partial.get("train_accuracy"))

    def _finished(self, result) -> None:
        if self._series is not None:
            self.plot.finish_series(self._series, result.status)
            self._series = None
        self.cancel_button.setEnabled(False)
