"""Live training curves: loss (top) and accuracy (bottom) against epochs, one coloured series per training,
with a line that names the data used and estimates the time left from the epoch times so far."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from accelstudio.app.plots.model_plots import swatch
from accelstudio.app.plots.theme import LIGHT, PlotColors, scaled_pen, style_plot

SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass
class Series:
    """One training: its points (epoch position, loss, accuracy or None), the epochs it will run and when it
    began (monotonic seconds), for the estimate."""

    name: str
    epochs: float
    started: float
    data_text: str = ""
    x: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    acc_x: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    status: str = "running"


def remaining_seconds(elapsed_s: float, done_epochs: float, total_epochs: float) -> float | None:
    """Time left at the mean time per epoch so far; None before any progress."""
    if done_epochs <= 0 or total_epochs <= 0:
        return None
    return max(0.0, elapsed_s / done_epochs * (total_epochs - done_epochs))


class TrainingPlot(QWidget):
    """Curves of the trainings of a lesson step (recovery runs, the transfer experiment)."""

    def __init__(self, parent=None, clock=time.monotonic):
        super().__init__(parent)
        self.setObjectName("trainingPlot")
        self._clock = clock
        self.info = QLabel("No training yet.", objectName="trainingInfo", wordWrap=True)
        self.graphics = pg.GraphicsLayoutWidget()
        self.loss_plot = self.graphics.addPlot(row=0, col=0)
        self.acc_plot = self.graphics.addPlot(row=1, col=0)
        self.acc_plot.setXLink(self.loss_plot)
        self.loss_plot.setLabel("left", "Loss")
        self.acc_plot.setLabel("left", "Accuracy", units="%")
        self.acc_plot.setLabel("bottom", "Epoch")
        for plot in (self.loss_plot, self.acc_plot):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getAxis("left").enableAutoSIPrefix(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.info)
        layout.addWidget(self.graphics, 1)
        self.series: dict[str, Series] = {}
        self._curves: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self._color_of: dict[str, str] = {}
        self._colors = LIGHT
        self.setMinimumHeight(170)

    # -- data ----------------------------------------------------------------------------------------------
    def clear(self) -> None:
        """Remove every series."""
        self.series.clear()
        self._curves.clear()
        self._color_of.clear()
        self.loss_plot.clear()
        self.acc_plot.clear()
        self.info.setText("No training yet.")

    def start_series(self, name: str, epochs: float, data_text: str = "") -> None:
        """Begin (or restart) the series `name`, which will run `epochs` epochs on the data `data_text` names."""
        color = self._color_of.setdefault(name, SERIES_COLORS[len(self._color_of) % len(SERIES_COLORS)])
        old = self._curves.pop(name, None)
        if old is not None:
            self.loss_plot.removeItem(old[0])
            self.acc_plot.removeItem(old[1])
        self.series[name] = Series(name, float(epochs), self._clock(), data_text)
        loss = self.loss_plot.plot([], [], pen=scaled_pen(color, width=2), name=name)
        acc = self.acc_plot.plot([], [], pen=scaled_pen(color, width=2), symbol="o", symbolSize=5,
                                 symbolBrush=color, name=name)
        self._curves[name] = (loss, acc)
        self._update_info()

    def add_point(self, name: str, epochs_done: float, loss: float | None, accuracy: float | None = None) -> None:
        """A progress point of series `name` (started on first use with unknown epochs)."""
        if name not in self.series:
            self.start_series(name, 0)
        s = self.series[name]
        if loss is not None:
            s.x.append(float(epochs_done))
            s.loss.append(float(loss))
        if accuracy is not None:
            s.acc_x.append(float(epochs_done))
            s.accuracy.append(float(accuracy) * 100.0)
        loss_curve, acc_curve = self._curves[name]
        loss_curve.setData(s.x, s.loss)
        acc_curve.setData(s.acc_x, s.accuracy)
        self._update_info()

    def finish_series(self, name: str, status: str = "done") -> None:
        """Mark a series finished ("done", "cancelled" or "failed")."""
        if name in self.series:
            self.series[name].status = status
            self._update_info()

    # -- text ----------------------------------------------------------------------------------------------
    def eta_seconds(self) -> float | None:
        """Time left of the series still running (the latest one), or None."""
        running = [s for s in self.series.values() if s.status == "running" and s.x]
        if not running:
            return None
        s = running[-1]
        return remaining_seconds(self._clock() - s.started, s.x[-1], s.epochs)

    def _update_info(self) -> None:
        parts = []
        for s in self.series.values():
            color = self._color_of[s.name]
            last = f"loss {s.loss[-1]:.3f}" if s.loss else "starting"
            if s.accuracy:
                last += f", accuracy {s.accuracy[-1]:.1f}%"
            state = "" if s.status == "running" else f" ({s.status})"
            parts.append(f"{swatch(color, s.name)}: {last}{state}")
        data = next((s.data_text for s in reversed(list(self.series.values())) if s.data_text), "")
        eta = self.eta_seconds()
        lines = [" · ".join(parts) or "No training yet."]
        if data:
            lines.append(f"Data: {data}")
        if eta is not None:
            lines.append(f"About {eta:.0f} s left (from the epoch times so far)")
        self.info.setText("<br>".join(lines))

    def apply_colors(self, colors: PlotColors) -> None:
        """Restyle for a light or dark background."""
        self._colors = colors
        self.graphics.setBackground(colors.background)
        for plot in (self.loss_plot, self.acc_plot):
            style_plot(plot, colors)
