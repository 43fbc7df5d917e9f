"""The trade-off plot: p50 latency against accuracy (or fidelity) for every run, with intervals, the baseline,
the Pareto front and run-id labels placed so that none overlaps another or a point."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor

from accelstudio.app.plots import run_metrics as rm
from accelstudio.app.plots.label_layout import Box, place_labels
from accelstudio.app.plots.theme import plot_scale, scaled_pen, scaled_points
from accelstudio.app.plots.themed_plot import BASELINE_COLOR, ThemedPlot
from accelstudio.core.job import RunResult

BROKEN_COLOR = "#d62728"  # the same red as the results panel's broken line
ID_LABEL_POINT_SIZE = 8
MARKER_PIXELS = 16  # the space a run's point takes, which no label may cover
X_HEADROOM = 1.12  # room right of the slowest point for its id label
MIN_Y_SPAN = 2.0  # accuracy points


def quality_axis_label(kinds: set[str]) -> str:
    """The trade-off plot's y label for the quality headlines shown (accuracy, fidelity agreement or cosine)."""
    if kinds <= {"accuracy"}:
        return "Accuracy (%)"
    if kinds == {"agreement"}:
        return "Agreement with original (%)"
    if kinds == {"cosine"}:
        return "Cosine to original (x100)"
    return "Accuracy / fidelity (%)"


class TradeoffPlot(ThemedPlot):
    """p50 latency (x, from 0) against accuracy (y) with 95% error bars, the baseline as a star, the Pareto front
    as a step line, each point labelled with its run id (as in the runs table). Runs of the open model are
    coloured, others grey (or hidden). Clicking a point emits run_clicked."""

    run_clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("tradeoffPlot")
        self._runs: list[RunResult] = []
        self._by_id: dict[int, RunResult] = {}
        self._current: Callable[[RunResult], bool] | None = None
        self._show_others = True
        self._selected: set[int] = set()
        self.front_ids: list[int] = []
        self.broken_ids: list[int] = []
        self.scatter: pg.ScatterPlotItem | None = None
        self.baseline_item: pg.ScatterPlotItem | None = None
        self.id_labels: dict[int, pg.TextItem] = {}
        self._label_points: dict[int, tuple[float, float]] = {}
        self._label_order: list[int] = []
        self.plotItem.vb.sigResized.connect(self.layout_labels)
        self.plotItem.vb.sigRangeChanged.connect(self.layout_labels)
        self.legend.hide()  # the title line is the legend
        self.plotItem.setLimits(xMin=0)  # a latency is never negative: no panning or padding below 0
        self.plotItem.setLabel("bottom", "Latency p50 (ms, lower is better)")
        self.plotItem.setLabel("left", "Accuracy (%)")
        self._ready_for_palette()
        self.redraw()

    def set_runs(self, runs: list[RunResult], current_model: Callable[[RunResult], bool] | None = None,
                 show_others: bool = True, selected: set[int] | None = None) -> None:
        """Show these runs; `current_model(run)` says whether a run is of the open model (None: all are);
        with `show_others` False, runs of other models are hidden instead of greyed."""
        self._runs = [r for r in runs if rm.plottable(r) and r.run_id is not None]
        self._by_id = {r.run_id: r for r in self._runs}
        self._current, self._show_others = current_model, show_others
        self._selected = set(selected or ())
        self.redraw()

    def set_selected(self, run_ids: set[int]) -> None:
        """Ring the selected runs' points."""
        self._selected = set(run_ids)
        self.redraw()

    def is_current(self, run: RunResult) -> bool:
        """Whether a run belongs to the model the window has open."""
        return self._current is None or bool(self._current(run))

    def visible_runs(self) -> list[RunResult]:
        """The runs drawn as points."""
        return [r for r in self._runs if self._show_others or self.is_current(r)]

    def redraw(self) -> None:
        self.reset()
        c = self.colors
        runs = self.visible_runs()
        current = [r for r in runs if self.is_current(r)]
        self.plotItem.setLabel("left", quality_axis_label({rm.quality(r).kind for r in runs}))
        if not runs:
            self.scatter = self._points([], c.accent, "o", 11, "runs")
            self.baseline_item = self._points([], BASELINE_COLOR, "star", 18, "baseline (unchanged model)")
            self.front_ids, self.id_labels, self.broken_ids = [], {}, []
            self.set_title_options([""])
            self.show_placeholder("no finished runs yet: press Run (F5)")
            return
        self._draw_error_bars(runs)
        others = [r for r in runs if not self.is_current(r)]
        self._show_key(bool(others))
        if others:
            self.plotItem.addItem(self._points(others, c.muted, "o", 9, "other models"))
        plain = [r for r in current if not rm.is_baseline(r)]
        self.scatter = self._points(plain, c.accent, "o", 11, "runs")
        if plain:
            self.plotItem.addItem(self.scatter)
        self._draw_baselines([r for r in current if rm.is_baseline(r)])
        self._draw_front([r for r in current if rm.report(r).broken is None])  # a broken run is no trade-off
        self._draw_broken([r for r in runs if rm.report(r).broken is not None])
        self._draw_selection(runs)
        self._fit_range(runs)
        self._draw_id_labels(runs)

    def _show_key(self, others: bool) -> None:
        """The legend as a title line (a legend box would cover points in a short plot)."""
        c = self.colors
        runs, star = _swatch(c.accent, "●", "runs"), _swatch(BASELINE_COLOR, "★", "baseline")
        front, grey = _swatch(c.text, "╌", "Pareto front"), _swatch(c.muted, "●", "other models")
        long = [runs, _swatch(BASELINE_COLOR, "★", "baseline (unchanged model)"), front] + ([grey] if others else [])
        short = [runs, star, front] + ([grey] if others else [])
        self.set_title_options(["&nbsp;&nbsp;".join(long), "&nbsp;&nbsp;".join(short),
                                "&nbsp;&nbsp;".join([runs, star, _swatch(c.text, "╌", "best")])])

    def _fit_range(self, runs: list[RunResult]) -> None:
        """x from 0 to past the slowest run (labels need room); y around the points and their intervals, never
        narrower than MIN_Y_SPAN points (equal accuracies would otherwise give a zero-height range)."""
        xs = [rm.metric(r, "p50_ms") for r in runs]
        right = max((x for x in xs if x is not None and np.isfinite(x)), default=0.0)
        self.plotItem.setXRange(0.0, right * X_HEADROOM if right > 0 else 1.0, padding=0)
        q = [rm.quality(r) for r in runs]
        values = [v for p in q for v in (p.lo, p.value, p.hi) if v is not None and np.isfinite(v)]
        if not values:
            return
        low, high = min(values), max(values)
        if high - low < MIN_Y_SPAN:
            middle = (high + low) / 2
            low, high = middle - MIN_Y_SPAN / 2, middle + MIN_Y_SPAN / 2
        pad = (high - low) * 0.08
        self.plotItem.setYRange(low - pad, high + pad, padding=0)

    def _draw_id_labels(self, runs: list[RunResult]) -> None:
        """A small run id beside each point, so a point can be found in the table; placed so that no two labels
        overlap each other or a point (a label with no room is hidden: the point's tooltip names the run)."""
        self.id_labels = {}
        font = self.font()
        font.setPointSizeF(scaled_points(ID_LABEL_POINT_SIZE))
        for r in runs:
            color = self.colors.text if self.is_current(r) else self.colors.muted
            label = pg.TextItem(f"{r.run_id}", color=color, anchor=(0, 0))
            label.setFont(font)
            label.setPos(rm.metric(r, "p50_ms"), rm.quality(r).value)
            self.plotItem.addItem(label)
            self.id_labels[r.run_id] = label
        self._label_points = {r.run_id: (rm.metric(r, "p50_ms"), rm.quality(r).value) for r in runs}
        first = [r.run_id for r in runs if r.run_id in self._selected] + [r.run_id for r in runs if rm.is_baseline(r)]
        first += [i for i in self.front_ids]
        rest = [r.run_id for r in runs if self.is_current(r)] + [r.run_id for r in runs]
        self._label_order = list(dict.fromkeys(first + rest))
        self.layout_labels()

    def layout_labels(self, *_args) -> None:
        """Place the id labels for the current view range and size (again after zooming, panning, resizing)."""
        labels = getattr(self, "id_labels", {})
        if not labels or getattr(self, "_laying_out", False):
            return
        self._laying_out = True
        try:
            vb = self.plotItem.vb
            ids = list(labels)
            scene = [vb.mapViewToScene(QPointF(*self._label_points[i])) for i in ids]
            points = [(p.x(), p.y()) for p in scene]
            sizes = [(labels[i].boundingRect().width(), labels[i].boundingRect().height()) for i in ids]
            rect = vb.sceneBoundingRect()
            bounds = Box(rect.x(), rect.y(), rect.width(), rect.height())
            rank = {run_id: k for k, run_id in enumerate(self._label_order)}
            order = sorted(range(len(ids)), key=lambda k: rank.get(ids[k], len(rank)))
            boxes = place_labels(points, sizes, marker=MARKER_PIXELS * plot_scale().font, bounds=bounds, order=order)
            for run_id, box in zip(ids, boxes):
                label = labels[run_id]
                label.setVisible(box is not None)
                if box is not None:
                    label.setPos(vb.mapSceneToView(QPointF(box.x, box.y)))
        finally:
            self._laying_out = False

    def _points(self, runs: list[RunResult], color: QColor, symbol: str, size: int, name: str) -> pg.ScatterPlotItem:
        spots = [{"pos": (rm.metric(r, "p50_ms"), rm.quality(r).value), "data": r.run_id} for r in runs]
        size = int(round(size * plot_scale().font))
        item = pg.ScatterPlotItem(spots=spots, symbol=symbol, size=size, pen=scaled_pen(self.colors.text, width=0.5),
                                  brush=pg.mkBrush(color), hoverable=True, tip=self.tooltip, name=name,
                                  hoverSize=size + 4)
        item.sigClicked.connect(self.on_points_clicked)
        return item

    def _draw_error_bars(self, runs: list[RunResult]) -> None:
        if not runs:
            return
        q = [rm.quality(r) for r in runs]
        x = np.array([rm.metric(r, "p50_ms") for r in runs])
        y = np.array([p.value for p in q])
        bars = pg.ErrorBarItem(x=x, y=y, top=np.array([p.hi - p.value for p in q]),
                               bottom=np.array([p.value - p.lo for p in q]), beam=0.0,
                               pen=scaled_pen(self.colors.muted, width=1.5))
        self.plotItem.addItem(bars)

    def _draw_baselines(self, runs: list[RunResult]) -> None:
        self.baseline_item = self._points(runs, BASELINE_COLOR, "star", 18, "baseline (unchanged model)")
        if runs:
            self.plotItem.addItem(self.baseline_item)

    def _draw_front(self, runs: list[RunResult]) -> None:
        points = [(rm.metric(r, "p50_ms"), rm.quality(r).value) for r in runs]
        front = rm.pareto_front(points)
        self.front_ids = [runs[i].run_id for i in front]
        if len(front) < 2:
            return
        xs, ys = [], []
        for k, i in enumerate(front):
            x, y = points[i]
            if k:
                xs.append(x)
                ys.append(ys[-1])
            xs.append(x)
            ys.append(y)
        pen = scaled_pen(self.colors.text, width=1.5, style=Qt.PenStyle.DashLine)
        self.plotItem.addItem(pg.PlotDataItem(xs, ys, pen=pen, name="Pareto front (best trade-offs)"))

    def _draw_broken(self, runs: list[RunResult]) -> None:
        """A red cross over each broken run (fidelity collapsed); they never join the Pareto front."""
        self.broken_ids = [r.run_id for r in runs]
        if not runs:
            return
        spots = [{"pos": (rm.metric(r, "p50_ms"), rm.quality(r).value)} for r in runs]
        red = QColor(BROKEN_COLOR)
        self.plotItem.addItem(pg.ScatterPlotItem(spots=spots, symbol="x", size=int(16 * plot_scale().font),
                                                 brush=pg.mkBrush(red),
                                                 pen=scaled_pen(red, width=1)))

    def _draw_selection(self, runs: list[RunResult]) -> None:
        chosen = [r for r in runs if r.run_id in self._selected]
        if not chosen:
            return
        spots = [{"pos": (rm.metric(r, "p50_ms"), rm.quality(r).value)} for r in chosen]
        ring = pg.ScatterPlotItem(spots=spots, symbol="o", size=int(22 * plot_scale().font), brush=pg.mkBrush(None),
                                  pen=scaled_pen(self.colors.text, width=2))  # a ring needs no legend entry
        self.plotItem.addItem(ring)

    def tooltip(self, x: float, y: float, data: object) -> str:
        """Hover text: recipe, model, runtime, p50 and accuracy with its interval."""
        run = self._by_id.get(data)  # type: ignore[arg-type]
        if run is None:
            return ""
        q = rm.quality(run)
        lines = [f"run {run.run_id}: {rm.recipe_label(run)}", f"{rm.model_name(run)} · {rm.runtime_label(run)}",
                 f"p50 {x:.3g} ms"]
        if q.kind == "cosine":
            lines.append(f"fidelity: cosine {y / 100:.4f}")
        else:
            what = "accuracy" if q.kind == "accuracy" else "fidelity: top-1 agreement"
            lines.append(f"{what} {y:.1f}% (95% CI {q.lo:.1f}..{q.hi:.1f}, {q.interval})")
        delta, _ = rm.delta_text(run)
        if delta:
            lines.append(f"Δ {delta}")
        broken = rm.report(run).broken
        if broken is not None:
            lines.append(broken.text())
        return "\n".join(lines)

    def on_points_clicked(self, item: object, points: list, event: object = None) -> None:
        """Emit run_clicked for the first clicked point that carries a run id."""
        for point in points:
            data = point.data()
            if isinstance(data, (int, np.integer)):
                self.run_clicked.emit(int(data))
                return


def _swatch(color: QColor, mark: str, text: str) -> str:
    return f"<span style='color:{QColor(color).name()}'>{mark}</span>&nbsp;{text}"
