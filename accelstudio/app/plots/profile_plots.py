"""Plots of a run's per-operator profile: time per layer or op type beside its baseline's, and the roofline."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont

from accelstudio.app.plots.themed_plot import BASELINE_COLOR, ThemedPlot
from accelstudio.app.plots.theme import scaled_pen

MAX_BARS = 30  # beyond this the rest is one "other" bar: labels stay readable
LABEL_CHARS = 30
LABEL_POINTS = 8
LABEL_AXIS_PX = 190  # room for LABEL_CHARS characters at LABEL_POINTS
CONVERSION_COLOR = QColor("#cc79a7")  # the conversions (Q/DQ/Cast) stand out from the arithmetic
BOUND_COLORS = {"compute": QColor("#0072b2"), "memory": QColor("#009e73"), "overhead": QColor("#d55e00")}
CONVERSION_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast", "aten::quantize_per_tensor",
                  "aten::quantize_per_tensor_dynamic", "aten::quantize_per_channel", "aten::dequantize",
                  "aten::_to_copy"}


@dataclass(frozen=True)
class Bar:
    """One bar pair: this run's time and the baseline's for the same layer or op type (None: not there)."""

    label: str
    time_ms: float
    baseline_ms: float | None
    conversion: bool
    detail: str


def profile_bars(profile: dict, baseline: dict | None = None, by: str = "layer", limit: int = MAX_BARS) -> list[Bar]:
    """The bars for `profile` (slowest first) grouped `by` "layer" or "op_type", with `baseline`'s time for the
    same name; past `limit` the remaining rows of both runs add up into one "other" bar."""
    key, rows_key = ("name", "layers") if by == "layer" else ("op_type", "op_types")
    rows = sorted(profile.get(rows_key, []), key=lambda r: -r["time_ms"])
    base = {r[key]: r["time_ms"] for r in (baseline or {}).get(rows_key, [])}
    shown, rest = rows[:limit], rows[limit:]
    bars = [Bar(r[key], r["time_ms"], base.get(r[key]) if baseline else None, r.get("op_type") in CONVERSION_OPS,
                _detail(r, by)) for r in shown]
    if rest:
        names = {r[key] for r in shown}
        base_rest = sum(t for n, t in base.items() if n not in names) if baseline else None
        bars.append(Bar(f"other ({len(rest)} rows)", sum(r["time_ms"] for r in rest), base_rest, False,
                        f"{len(rest)} faster rows together"))
    return bars


def _detail(row: dict, by: str) -> str:
    if by == "layer":
        return (f"{row['name']}: {row['op_type']}, {row['precision']}, {row['nodes']} kernel(s), "
                f"{row['time_ms']:.4f} ms ({row['share']:.1%}) on {row['provider']}")
    return f"{row['op_type']}: {row['count']} per call, {row['time_ms']:.4f} ms ({row['share']:.1%})"


def short_label(text: str, width: int = LABEL_CHARS) -> str:
    """The end of a long name (the part that tells layers apart), marked with an ellipsis."""
    return text if len(text) <= width else "…" + text[-(width - 1):]


class ProfileBars(ThemedPlot):
    """Horizontal bars of time per call, slowest on top; the baseline's bar under each of this run's."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("profileBars")
        self.bars: list[Bar] = []
        self.title = "Time per call"
        self.plotItem.setLabel("bottom", "ms per call")
        self.plotItem.setMouseEnabled(x=False, y=False)
        self.plotItem.invertY(True)
        axis = self.plotItem.getAxis("left")
        font = QFont()
        font.setPointSize(LABEL_POINTS)
        axis.setTickFont(font)
        axis.setWidth(LABEL_AXIS_PX)
        axis.setStyle(tickTextOffset=4, hideOverlappingLabels=False)
        self._ready_for_palette()
        self.redraw()

    def set_bars(self, bars: list[Bar], title: str) -> None:
        self.bars, self.title = list(bars), title
        self.redraw()

    def redraw(self) -> None:
        self.reset()
        axis = self.plotItem.getAxis("left")
        if not self.bars:
            axis.setTicks([[]])
            self.plotItem.setTitle("Time per call", color=self.colors.text)
            self.show_placeholder("select a profiled run")
            return
        self.plotItem.setTitle(self.title, color=self.colors.text)
        ys = np.arange(len(self.bars), dtype=float)
        has_base = any(b.baseline_ms is not None for b in self.bars)
        height = 0.4 if has_base else 0.7
        brushes = [pg.mkBrush(CONVERSION_COLOR if b.conversion else self.colors.accent) for b in self.bars]
        run = pg.BarGraphItem(x0=0, y=ys - (height / 2 if has_base else 0), width=[b.time_ms for b in self.bars],
                              height=height, brush=pg.mkBrush(self.colors.accent), brushes=brushes,
                              pen=scaled_pen(self.colors.text, width=0.3))
        self.plotItem.addItem(run)
        self.legend.addItem(run, "this run")
        if has_base:
            base = pg.BarGraphItem(x0=0, y=ys + height / 2, width=[b.baseline_ms or 0.0 for b in self.bars],
                                   height=height, brush=pg.mkBrush(BASELINE_COLOR),
                                   pen=scaled_pen(self.colors.text, width=0.3))
            self.plotItem.addItem(base)
            self.legend.addItem(base, "baseline")
        axis.setTicks([[(float(y), short_label(b.label)) for y, b in zip(ys, self.bars)]])
        top = max(max(b.time_ms, b.baseline_ms or 0.0) for b in self.bars)
        self.plotItem.setXRange(0, top * 1.05 or 1.0, padding=0)
        self.plotItem.setYRange(-0.6, len(self.bars) - 0.4, padding=0)
        self.setToolTip("\n".join(b.detail for b in self.bars[:12]))


class RooflinePlot(ThemedPlot):
    """Log-log roofline: memory roof (bandwidth x intensity) up to each compute roof; layers as points sized by
    their share of the time and coloured by bound class; the whole model as a star (the baseline's hollow)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("rooflinePlot")
        self.roofline: dict | None = None
        self.baseline: dict | None = None
        self.plotItem.setLabel("bottom", "arithmetic intensity (FLOP/byte)")
        self.plotItem.setLabel("left", "GFLOP/s")
        self.plotItem.setLogMode(x=True, y=True)
        self._ready_for_palette()
        self.redraw()

    def set_roofline(self, roofline: dict | None, baseline: dict | None = None) -> None:
        self.roofline, self.baseline = roofline, baseline
        self.redraw()

    def points(self) -> list[dict]:
        """The layer points drawn (those with counted FLOPs)."""
        return [p for p in (self.roofline or {}).get("layers", []) if p["flops"] > 0 and p["time_ms"] > 0]

    def redraw(self) -> None:
        self.reset()
        if not self.roofline:
            self.plotItem.setTitle("Roofline", color=self.colors.text)
            self.plotItem.setLogMode(x=False, y=False)
            self.show_placeholder("select a profiled run")
            return
        self.plotItem.setLogMode(x=True, y=True)
        c = self.roofline["ceilings"]
        busy = " (roofs measured on a busy machine: low)" if (c.get("machine") or {}).get("busy") else ""
        self.plotItem.setTitle(f"Roofline of {c['cpu']} at {c['threads']} threads{busy}", color=self.colors.text)
        points = self.points()
        models = [m for m in (self.roofline.get("model"), (self.baseline or {}).get("model")) if m]
        xs = [p["intensity"] for p in points + models if math.isfinite(p["intensity"])] or [1.0]
        lo, hi = min(xs) / 4, max(xs) * 4
        precisions = {p["precision"] for p in points} | {"fp32"}
        for precision, style in (("fp32", Qt.PenStyle.SolidLine), ("int8", Qt.PenStyle.DashLine),
                                 ("bf16", Qt.PenStyle.DotLine), ("fp16", Qt.PenStyle.DashDotLine)):
            peak = _peak(c, precision)
            if peak and precision in precisions:
                self._roof(peak, c["bandwidth_gbs"], lo, hi, style, precision)
        for bound, color in BOUND_COLORS.items():
            chosen = [p for p in points if p["bound"] == bound]
            if chosen:
                item = pg.PlotDataItem([p["intensity"] for p in chosen], [p["achieved_gflops"] for p in chosen],
                                       pen=None, symbol="o", symbolBrush=pg.mkBrush(color),
                                       symbolPen=scaled_pen(self.colors.text, width=0.5),
                                       symbolSize=[6 + 30 * math.sqrt(max(p["share"], 0.0)) for p in chosen],
                                       data=[point_text(p) for p in chosen])
                item.scatter.opts.update(hoverable=True, tip=lambda x, y, data: data)
                item.scatter.setAcceptHoverEvents(True)
                self.plotItem.addItem(item)
                self.legend.addItem(item, f"{bound}-bound")
        self._model_point(self.roofline.get("model"), "whole model", filled=True)
        self._model_point((self.baseline or {}).get("model"), "baseline model", filled=False)

    def _roof(self, peak: float, bandwidth: float, lo: float, hi: float, style, precision: str) -> None:
        ridge = peak / bandwidth
        xs = [min(lo, ridge / 2), ridge, max(hi, ridge * 2)]
        ys = [xs[0] * bandwidth, peak, peak]
        pen = scaled_pen(self.colors.text, width=1.5, style=style)
        self.plotItem.addItem(pg.PlotDataItem(xs, ys, pen=pen))
        label = pg.TextItem(f"{precision} {peak:.0f} GFLOP/s · {bandwidth:.1f} GB/s", color=self.colors.text,
                            anchor=(1, 1))
        label.setPos(math.log10(xs[2]), math.log10(peak))
        self.plotItem.addItem(label)

    def _model_point(self, model: dict | None, name: str, filled: bool) -> None:
        if not model or model["time_ms"] <= 0 or not math.isfinite(model["intensity"]):
            return
        brush = pg.mkBrush(self.colors.text if filled else BASELINE_COLOR) if filled else None
        item = pg.PlotDataItem([model["intensity"]], [model["achieved_gflops"]], pen=None, symbol="star",
                               symbolSize=18, symbolBrush=brush,
                               symbolPen=scaled_pen(BASELINE_COLOR if not filled else self.colors.text, width=1.5))
        self.plotItem.addItem(item)
        self.legend.addItem(item, f"{name} ({model['bound']}-bound)")


def point_text(p: dict) -> str:
    """A layer point's tooltip: what it is, where it sits, and what bounds it."""
    return (f"{p['name']} ({p['precision']}): {p['time_ms']:.4f} ms, {p['share']:.1%} of the time\n"
            f"{p['flops'] / 1e6:.3g} MFLOP over {p['bytes'] / 1e6:.3g} MB = {p['intensity']:.1f} FLOP/byte\n"
            f"{p['achieved_gflops']:.2f} GFLOP/s of {p['roof_gflops']:.1f} possible there: {p['bound']}-bound")


def _peak(ceilings: dict, precision: str) -> float | None:
    return {"fp32": ceilings.get("fp32_gflops"), "int8": ceilings.get("int8_gops"),
            "bf16": ceilings.get("bf16_gflops"), "fp16": ceilings.get("fp16_gflops")}.get(precision)
