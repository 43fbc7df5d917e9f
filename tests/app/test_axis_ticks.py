"""Vertical axes thin their tick labels so none overlaps another, whatever the plot's height and font."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from PySide6.QtGui import QFont, QFontMetricsF

from accelstudio.app.plots.axis_ticks import keep_labels_apart, next_round_step, readable_spacing


def test_round_steps_follow_one_two_five():
    steps = [1.0]
    for _ in range(6):
        steps.append(next_round_step(steps[-1]))
    assert steps == pytest.approx([1, 2, 5, 10, 20, 50, 100])
    assert next_round_step(0.2) == pytest.approx(0.5)


def test_spacing_is_kept_when_labels_already_fit_and_grown_when_they_do_not():
    levels = [(20.0, 0.0), (5.0, 0.0)]
    assert readable_spacing(levels, 0, 100, 400, 16) == levels  # 80 px between labels: untouched
    thinned = readable_spacing(levels, 0, 100, 60, 16)  # 12 px between labels of 16 px: overlap
    assert len(thinned) == 1 and 60 * thinned[0][0] / 100 >= 1.15 * 16
    assert thinned[0][0] == 50.0  # the next round steps: 20 -> 50


@pytest.mark.parametrize("height", [30, 45, 80, 200])
def test_an_axis_in_a_short_plot_draws_labels_a_line_apart(qtbot, height):
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    axis = plot.getPlotItem().getAxis("left")
    font = QFont()
    font.setPointSizeF(18)  # presenter-sized
    axis.setStyle(tickFont=font)
    keep_labels_apart(axis)
    keep_labels_apart(axis)  # idempotent
    line = QFontMetricsF(font).height()
    assert axis.style["maxTextLevel"] == 0  # only major ticks are labelled
    ticks = sorted(axis.tickValues(0, 100, height)[0][1])
    gaps = [(b - a) * height / 100 for a, b in zip(ticks, ticks[1:])]
    assert all(g >= line for g in gaps), (height, ticks)
