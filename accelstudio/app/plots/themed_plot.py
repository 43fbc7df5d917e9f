"""The base of the results plots: a PlotWidget that takes its colours from the widget palette (and redraws when
it changes), draws at the current plot scale, fits its title to its width and says what would fill it when empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QPalette

from accelstudio.app.plots.model_plots import fit_title
from accelstudio.app.plots.theme import keep_in_view, scale_axes, title_size

BASELINE_COLOR = QColor("#e69f00")  # orange: readable on light and dark backgrounds
RESULT_TITLE_POINTS = 11  # pyqtgraph's default title size


@dataclass(frozen=True)
class PlotColors:
    """Colours picked from a palette."""

    background: QColor
    text: QColor
    accent: QColor
    muted: QColor


def palette_colors(palette: QPalette) -> PlotColors:
    """The plot colours for a palette (Base background, Text foreground, Highlight accent)."""
    text = palette.color(QPalette.ColorRole.Text)
    muted = QColor(text)
    muted.setAlphaF(0.35)
    return PlotColors(palette.color(QPalette.ColorRole.Base), text,
                      palette.color(QPalette.ColorRole.Highlight), muted)


class ThemedPlot(pg.PlotWidget):
    """A PlotWidget that follows the widget palette; subclasses implement `redraw()`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(170, 140)  # three side by side beside a lesson, and above the runs, fit 1280x720
        self.plotItem.showGrid(x=True, y=True, alpha=0.2)
        for name in ("left", "bottom"):
            self.plotItem.getAxis(name).enableAutoSIPrefix(False)  # show ms as ms, never "(x0.001)"
        # bottom right, for subclasses that show it (the slow and inaccurate corner is usually empty)
        self.legend = self.plotItem.addLegend(offset=(-10, -10))
        self.colors = palette_colors(self.palette())
        self.placeholder: pg.TextItem | None = None
        self._titles: list[str] = []
        keep_in_view(self)
        self._apply_palette()

    def set_title_options(self, options: list[str]) -> None:
        """Title text, longest first: the longest that fits the width is shown (again after each resize)."""
        self._titles = list(options)
        self._show_title()

    def _show_title(self) -> None:
        self.plotItem.setTitle(fit_title(self._titles, self.plotItem, self.width(), RESULT_TITLE_POINTS),
                               color=self.colors.text, size=title_size(RESULT_TITLE_POINTS))

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        # the title first: a title set after the view has sized its layout would resize it to its preferred size
        if getattr(self, "_titles", None) and self.plotItem is not None:  # Qt may resize before __init__ ends
            self._show_title()
        super().resizeEvent(ev)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt API)
        super().changeEvent(event)
        palette_events = (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)
        if getattr(self, "_ready", False) and event.type() in palette_events:
            self.colors = palette_colors(self.palette())
            self._apply_palette()
            self.redraw()

    def _apply_palette(self) -> None:
        c = self.colors
        self.setBackground(c.background)
        scale_axes(self.plotItem, c.text)
        for name in ("left", "bottom"):
            axis = self.plotItem.getAxis(name)
            axis.setTextPen(pg.mkPen(c.text))
            axis.label.setDefaultTextColor(c.text)
        self.legend.setLabelTextColor(c.text)
        fill = QColor(c.background)
        fill.setAlphaF(0.8)
        self.legend.setBrush(pg.mkBrush(fill))
        self.legend.setPen(pg.mkPen(c.muted))
        self.plotItem.titleLabel.item.setDefaultTextColor(c.text)

    def redraw(self) -> None:
        """Draw the current data again with the current colours."""

    def rescale(self) -> None:
        """Fonts and lines again at the current plot scale (zoom, presenter mode)."""
        self._apply_palette()
        self.redraw()

    def show_placeholder(self, text: str) -> None:
        """A grey line of text in the middle of an empty plot, saying what would fill it."""
        self.plotItem.setXRange(0, 1, padding=0)
        self.plotItem.setYRange(0, 1, padding=0)
        item = pg.TextItem(text, color=self.colors.muted, anchor=(0.5, 0.5))
        item.setPos(0.5, 0.5)
        self.plotItem.addItem(item)
        self.placeholder = item

    def _ready_for_palette(self) -> None:
        """Subclasses call this at the end of __init__: palette changes redraw from then on."""
        self._ready = True

    def reset(self) -> None:
        """Remove every item (the legend entries go with them)."""
        self.plotItem.clear()
        self.legend.clear()
        self.placeholder = None
