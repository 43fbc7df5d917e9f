"""Scaling on this machine: speed-up against threads with 95% intervals, Amdahl's law fitted over them (with the
ideal S = n line), and throughput bars for each batch size and for concurrent streams."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from accelstudio.app.plots.model_plots import swatch
from accelstudio.app.plots.theme import LIGHT, PlotColors, scaled_pen, style_plot


class ScalingPlot(QWidget):
    """Top: measured speed-ups and the Amdahl fit; bottom: samples per second per batch size and streams."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("scalingPlot")
        self.info = QLabel("Run the step to measure this machine.", objectName="scalingInfo", wordWrap=True)
        self.graphics = pg.GraphicsLayoutWidget()
        self.speed_plot = self.graphics.addPlot(row=0, col=0)
        self.rate_plot = self.graphics.addPlot(row=1, col=0)  # stacked: the lesson dock is narrow
        self.speed_plot.setLabel("bottom", "Threads")
        self.speed_plot.setLabel("left", "Speed-up vs 1 thread")
        self.rate_plot.setLabel("left", "Samples / s")
        for plot in (self.speed_plot, self.rate_plot):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getAxis("left").enableAutoSIPrefix(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.info)
        layout.addWidget(self.graphics, 1)
        self._colors = LIGHT
        self.points: list[dict] = []
        self.fit = None
        self.bars: list[tuple[str, float]] = []
        self.setMinimumHeight(300)

    def show_scaling(self, points: list[dict], fit, batches: list[dict], streams: list[dict]) -> None:
        """Draw thread points ({"threads", "speedup", "lo", "hi"}), the AmdahlFit (or None), and throughput of
        each batch ({"batch", "throughput"}) and stream count ({"streams", "throughput"})."""
        self.points, self.fit = list(points), fit
        c = self._colors
        self.speed_plot.clear()
        if points:
            n = np.array([p["threads"] for p in points], dtype=float)
            s = np.array([p["speedup"] for p in points])
            top = np.array([p["hi"] for p in points]) - s
            bottom = s - np.array([p["lo"] for p in points])
            self.speed_plot.addItem(pg.ErrorBarItem(x=n, y=s, top=top, bottom=bottom, beam=0.15,
                                                    pen=pg.mkPen(c.foreground)))
            self.speed_plot.plot(n, s, pen=None, symbol="o", symbolSize=9, symbolBrush=c.primary)
            grid = np.linspace(1, max(n.max(), 2) * 2, 60)
            self.speed_plot.plot(grid, grid, pen=pg.mkPen(c.muted, style=pg.QtCore.Qt.PenStyle.DashLine))
            if fit is not None:
                self.speed_plot.plot(grid, fit.speedup(grid), pen=scaled_pen(c.secondary, width=2))
                band = pg.FillBetweenItem(pg.PlotDataItem(grid, fit.speedup(grid, fit.p_lo)),
                                          pg.PlotDataItem(grid, fit.speedup(grid, fit.p_hi)),
                                          brush=pg.mkBrush(pg.mkColor(c.secondary).name() + "40"))
                self.speed_plot.addItem(band)
        self.bars = [(f"batch {b['batch']}", b["throughput"]) for b in batches]
        self.bars += [(f"{r['streams']} streams", r["throughput"]) for r in streams]
        self.rate_plot.clear()
        if self.bars:
            x = np.arange(len(self.bars))
            self.rate_plot.addItem(pg.BarGraphItem(x=x, height=[v for _, v in self.bars], width=0.6,
                                                   brush=c.primary))
            self.rate_plot.getAxis("bottom").setTicks([[(i, label) for i, (label, _) in enumerate(self.bars)]])
        self._update_info()

    def _update_info(self) -> None:
        c = self._colors
        lines = []
        if self.points:
            measured = ", ".join(f"{p['threads']} threads {p['speedup']:.2f}x [{p['lo']:.2f}, {p['hi']:.2f}]"
                                 for p in self.points if p["threads"] > 1)
            lines.append(f"{swatch(c.primary, 'measured', '●')} {measured}" if measured else "")
        if self.fit is not None:
            lines.append(f"{swatch(c.secondary, self.fit.text(), '—')} · {swatch(c.muted, 'ideal S = n', '- -')}")
        if self.bars:
            lines.append("Throughput: " + ", ".join(f"{label} {value:,.0f}/s" for label, value in self.bars))
        self.info.setText("<br>".join(line for line in lines if line) or "Run the step to measure this machine.")

    def apply_colors(self, colors: PlotColors) -> None:
        """Restyle for a light or dark background."""
        self._colors = colors
        self.graphics.setBackground(colors.background)
        for plot in (self.speed_plot, self.rate_plot):
            style_plot(plot, colors)
