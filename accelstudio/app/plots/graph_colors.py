"""Colours of the Graph tab's overlays and the legend that explains them.

Categorical overlays use fixed colours for the labels that carry meaning (precisions, diff outcomes) so the
same label always looks the same, and a qualitative palette for op types (most common first). Numeric
overlays map onto viridis (log scale for parameter counts, which span orders of magnitude); nodes without a
value are drawn light grey.
"""

from __future__ import annotations

import html
import math
from collections import Counter

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

from accelstudio.core.graphs.overlays import (KEPT_FLOAT, NO_WEIGHTS, UNCHANGED, Overlay, dominant_label,
                                              group_stats)

NONE_COLOR = QColor("#e4e4e4")
FIXED = {
    "fp32": "#8fa8c8", "float32": "#8fa8c8", "int8": "#3f9e4d", "int4": "#1b7f79", "fp16": "#e69a28",
    "bf16": "#c7701a", KEPT_FLOAT: "#d9534f", NO_WEIGHTS: "#e4e4e4", UNCHANGED: "#e4e4e4",
    "quantized": "#2f7ed8", "pruned": "#f0a02a", "quantized + pruned": "#8e44ad", "removed": "#d62728",
    "added": "#2ca02c",
}
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#86bcb6", "#d37295", "#a0cbe8", "#ffbe7d", "#8cd17d", "#f1ce63")
OTHER_COLOR = QColor("#c9c9c9")
_VIRIDIS = pg.colormap.get("viridis")


class OverlayColors:
    """Colours for one overlay: `node(i)` for node i, `value(x)` for a number, `label(text)` for a category."""

    def __init__(self, overlay: Overlay):
        self.overlay = overlay
        self.log = overlay.kind == "params"
        self.labels: dict[str, QColor] = {}
        self.lo = self.hi = 0.0
        if overlay.categories is not None:
            self._fit_categories(overlay.categories)
        elif overlay.numeric is not None:
            finite = overlay.numeric[np.isfinite(overlay.numeric)]
            if self.log:
                finite = finite[finite > 0]
            if len(finite):
                self.lo, self.hi = float(finite.min()), float(finite.max())

    def _fit_categories(self, categories: tuple[str, ...]) -> None:
        free = iter(PALETTE)
        for label, _count in Counter(categories).most_common():
            if label in FIXED:
                self.labels[label] = QColor(FIXED[label])
            else:
                color = next(free, None)
                self.labels[label] = QColor(color) if color else OTHER_COLOR

    def label(self, text: str) -> QColor:
        return self.labels.get(text, NONE_COLOR)

    def value(self, x: float, stretch: tuple[float, float] | None = None) -> QColor:
        """Colour of number `x` on this overlay's scale (or on `stretch`, a (lo, hi) of its own)."""
        lo, hi = stretch or (self.lo, self.hi)
        if x is None or not math.isfinite(x) or (self.log and x <= 0):
            return NONE_COLOR
        if self.log:
            x, lo, hi = math.log10(x), math.log10(max(lo, 1e-12)), math.log10(max(hi, 1e-12))
        t = 0.5 if hi <= lo else min(max((x - lo) / (hi - lo), 0.0), 1.0)
        return _VIRIDIS.map(t, mode="qcolor")

    def node(self, i: int) -> QColor:
        if self.overlay.categories is not None:
            return self.label(self.overlay.categories[i])
        return self.value(float(self.overlay.numeric[i]))


def format_value(overlay: Overlay, x: float) -> str:
    """A number as the legend and tooltips show it."""
    if x is None or not math.isfinite(x):
        return "–"
    if overlay.unit == "%":
        return f"{x:.1%}"
    if overlay.unit == "params":
        return f"{x:,.0f}" if x < 1e4 else f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"
    return f"{x:.4g}"


def legend_html(colors: OverlayColors, max_rows: int = 14) -> str:
    """The legend: title, where the values came from, and swatches (categories) or the scale (numbers)."""
    overlay = colors.overlay
    rows = [f"<b>{html.escape(overlay.title)}</b>"]
    if overlay.note:
        rows.append(f"<span style='color:#777'>{html.escape(overlay.note)}</span>")
    if overlay.categories is not None:
        counts = Counter(overlay.categories)
        for label, count in counts.most_common(max_rows):
            rows.append(_swatch(colors.label(label)) + f" {html.escape(label or '–')} <i>({count})</i>")
        if len(counts) > max_rows:
            rows.append(_swatch(OTHER_COLOR) + f" {len(counts) - max_rows} more")
    elif not overlay.empty:
        lo, hi = colors.lo, colors.hi
        steps = [lo + (hi - lo) * k / 4 for k in range(5)] if not colors.log else \
            [10 ** (math.log10(max(lo, 1e-12)) + (math.log10(max(hi, 1e-12)) - math.log10(max(lo, 1e-12))) * k / 4)
             for k in range(5)]
        for x in steps:
            rows.append(_swatch(colors.value(x)) + f" {format_value(overlay, x)}")
        rows.append(_swatch(NONE_COLOR) + " no value")
        rows.append(f"<span style='color:#777'>groups: coloured by {overlay.group_stat}; "
                    "hover for min / max / sum</span>")
    return "<br>".join(rows)


def _swatch(color: QColor) -> str:
    return f"<span style='background-color:{color.name()}; color:{color.name()}'>&nbsp;&nbsp;&nbsp;&nbsp;</span>"


def item_color(colors: OverlayColors, item: int, n_nodes: int, stats) -> QColor:
    """Fill of a visible item: a node's own value; a group's dominant label or its min / max / sum (GroupStats)."""
    if item < n_nodes:
        return colors.node(item)
    if colors.overlay.categories is not None:
        return colors.label(dominant_label(stats))
    return colors.value(stats.value(colors.overlay.group_stat))


def item_tooltip(tree, overlay: Overlay | None, item: int, stats=None) -> str:
    """Name, op type / size, layer and the overlay's value of a visible item (min / max / sum for a group)."""
    n = len(tree.graph)
    if item < n:
        graph = tree.graph
        lines = [f"<b>{html.escape(graph.names[item])}</b>", f"op: {graph.op_types[item]}"]
        if graph.layers[item]:
            lines.append(f"layer: {html.escape(graph.layers[item])}")
        if overlay is not None:
            value = overlay.categories[item] if overlay.categories is not None else format_value(
                overlay, float(overlay.numeric[item]))
            lines.append(f"{overlay.title}: {html.escape(str(value) or '–')}")
        return "<br>".join(lines)
    group = tree.groups[item - n]
    lines = [f"<b>{html.escape(group.path.lstrip('/'))}</b>", f"{group.size():,} nodes · double-click to expand"]
    if overlay is not None:
        stats = stats or group_stats(overlay, tree, item - n)
        if overlay.categories is not None:
            lines += [f"{html.escape(label or '–')}: {count}" for label, count in stats.counts[:8]]
        else:
            lines.append(f"{overlay.title}: min {format_value(overlay, stats.minimum)}, max "
                         f"{format_value(overlay, stats.maximum)}, sum {format_value(overlay, stats.total)} "
                         f"({stats.count} with a value)")
    return "<br>".join(lines)
