"""Readable plots: labels that never overlap, an accuracy axis zoomed to the data, many-layer models grouped."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from accelstudio.app.plots.label_layout import Box, place_labels
from accelstudio.app.plots.result_plots import TradeoffPlot
from accelstudio.core.job import JobSpec, RunResult, RuntimeSettings
from accelstudio.core.recipe import PruneSpec, Recipe


def _no_overlaps(boxes, markers, bounds) -> None:
    placed = [b for b in boxes if b is not None]
    for a, b in itertools.combinations(placed, 2):
        assert not a.overlaps(b), (a, b)
    for box in placed:
        assert box.inside(bounds)
        assert not any(box.overlaps(m) for m in markers)


@pytest.mark.parametrize("seed", range(6))
def test_placed_labels_never_overlap_each_other_or_a_point(seed):
    rng = random.Random(seed)
    n = rng.choice([5, 20, 60])
    bounds = Box(0, 0, 400, 250)
    points = [(rng.uniform(0, 400), rng.uniform(0, 250)) for _ in range(n)]
    if seed % 2:  # a tight cluster, as runs of nearly the same recipe give
        points = [(200 + rng.uniform(-15, 15), 120 + rng.uniform(-10, 10)) for _ in range(n)]
    sizes = [(rng.uniform(8, 30), 14.0) for _ in range(n)]
    boxes = place_labels(points, sizes, marker=10, bounds=bounds, order=list(reversed(range(n))))
    markers = [Box(x - 5, y - 5, 10, 10) for x, y in points]
    _no_overlaps(boxes, markers, bounds)


def test_far_apart_points_all_get_labels_and_a_crowd_is_thinned():
    points = [(50.0 * i + 20, 100.0) for i in range(6)]
    boxes = place_labels(points, [(16, 12)] * 6, marker=10, bounds=Box(0, 0, 400, 200))
    assert all(b is not None for b in boxes)
    assert boxes[0].x > points[0][0]  # right of its point, the preferred spot
    crowd = [(100.0 + i * 0.5, 100.0) for i in range(40)]
    placed = place_labels(crowd, [(16, 12)] * 40, marker=10, bounds=Box(0, 0, 400, 200))
    assert 0 < sum(b is not None for b in placed) < 40


def _run(run_id: int, p50: float, acc: float) -> RunResult:
    spec = JobSpec(model="example:digits-cnn", recipe=Recipe(prune=PruneSpec(amount=0.1 + run_id / 100)),
                   runtime=RuntimeSettings(threads=2))
    metrics = {"p50_ms": p50, "p90_ms": p50 * 1.2, "accuracy": acc, "n_eval": 2000, "size_bytes": 1000}
    return RunResult(status="done", spec=spec.to_dict(), metrics=metrics, run_id=run_id,
                     latencies_ms=list(np.linspace(p50 * 0.9, p50 * 1.4, 30)),
                     model_identity={"path": "example:digits-cnn", "sha256": "c" * 64, "name": "digits-cnn"})


@pytest.fixture
def tradeoff(qtbot):
    plot = TradeoffPlot()
    qtbot.addWidget(plot)
    plot.resize(520, 300)
    plot.show()
    qtbot.waitExposed(plot)
    return plot


def test_accuracy_axis_zooms_to_the_data(tradeoff):
    tradeoff.set_runs([_run(1, 0.10, 0.947), _run(2, 0.08, 0.975)])
    low, high = tradeoff.plotItem.viewRange()[1]
    assert 80 < low < 94.7 and 97.5 < high < 100.5  # not 0-100: the two points sit far apart
    vb = tradeoff.plotItem.vb
    from PySide6.QtCore import QPointF

    y1 = vb.mapViewToScene(QPointF(0.1, 94.7)).y()
    y2 = vb.mapViewToScene(QPointF(0.08, 97.5)).y()
    assert abs(y1 - y2) > 0.3 * vb.sceneBoundingRect().height()


def test_trade_off_labels_never_overlap_even_for_a_crowd_of_runs(tradeoff, qtbot):
    runs = [_run(i, 0.1 + 0.0005 * i, 0.95 + 0.0002 * (i % 7)) for i in range(1, 41)]
    tradeoff.set_runs(runs)
    QApplication.processEvents()
    visible = [label for label in tradeoff.id_labels.values() if label.isVisible()]
    assert 0 < len(visible) < len(runs)  # thinned: the rest are in the points' tooltips
    rects = [label.sceneBoundingRect() for label in visible]
    for a, b in itertools.combinations(rects, 2):
        assert not a.intersects(b), (a, b)
    area = tradeoff.plotItem.vb.sceneBoundingRect()
    assert all(area.contains(r) for r in rects)
    tradeoff.resize(900, 420)  # more room: more labels, still apart
    qtbot.waitUntil(lambda: tradeoff.width() == 900)
    QApplication.processEvents()
    again = [label.sceneBoundingRect() for label in tradeoff.id_labels.values() if label.isVisible()]
    assert len(again) >= len(visible)
    for a, b in itertools.combinations(again, 2):
        assert not a.intersects(b)
    assert "run 7" in tradeoff.tooltip(0.1, 95.0, 7)  # a hidden label's run is named on hover


def test_a_many_layer_model_starts_grouped_by_block_and_switches_to_op_types(make_window, qtbot):
    from tests.core.test_layer_groups import RESNET50

    window = make_window(load=False)
    view = window.model_view
    with qtbot.waitSignal(window.model_loaded, timeout=120_000):
        window.open_model(str(RESNET50))
    qtbot.waitUntil(lambda: not view.plots_pending(), timeout=60_000)
    n = len(window.state.model.summary.layers)
    assert view.grouping() == "block"
    names = view.size_bars.names
    assert 1 < len(names) <= 24 and len(view.sparsity_bars.names) == len(names)
    assert sum(view.size_bars.sizes) == sum(la.bytes for la in window.state.model.summary.layers)
    view.set_grouping("type")
    assert any(name.startswith("Conv ×") for name in view.size_bars.names)
    view.size_bars.layer_clicked.emit(view.size_bars.names[0])  # a group's bar selects its first layer
    assert view.current_layer() == window.state.model.summary.layers[0].name
    view.set_grouping("layer")
    assert len(view.size_bars.names) == n
