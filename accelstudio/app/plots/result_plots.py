"""The results plots (pyqtgraph): latency-vs-accuracy trade-off (tradeoff_plot.py), latency distribution, model
sizes.

Every plot takes its colours from the widget palette and redraws when the palette changes, so light and dark
themes both stay readable. The plots only draw what they are given; the numbers come from run_metrics.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import QApplication

from accelstudio.app.plots.theme import plot_scale, scaled_pen
from accelstudio.app.plots.themed_plot import BASELINE_COLOR, PlotColors, ThemedPlot, palette_colors
from accelstudio.app.plots.tradeoff_plot import BROKEN_COLOR, TradeoffPlot, quality_axis_label

__all__ = ["BASELINE_COLOR", "BROKEN_COLOR", "LatencyHistogram", "PlotColors", "SizeBars", "ThemedPlot",
           "TradeoffPlot", "palette_colors", "quality_axis_label"]

LIVE_COLOR = QColor("#009e73")
LABELLED_HEIGHT = 230  # px: a shorter latency histogram names its percentiles in the title, not beside the lines


class LatencyHistogram(ThemedPlot):
    """Per-call latencies of one run as a histogram, with p50/p90/p99 lines; fed live while a run measures."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("latencyHistogram")
        self.latencies = np.zeros(0)
        self._detail = ""
        self._labelled: bool | None = None
        self.title = ""
        self.live = False
        self.curve: pg.PlotDataItem | None = None
        self.plotItem.setLabel("bottom", "Latency per call (ms)")
        self.plotItem.setLabel("left", "Calls")
        self.legend.hide()
        self._ready_for_palette()
        self.redraw()

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        labelled = self.height() >= LABELLED_HEIGHT * plot_scale().font
        if getattr(self, "_labelled", None) is not None and labelled != self._labelled and self.latencies.size:
            self.redraw()  # the percentiles move between the lines' labels and the title

    def set_latencies(self, latencies_ms, title: str = "", live: bool = False, detail: str = "") -> None:
        """Show a run's per-call latencies (live: a run still measuring). Keep `title` short (the plot may be
        narrow); `detail`, such as the run's recipe, goes to the tooltip."""
        values = np.asarray(latencies_ms if latencies_ms is not None else [], dtype=float)
        self.latencies = values[np.isfinite(values)] if values.size else values
        self.title, self.live = title, live
        self._detail = detail
        self.setToolTip(detail)
        self.redraw()

    def redraw(self) -> None:
        self.reset()
        n = self.latencies.size
        title = self.title or "Latency distribution"
        suffix = f" (measuring… {n})" if self.live else f" ({n} calls)" if n else ""
        self.set_title_options([title + suffix, title])
        if n == 0:
            self.curve = None
            self.show_placeholder("waiting for the first calls…" if self.live else "select a run in the table")
            return
        p50, p90, p99 = np.percentile(self.latencies, [50, 90, 99])
        top = float(self.latencies.max())
        shown = self.latencies
        if n >= 20 and top > 3 * p99:  # a few huge outliers would squash the histogram into one bar
            shown = self.latencies[self.latencies <= 1.5 * p99]
        counts, edges = np.histogram(shown, bins=int(np.clip(np.sqrt(shown.size) * 2, 10, 60)))
        color = QColor(LIVE_COLOR if self.live else self.colors.accent)
        fill = QColor(color)
        fill.setAlphaF(0.45)
        self.curve = pg.PlotDataItem(edges, counts, stepMode="center", fillLevel=0, brush=pg.mkBrush(fill),
                                     pen=scaled_pen(color, width=1.5), name="calls")
        self.plotItem.addItem(self.curve)
        labelled = self._labelled = self.height() >= LABELLED_HEIGHT * plot_scale().font  # else labels collide
        if not labelled:
            values = f"p50 {p50:.3g} · p90 {p90:.3g} · p99 {p99:.3g} ms"
            self.set_title_options([f"{title}{suffix}: {values}", f"{title}: {values}", values, title])
        self.setToolTip("\n".join(filter(None, [self._detail, f"p50 {p50:.3g} ms, p90 {p90:.3g} ms, "
                                                                f"p99 {p99:.3g} ms"])))
        for value, name, pos in ((p50, "p50", 0.92), (p90, "p90", 0.78), (p99, "p99", 0.64)):
            pen = scaled_pen(self.colors.text, style=Qt.PenStyle.DashLine)
            side = 1 if name == "p99" else 0  # the rightmost line's label goes left of it, inside the plot
            options = {"position": pos, "color": self.colors.text, "anchors": [(side, 0.5), (side, 0.5)]}
            line = pg.InfiniteLine(pos=float(value), angle=90, pen=pen, label=f"{name} {value:.3g} ms" if labelled
                                   else None, labelOpts=options if labelled else None)
            self.plotItem.addItem(line)
        if shown.size < n:
            note = pg.TextItem(f"{n - shown.size} calls over {1.5 * p99:.3g} ms not shown (max {top:.3g} ms)",
                               color=self.colors.text, anchor=(1, 0))
            note.setPos(float(edges[-1]), float(counts.max()))
            self.plotItem.addItem(note)
        self.plotItem.enableAutoRange()


class SizeBars(ThemedPlot):
    """Model size in MB: the baseline and the selected runs side by side."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("sizeBars")
        self.bars: list[tuple[str, float, bool]] = []
        self.plotItem.setLabel("left", "Size (MB)")
        self.plotItem.setMouseEnabled(x=False, y=False)
        self.legend.hide()
        self._ready_for_palette()
        self.redraw()

    def set_bars(self, bars: list[tuple[str, float, bool]]) -> None:
        """(label, MB, is_baseline) per bar, left to right."""
        self.bars = list(bars)
        self.redraw()

    def redraw(self) -> None:
        self.reset()
        axis = self.plotItem.getAxis("bottom")
        if not self.bars:
            axis.setTicks([[]])
            self.set_title_options(["Model size", "Size"])
            self.show_placeholder("select a run")
            return
        self.set_title_options(["Model size (MB)", "Size (MB)", "MB"])
        xs = np.arange(len(self.bars), dtype=float)
        heights = np.array([mb for _, mb, _ in self.bars])
        brushes = [pg.mkBrush(BASELINE_COLOR if base else self.colors.accent) for _, _, base in self.bars]
        self.plotItem.addItem(pg.BarGraphItem(x=xs, height=heights, width=0.6, brushes=brushes,
                                              pen=scaled_pen(self.colors.text, width=0.5)))
        for x, (_, mb, _) in zip(xs, self.bars):
            text = pg.TextItem(f"{mb:.3g}", color=self.colors.text, anchor=(0.5, 1))
            text.setPos(float(x), float(mb))
            self.plotItem.addItem(text)
        axis.setTicks([[(float(x), label) for x, (label, _, _) in zip(xs, self.bars)]])
        self.plotItem.setXRange(-0.6, len(self.bars) - 0.4, padding=0)
        self.plotItem.setYRange(0, float(heights.max()) / (1 - self._label_share()) or 1.0, padding=0)

    def _label_share(self) -> float:
        """The share of the plot's height the value labels above the bars need (more in a short plot)."""
        text = QFontMetrics(QApplication.font()).height() + 6
        height = self.plotItem.vb.height() if self.plotItem.vb.height() > 20 else 120.0
        return float(min(max(text / height, 1 / 6), 0.5))

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        if getattr(self, "bars", None):
            self.redraw()  # the labels' headroom depends on the height
