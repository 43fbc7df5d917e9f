"""The search's trials: speed-up (or size ratio) against accuracy drop (or 1 - cosine), the Pareto front drawn
through the non-dominated trials, the best so far ringed; a click selects a trial."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Signal

from accelstudio.app.plots.theme import LIGHT, PlotColors, style_plot


class ParetoPlot(pg.PlotWidget):
    """set_trials(trials, front, best) with the trial dicts of a search state (core/studies/search.py);
    `trial_clicked(number)` when a point is clicked."""

    trial_clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("paretoPlot")
        self.plotItem.setMenuEnabled(False)
        self.plotItem.hideButtons()
        self.setLabel("bottom", "Speed-up vs unchanged (x)")
        self.setLabel("left", "Accuracy drop (pts)")
        for name in ("left", "bottom"):
            self.getAxis(name).enableAutoSIPrefix(False)
        self.scatter = pg.ScatterPlotItem(size=9, hoverable=True)
        self.failed = pg.ScatterPlotItem(size=7, symbol="x")
        self.front_line = pg.PlotDataItem()
        self.best_ring = pg.ScatterPlotItem(size=18, symbol="o")
        for item in (self.front_line, self.scatter, self.failed, self.best_ring):
            self.addItem(item)
        self.scatter.sigClicked.connect(self._clicked)
        self._colors = LIGHT
        self.points: list[tuple[int, float, float, bool]] = []  # number, x, y, feasible
        self.front: list[tuple[float, float]] = []
        self.apply_colors(LIGHT)

    def apply_colors(self, colors: PlotColors) -> None:
        self._colors = colors
        self.setBackground(colors.background)
        style_plot(self.plotItem, colors)
        self.front_line.setPen(pg.mkPen(colors.secondary, width=2))
        self.best_ring.setPen(pg.mkPen(colors.grid_line, width=2))
        self.best_ring.setBrush(pg.mkBrush(None))
        self.failed.setPen(pg.mkPen(colors.muted))

    def set_axis_names(self, objective: str, fidelity: str) -> None:
        self.setLabel("bottom", "Size ratio vs unchanged (x)" if objective == "size" else "Speed-up vs unchanged (x)")
        self.setLabel("left", "Accuracy drop (pts)" if fidelity == "accuracy" else "1 - cosine")

    def set_trials(self, trials: list[dict], front: list[int], best: int | None) -> None:
        """Draw the screening trials; `front` and `best` are trial numbers."""
        screen = [t for t in trials if t.get("phase") == "screen"]
        self.points = [(t["number"], t["value"], _y(t), bool(t.get("feasible"))) for t in screen
                       if _finite(t.get("value")) and _finite(_y(t))]
        c = self._colors
        self.scatter.setData([{"pos": (x, y), "data": n, "brush": pg.mkBrush(c.primary if ok else c.muted),
                               "pen": pg.mkPen(c.foreground if ok else c.muted)} for n, x, y, ok in self.points])
        by_number = {n: (x, y) for n, x, y, _ in self.points}
        self.front = sorted(by_number[n] for n in front if n in by_number)
        if self.front:
            self.front_line.setData([p[0] for p in self.front], [p[1] for p in self.front])
        else:
            self.front_line.setData([], [])
        self.best_ring.setData([{"pos": by_number[best]}] if best in by_number else [])

    def _clicked(self, _item, spots, *_args) -> None:
        if len(spots):
            self.trial_clicked.emit(int(spots[0].data()))


def _y(t: dict):
    if t.get("drop") is not None:
        return t["drop"]
    return 1.0 - t["cosine"] if t.get("cosine") is not None else None


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
