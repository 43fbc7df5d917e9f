"""A sensitivity study as a heatmap: one row per layer (most sensitive at the top), one column per setting
(pruning amounts, quantized alone, kept in float alone), colour = points lost, with a colour bar. Layers that
were not screened are left blank. Clicking a cell reports its layer and setting."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal

from accelstudio.app.plots.theme import LIGHT, TITLE_SIZE, PlotColors, style_plot

ROW_LABEL_PX = 14  # at least this many pixels per labelled row, so names never overlap


def short_label(label: str) -> str:
    """A column heading short enough to sit under a narrow cell: "prune 25%" -> "25%", "sim-4 alone" -> "sim-4"."""
    if label.startswith("prune "):
        return label[len("prune "):]
    return label[: -len(" alone")] if label.endswith(" alone") else label


class SensitivityHeatmap(pg.PlotWidget):
    """Layers x settings; `cell_clicked(layer, setting label)` when a cell is clicked."""

    cell_clicked = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setObjectName("sensitivityHeatmap")
        self.plot = self.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(False, False)
        self.plot.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get("viridis"), interactive=False,
                                        label="points lost")
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.layers: list[str] = []
        self.labels: list[str] = []
        self.values = np.zeros((0, 0))
        self._colors = LIGHT
        self.setMinimumHeight(180)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.show_matrix([], [], np.zeros((0, 0)), "Run a sensitivity study to see which layers matter")

    def show_matrix(self, layers: list[str], labels: list[str], values: np.ndarray, title: str) -> None:
        """`values[i, j]`: points lost by layer i at setting j (NaN: not screened or not applicable)."""
        self.layers, self.labels = list(layers), list(labels)
        self.values = np.asarray(values, dtype=float).reshape(len(layers), len(labels))
        if self.values.size:
            finite = self.values[np.isfinite(self.values)]
            top = float(max(finite.max(), 1e-6)) if finite.size else 1.0
            self.image.setImage(self.values, levels=(0.0, top))
            self.image.setRect(0, 0, len(labels), len(layers))
            self.colorbar.setLevels((0.0, top))
            self.plot.setXRange(0, len(labels), padding=0)
            self.plot.setYRange(0, len(layers), padding=0)
        else:
            self.image.clear()
        self.plot.getAxis("bottom").setTicks([[(j + 0.5, short_label(label)) for j, label in enumerate(self.labels)]])
        self.plot.setLabel("bottom", "pruned alone (amount) · quantized alone · kept in float alone")
        self._label_rows()
        self.plot.setTitle(title, color=self._colors.foreground, size=TITLE_SIZE)

    def _label_rows(self) -> None:
        height = max(self.plot.vb.height(), 1.0) if self.plot.vb is not None else 200.0
        step = max(1, math.ceil(len(self.layers) * ROW_LABEL_PX / height)) if self.layers else 1
        ticks = [(i + 0.5, name) for i, name in enumerate(self.layers) if i % step == 0]
        self.plot.getAxis("left").setTicks([ticks])

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        if getattr(self, "layers", None):
            self._label_rows()

    def cell_center(self, row: int, col: int) -> QPointF:
        """The scene position of a cell's centre (for tests and keyboard use)."""
        return self.plot.vb.mapViewToScene(QPointF(col + 0.5, row + 0.5))

    def _clicked(self, event) -> None:
        if not self.layers or not self.plot.vb.sceneBoundingRect().contains(event.scenePos()):
            return
        point = self.plot.vb.mapSceneToView(event.scenePos())
        row, col = int(math.floor(point.y())), int(math.floor(point.x()))
        if 0 <= row < len(self.layers) and 0 <= col < len(self.labels):
            self.cell_clicked.emit(self.layers[row], self.labels[col])

    def apply_colors(self, colors: PlotColors) -> None:
        """Restyle for a light or dark background."""
        self._colors = colors
        self.setBackground(colors.background)
        style_plot(self.plot, colors)
