"""The model view's plots: per-layer size bars (coloured by sparsity), per-layer sparsity bars (current vs
predicted) and the weight histogram of one layer with the quantization grid drawn over it and, when the recipe
prunes, the weights it removes drawn apart from those it keeps.

Bar plots write every layer name under its bar at 45 degrees (middle-elided when long, thinned when bars are
narrow) and show the full name and values in a tooltip on hover; clicking a bar selects that layer.
"""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QCursor, QFont, QFontMetrics
from PySide6.QtWidgets import QToolTip

from accelstudio.app.plots.theme import (LIGHT, PlotColors, keep_in_view, scaled_pen, scaled_points, style_plot,
                                         title_size)
from accelstudio.core.units import format_bytes

SPARSITY_CMAP = "viridis"
DENSE_GRID = 32  # more quantization levels than this are drawn as short ticks
AXIS_SHARE = 0.42  # rotated layer names take at most this share of a bar plot's height
TITLE_POINT_SIZE = 10
TITLE_MARGIN = 26  # px of a plot widget's width beside the left axis that no title may use (layout margins)


def fit_title(options: list[str], plot: pg.PlotItem, width: float, point_size: int = TITLE_POINT_SIZE) -> str:
    """The first of `options` (HTML, longest first) that fits over `plot` in a widget `width` pixels wide (the
    title sits over the data area, right of the left axis), else the last one as plain text, elided to fit."""
    font = QFont()
    font.setPointSizeF(scaled_points(point_size))
    metrics = QFontMetrics(font)
    room = width - plot.getAxis("left").width() - TITLE_MARGIN
    for text in options:
        plain = re.sub(r"<[^>]+>", "", text).replace("&nbsp;", " ")
        if metrics.horizontalAdvance(plain) <= room:
            return text
    # none fits: the last, elided, so the title never widens the plot past its widget (which would clip it)
    plain = re.sub(r"<[^>]+>", "", options[-1]).replace("&nbsp;", " ") if options else ""
    return html.escape(metrics.elidedText(plain, Qt.TextElideMode.ElideRight, max(int(room), 0)))


def human_bytes(n: float) -> str:
    """Sizes in decimal units, the one rule of accelstudio.core.units.format_bytes."""
    return format_bytes(n)


class LayerAxis(pg.AxisItem):
    """A bottom axis that labels bar i (at x = i) with layer name i: level when every name fits under its
    bar, else at 45 degrees (names elided in the middle past MAX_TEXT pixels, thinned when bars are narrow).
    The axis is only as tall as its labels need."""

    MAX_TEXT = 110  # px

    def __init__(self):
        self._names: list[str] = []
        self._rotate = False
        self._room = 10_000  # px of height the labels may take (set from the plot's height)
        self._max_text = self.MAX_TEXT
        super().__init__("bottom")
        self.setHeight(30)
        self.setTicks([[], []])

    def set_names(self, names: list[str]) -> None:
        """One name per bar."""
        self._names = list(names)
        self.setTicks([[(i, "") for i in range(len(self._names))], []])
        self._fit()

    def set_room(self, pixels: int) -> None:
        """At most this many pixels of height for the labels (longer names are elided further)."""
        if pixels != self._room:
            self._room = pixels
            self._fit()

    def visible_names(self) -> list[str]:
        """The names as given (for tests and tooltips)."""
        return list(self._names)

    def resizeEvent(self, ev=None):  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        self._fit()

    def boundingRect(self):  # noqa: N802 - Qt's name
        """Rotated names of the first bars reach left, under the (empty) corner below the y axis."""
        rect = super().boundingRect()
        return rect.adjusted(-self._max_text * 0.75, 0, 0, 0) if self._rotate else rect

    def _metrics(self) -> QFontMetrics:
        return QFontMetrics(self.style["tickFont"] or self.font())

    def refit(self) -> None:
        """Lay the names out again (after a font change)."""
        self._fit()

    def _fit(self) -> None:
        metrics = self._metrics()
        longest = max((metrics.horizontalAdvance(n) for n in self._names), default=0)
        spacing = self.width() / max(len(self._names), 1)
        self._rotate = longest > spacing * 0.9
        fixed = metrics.height() + 12
        self._max_text = int(max(min(self.MAX_TEXT, (self._room - fixed) * math.sqrt(2)), 2 * metrics.height()))
        if self._rotate:
            height = int(min(longest, self._max_text) / math.sqrt(2) + fixed)
        else:
            height = metrics.height() + 12
        if abs(self.height() - height) > 1:
            self.setHeight(height)
        self.prepareGeometryChange()
        self.picture = None
        self.update()

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):  # noqa: N802 - pyqtgraph's name
        super().drawPicture(p, axisSpec, tickSpecs, [])
        view = self.linkedView()
        if view is None or not self._names:
            return
        font = self.style["tickFont"] or p.font()
        p.setFont(font)
        p.setPen(self.textPen())
        metrics = QFontMetrics(font)
        xs = [self.mapFromScene(view.mapViewToScene(QPointF(i, 0))).x() for i in range(len(self._names))]
        spacing = abs(xs[1] - xs[0]) if len(xs) > 1 else 1e9
        room = metrics.height() * (1 / math.sqrt(2) if self._rotate else 3) + 1
        step = max(1, math.ceil(room / max(spacing, 1e-6)))
        left, right = self.boundingRect().left(), self.boundingRect().right()
        for i in range(0, len(self._names), step):
            if not left - 2 <= xs[i] <= right + 2:
                continue
            if self._rotate:
                text = metrics.elidedText(self._names[i], Qt.TextElideMode.ElideMiddle, self._max_text)
                p.save()
                p.translate(xs[i] + metrics.ascent() / 3, 8)
                p.rotate(-45)
                p.drawText(QPointF(-metrics.horizontalAdvance(text), metrics.ascent() / 2), text)
                p.restore()
            else:
                text = metrics.elidedText(self._names[i], Qt.TextElideMode.ElideMiddle, int(spacing * step))
                p.drawText(QPointF(xs[i] - metrics.horizontalAdvance(text) / 2, 6 + metrics.ascent()), text)


class _BarPlot(pg.GraphicsLayoutWidget):
    """A bar chart over layers with hover tooltips and click-to-select."""

    layer_clicked = Signal(str)

    def __init__(self, title: str, y_label: str, y_units: str | None = None, parent=None):
        super().__init__(parent=parent)
        self.axis = LayerAxis()
        self.plot = pg.PlotItem(axisItems={"bottom": self.axis})
        self.plot.setTitle(title)
        self.plot.setLabel("left", y_label, units=y_units)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.addItem(self.plot, 0, 0)
        self.names: list[str] = []
        self._titles: list[str] = [title]
        self.scene().sigMouseMoved.connect(self._hover)
        self.scene().sigMouseClicked.connect(self._click)
        self.setMinimumHeight(150)
        keep_in_view(self)

    def set_titles(self, options: list[str]) -> None:
        """Title HTML, longest first: the longest that fits the plot's width is shown."""
        self._titles = list(options)
        self.plot.setTitle(fit_title(self._titles, self.plot, self.width()), size=title_size())

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        # the title first: a title set after the view has sized its layout would resize it to its preferred size
        if getattr(self, "_titles", None):  # Qt may resize before __init__ ends
            self.axis.set_room(int(self.height() * AXIS_SHARE))
            self.plot.setTitle(fit_title(self._titles, self.plot, self.width()), size=title_size())
        super().resizeEvent(ev)

    def _set_names(self, names: list[str]) -> None:
        self.names = list(names)
        self.axis.set_names(self.names)
        n = max(len(self.names), 1)
        self.plot.setXRange(-0.6, n - 0.4, padding=0)
        self.plot.setLimits(xMin=-1, xMax=n)

    def _index_at(self, scene_pos) -> int | None:
        if not self.names or not self.plot.sceneBoundingRect().contains(scene_pos):
            return None
        x = self.plot.vb.mapSceneToView(scene_pos).x()
        i = int(round(x))
        return i if 0 <= i < len(self.names) and abs(x - i) <= 0.45 else None

    def _hover(self, scene_pos) -> None:
        i = self._index_at(scene_pos)
        if i is None:
            QToolTip.hideText()
            return
        QToolTip.showText(QCursor.pos(), self.tooltip(i), self)

    def _click(self, event) -> None:
        i = self._index_at(event.scenePos())
        if i is not None:
            self.layer_clicked.emit(self.names[i])

    def tooltip(self, i: int) -> str:
        return self.names[i]

    def apply_colors(self, colors: PlotColors) -> None:
        """Restyle for a light or dark background."""
        self.setBackground(colors.background)
        style_plot(self.plot, colors)


class SizeBars(_BarPlot):
    """Bytes per layer; each bar coloured by the layer's sparsity after the recipe (colour bar on the right)."""

    def __init__(self, parent=None):
        super().__init__("Layer size", "Size", "B", parent)
        self.cmap = pg.colormap.get(SPARSITY_CMAP)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.75)
        self.plot.addItem(self.bars)
        self.sizes: list[int] = []
        self.sparsity: list[float] = []
        self._low = 0.0  # where the colour scale starts: raised on dark backgrounds, where viridis' purple vanishes
        self._outline = pg.mkPen(None)

    def _scale(self, values) -> np.ndarray:
        return self._low + (1.0 - self._low) * np.clip(np.asarray(values, dtype=float), 0, 1)

    def set_data(self, names: list[str], sizes: list[int], sparsity: list[float]) -> None:
        """`sparsity` as fractions 0-1."""
        self._set_names(names)
        self.sizes, self.sparsity = list(sizes), list(sparsity)
        brushes = self.cmap.map(self._scale(sparsity), mode="qcolor") if names else []
        self.bars.setOpts(x=np.arange(len(names)), height=np.asarray(sizes, dtype=float), width=0.75,
                          brushes=list(brushes), pen=self._outline, pens=None)  # pens=[] breaks pyqtgraph
        self.plot.setYRange(0, max(sizes or [1]) * 1.08, padding=0)

    def tooltip(self, i: int) -> str:
        return f"{self.names[i]}\n{human_bytes(self.sizes[i])} · sparsity {self.sparsity[i]:.1%}"

    def colour_key(self) -> str:
        """The colour scale as title HTML: sparsity after the recipe, 0% to 100% in five steps."""
        steps = self.cmap.map(self._scale(np.linspace(0, 1, 5)), mode="qcolor")
        marks = "".join(f"<span style='color:{c.name()}'>■</span>" for c in steps)
        return f"sparsity 0% {marks} 100%"

    def apply_colors(self, colors: PlotColors) -> None:
        dark = pg.mkColor(colors.background).lightness() < 128
        self._low = 0.3 if dark else 0.0
        self._outline = scaled_pen(colors.muted, width=1) if dark else pg.mkPen(None)
        if self.names:
            self.set_data(self.names, self.sizes, self.sparsity)
        key = self.colour_key()
        self.set_titles([f"Size per layer · colour: {key}", f"Size · colour: {key}", f"Size · {key}", "Size"])
        super().apply_colors(colors)


def swatch(color: str, text: str, mark: str = "■") -> str:
    """A coloured mark and a label for use in a plot title (a legend that never covers data)."""
    return f"<span style='color:{color}'>{mark}</span> {text}"


class SparsityBars(_BarPlot):
    """Current sparsity next to the sparsity the prune setting would reach, per layer."""

    def __init__(self, parent=None):
        super().__init__("Sparsity per layer", "Sparsity %", None, parent)
        self.current_bars = pg.BarGraphItem(x=[], height=[], width=0.38)
        self.predicted_bars = pg.BarGraphItem(x=[], height=[], width=0.38)
        self.plot.addItem(self.current_bars)
        self.plot.addItem(self.predicted_bars)
        self.plot.setYRange(0, 105, padding=0)
        self.current: list[float] = []
        self.predicted: list[float] = []

    def set_data(self, names: list[str], current: list[float], predicted: list[float] | None) -> None:
        """Fractions 0-1; `predicted` None shows only the current values."""
        self._set_names(names)
        self.current = list(current)
        self.predicted = list(predicted) if predicted is not None else list(current)
        x = np.arange(len(names), dtype=float)
        self.current_bars.setOpts(x=x - 0.2, height=np.asarray(self.current) * 100)
        self.predicted_bars.setOpts(x=x + 0.2, height=np.asarray(self.predicted) * 100)

    def tooltip(self, i: int) -> str:
        return f"{self.names[i]}\nnow {self.current[i]:.1%} · predicted {self.predicted[i]:.1%}"

    def apply_colors(self, colors: PlotColors) -> None:
        now, predicted = swatch(colors.primary, "now"), swatch(colors.secondary, "predicted")
        self.set_titles([f"Sparsity per layer: {now} {predicted}", f"Sparsity: {now} {predicted}",
                         f"{now} {swatch(colors.secondary, 'pred.')}"])
        super().apply_colors(colors)
        self.current_bars.setOpts(brush=colors.primary, pen=pg.mkPen(None))
        self.predicted_bars.setOpts(brush=colors.secondary, pen=pg.mkPen(None))


class WeightHistogram(pg.PlotWidget):
    """Distribution of one layer's weights, with the quantization levels of the current setting.

    A few levels (<= 32) are drawn as full-height lines; a dense grid (int8: 255 levels) as a rug of short
    ticks below the baseline, so the histogram stays readable.
    """

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.plot = self.getPlotItem()
        self.plot.setLabel("bottom", "Weight value")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setLabel("left", "Count")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.curve = pg.PlotDataItem(stepMode="center", fillLevel=0)
        self.grid = pg.PlotDataItem(connect="pairs")
        self.removed_curve = pg.PlotDataItem(stepMode="center", fillLevel=0)
        self.plot.addItem(self.curve)
        self.plot.addItem(self.removed_curve)
        self.plot.addItem(self.grid)
        self.split: tuple[int, int] | None = None  # (kept, removed) weights when the recipe prunes this layer
        self.layer: str | None = None
        self.grid_levels = np.zeros(0)
        self.grid_label = ""
        self._colors = LIGHT
        self._titles: list[str] = []
        self.setMinimumHeight(150)
        keep_in_view(self)
        self.clear_histogram("Weights: select a layer")

    def set_histogram(self, layer: str, counts: np.ndarray, edges: np.ndarray,
                      levels: np.ndarray | None, grid_label: str = "", removed: np.ndarray | None = None) -> None:
        """Draw `counts` over `edges`; `levels` (or None) as vertical lines. With `removed` (counts over the same
        edges of the weights pruning removes), `counts` are the kept weights and the removed ones are drawn in
        the warning colour."""
        self.layer = layer
        self.curve.setData(np.asarray(edges, dtype=float), np.asarray(counts, dtype=float))
        if removed is not None:
            self.removed_curve.setData(np.asarray(edges, dtype=float), np.asarray(removed, dtype=float))
            self.split = (int(np.sum(counts)), int(np.sum(removed)))
            counts = np.maximum(np.asarray(counts), np.asarray(removed))
        else:
            self.removed_curve.setData([], [])
            self.split = None
        self.removed_curve.setVisible(removed is not None)
        top = float(max(np.max(counts) if len(counts) else 1, 1)) * 1.05
        self.grid_levels = np.unique(np.asarray(levels, dtype=float).ravel()) if levels is not None else np.zeros(0)
        self.grid_label = grid_label or (f"{self.grid_levels.size} levels" if self.grid_levels.size else "")
        n = self.grid_levels.size
        if n:
            low, high = (0.0, top) if n <= DENSE_GRID else (-0.1 * top, 0.0)
            self.grid.setData(np.repeat(self.grid_levels, 2), np.tile([low, high], n))
        else:
            self.grid.setData([], [])
        self.grid.setVisible(bool(n))
        self.plot.enableAutoRange()
        self._recolor()

    def clear_histogram(self, message: str) -> None:
        """Show nothing but a title saying why."""
        self.layer = None
        self.split = None
        self.curve.setData([], [])
        self.removed_curve.setData([], [])
        self.grid.setData([], [])
        self.grid_levels = np.zeros(0)
        self.grid_label = ""
        self._set_titles([message])

    def _set_titles(self, options: list[str]) -> None:
        """Title HTML, longest first; the longest that fits the width is shown (again after each resize)."""
        self._titles = list(options)
        self.plot.setTitle(fit_title(options, self.plot, self.width()), color=self._colors.foreground,
                           size=title_size())

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        # the title first: a title set after the view has sized its layout would resize it to its preferred size
        if getattr(self, "_titles", None):  # Qt may resize before __init__ ends
            self.plot.setTitle(fit_title(self._titles, self.plot, self.width()), size=title_size())
        super().resizeEvent(ev)

    def apply_colors(self, colors: PlotColors) -> None:
        """Restyle for a light or dark background."""
        self._colors = colors
        self.setBackground(colors.background)
        style_plot(self.plot, colors)
        self._recolor()

    def _recolor(self) -> None:
        c = self._colors
        self.curve.setPen(scaled_pen(c.primary, width=1.5))
        self.curve.setBrush(pg.mkBrush(pg.mkColor(c.primary).lighter(110).name() + "80"))
        self.grid.setPen(pg.mkPen(c.grid_line + ("ff" if self.grid_levels.size <= DENSE_GRID else "c0"), width=1))
        if self.layer is None:
            return
        self.removed_curve.setPen(scaled_pen(c.secondary, width=1.5))
        self.removed_curve.setBrush(pg.mkBrush(pg.mkColor(c.secondary).name() + "a0"))
        grid = swatch(c.grid_line, self.grid_label, "|") if self.grid_levels.size else "no integer grid"
        short = swatch(c.grid_line, self.grid_label.split(",")[0], "|") if self.grid_levels.size else "no grid"
        if self.split is not None:
            kept, removed = self.split
            split = (f"{swatch(c.primary, f'kept {kept:,}')} {swatch(c.secondary, f'removed {removed:,}')}")
            self._set_titles([f"Weights of {self.layer} · {split} · {grid}", f"{self.layer} · {split} · {short}",
                              f"{self.layer} · {split}", self.layer])
            return
        self._set_titles([f"Weights of {self.layer} · {grid}", f"{self.layer} · {grid}", f"{self.layer} · {short}",
                          self.layer])
