"""Vertical axes whose tick labels never overlap: in a short plot (a small window, presenter mode's large fonts)
the major tick spacing grows to the next round step (1, 2, 5 x 10^n) until the labels are a text line apart, and
only major ticks carry labels (minor ones stay marks, and are dropped when the major spacing grew)."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QApplication

LINE_GAP = 1.15  # labels at least this many text heights apart


def next_round_step(step: float) -> float:
    """The round step after `step` in the 1, 2, 5 x 10^n sequence."""
    mantissa = step / 10 ** math.floor(math.log10(step))
    return step * (2.5 if 1.5 <= mantissa < 3 else 2.0)


def readable_spacing(levels: list, lo: float, hi: float, size: float, text_height: float) -> list:
    """pyqtgraph tick `levels` [(spacing, offset), ...] thinned so major labels are LINE_GAP text heights apart
    on an axis `size` pixels long showing lo..hi (unchanged when they already are)."""
    span = abs(hi - lo)
    if not levels or span == 0 or size <= 0:
        return levels
    major, offset = levels[0]
    if major <= 0 or size * major / span >= LINE_GAP * text_height:
        return levels
    while size * major / span < LINE_GAP * text_height:
        major = next_round_step(major)
    return [(major, 0.0)]


def keep_labels_apart(axis: pg.AxisItem) -> None:
    """Make a left or right axis thin its ticks to its tick font's height (idempotent)."""
    if axis.orientation not in ("left", "right") or getattr(axis, "_labels_apart", False):
        return
    base = type(axis).tickSpacing

    def spacing(lo: float, hi: float, size: float):
        font = axis.style.get("tickFont") or QApplication.font()
        return readable_spacing(base(axis, lo, hi, size), lo, hi, size, QFontMetricsF(font).height())

    axis.tickSpacing = spacing
    axis.setStyle(maxTextLevel=0)  # minor ticks stay as marks; only the (thinned) major ones carry labels
    axis._labels_apart = True
