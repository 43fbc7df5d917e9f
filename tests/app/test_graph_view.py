"""The Graph tab in the window: drawn for the open model, selection in step with the layer table both ways,
context-menu edits of the recipe (undoable) and a re-run, overlays with their legend, expand / collapse /
search / export on a grouped graph."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog

from accelstudio.app.views.graph_view import GraphView
from accelstudio.core.graphs import overlays as ov
from accelstudio.core.model.graph_extract import synthetic_transformer_graph
from accelstudio.core.model.graph_groups import GroupTree

TIMEOUT_MS = 60_000


def _drawn(view: GraphView) -> bool:
    return view.drawing is not None and not view.is_busy()


def _action(menu, text: str):
    return next(a for a in menu.actions() if a.text() == text)


@pytest.fixture
def graph_window(window, qtbot):
    window.central_tabs.setCurrentWidget(window.graph_view)
    qtbot.waitUntil(lambda: _drawn(window.graph_view), timeout=TIMEOUT_MS)
    return window


def test_clicking_a_node_selects_its_layer_and_the_table_marks_the_graph(graph_window, qtbot):
    view, table = graph_window.graph_view, graph_window.model_view
    graph = view.tree.graph
    assert {"conv1", "conv2", "fc1", "fc2"} <= set(graph.layers)
    fc1 = graph.layers.index("fc1")
    box = view.boxes[fc1]
    view.canvas.centerOn(box)
    pos = view.canvas.mapFromScene(box.scenePos())
    qtbot.mouseClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert table.current_layer() == "fc1"
    assert box.selected_mark
    table.select_layer("conv2")
    conv2 = graph.layers.index("conv2")
    assert view.selected_node == conv2 and view.boxes[conv2].selected_mark and not box.selected_mark


def test_context_menu_edits_the_recipe_undoably_and_reruns(graph_window, qtbot, monkeypatch):
    window, view, state = graph_window, graph_window.graph_view, graph_window.state
    fc1 = view.tree.graph.layers.index("fc1")
    menu = view.item_menu(fc1, None)
    _action(menu, "Keep in float (exclude from quantization)").trigger()
    assert state.recipe.quantize.exclude == ("fc1",)
    _action(menu, "Exclude from pruning").trigger()
    assert state.recipe.prune.exclude == ("fc1",)
    monkeypatch.setattr(QInputDialog, "getDouble", staticmethod(lambda *a, **k: (0.3, True)))
    _action(view.item_menu(fc1, None), "Set pruning amount…").trigger()
    assert state.recipe.prune.overrides == {"fc1": 0.3} and state.recipe.prune.exclude == ()
    window.undo_action.trigger()
    assert state.recipe.prune.overrides == {} and state.recipe.prune.exclude == ("fc1",)
    window.undo_action.trigger()
    window.undo_action.trigger()
    assert state.recipe.quantize.exclude == () and state.recipe.prune.exclude == ()
    _action(view.item_menu(fc1, None), "Keep in float (exclude from quantization)").trigger()
    state.edit("fast", runtime=replace(state.runtime, threads=1, warmup=2, repeats=20, time_budget_s=0.5))
    with qtbot.waitSignal(window.runs.run_finished, timeout=120_000) as finished:
        _action(view.item_menu(fc1, None), "Re-run with these settings (F5)").trigger()
    result = finished.args[0]
    assert result.status == "done" and result.spec["recipe"]["quantize"]["exclude"] == ["fc1"]
    qtbot.waitUntil(lambda: not window.runs.is_running(), timeout=TIMEOUT_MS)


def test_overlay_menu_colours_by_recipe_and_says_what_is_missing(graph_window, qtbot):
    window, view, state = graph_window, graph_window.graph_view, graph_window.state
    recipe = state.recipe
    state.edit("int8", recipe=replace(recipe, quantize=replace(recipe.quantize, mode="dynamic-int8",
                                                              exclude=("fc2",))))
    view.choose_overlay("precision")
    qtbot.waitUntil(lambda: view.overlay is not None and view.overlay.kind == "precision", timeout=TIMEOUT_MS)
    graph = view.tree.graph
    assert view.overlay.categories[graph.layers.index("fc1")] == "int8"
    assert view.overlay.categories[graph.layers.index("fc2")] == ov.KEPT_FLOAT
    legend = view.legend.text()
    assert "Precision after recipe" in legend and "int8" in legend and ov.KEPT_FLOAT in legend
    fc1 = view.boxes[graph.layers.index("fc1")]
    assert fc1.fill == view.colors.label("int8")
    view.choose_overlay("time")
    qtbot.waitUntil(lambda: view.overlay.kind == "time", timeout=TIMEOUT_MS)
    assert "select a run first" in view.legend.text() or "no profile in this run" in view.legend.text() \
        or "profile" in view.overlay.note
    view.choose_overlay("diff")
    qtbot.waitUntil(lambda: view.overlay.kind == "diff", timeout=TIMEOUT_MS)
    assert "select two runs" in view.legend.text()
    view.choose_overlay("sensitivity")
    qtbot.waitUntil(lambda: view.overlay.kind == "sensitivity", timeout=TIMEOUT_MS)
    assert "no sensitivity study" in view.legend.text()


@pytest.fixture
def grouped(qtbot):
    view = GraphView()  # no runner: layouts happen at once
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    view.set_graph(GroupTree(synthetic_transformer_graph(800)))
    return view


def test_groups_expand_and_collapse_in_place_and_show_min_max_sum(grouped, qtbot):
    view = grouped
    tree, n = view.tree, view.n_nodes
    groups = [item - n for item in view.boxes if item >= n]
    encoder = next(g for g in groups if tree.groups[g].path == "/encoder")
    box = view.boxes[n + encoder]
    view.canvas.centerOn(box)
    qtbot.mouseDClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, pos=view.canvas.mapFromScene(box.scenePos()))
    layer1 = next(g for g in tree.groups[encoder].groups if tree.groups[g].path == "/encoder/layer.1")
    assert n + layer1 in view.boxes and n + encoder not in view.boxes
    assert any(frame.group_id == encoder for frame in view.scene.items() if hasattr(frame, "group_id"))
    values = np.arange(len(tree.graph), dtype=float)
    view.set_overlay(ov.Overlay("params", "Parameters", numeric=values, unit="params"))
    inside = values[tree.group_nodes(layer1)]
    tip = view.boxes[n + layer1].toolTip()
    assert f"min {inside.min():,.0f}" in tip and f"max {inside.max():,.0f}" in tip
    assert f"sum {inside.sum():,.0f}" in tip
    assert "Parameters" in view.legend.text() and "no value" in view.legend.text()
    before = set(view.boxes)
    view.expand(layer1)
    assert n + layer1 not in view.boxes and len(view.boxes) > len(before) - 1
    frame = next(f for f in view.scene.items() if getattr(f, "group_id", None) == layer1)
    tab = frame.mapToScene(frame.header_rect().center())
    view.canvas.centerOn(tab)
    corner = frame.boundingRect().bottomLeft()
    inside = frame.mapToScene(corner.x() + 3, corner.y() - 3)  # in the frame's margin: no box there
    view.canvas.centerOn(inside)
    qtbot.mouseDClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, pos=view.canvas.mapFromScene(inside))
    assert n + layer1 not in view.boxes  # a double-click inside the frame but off its tab changes nothing
    view.canvas.centerOn(tab)
    qtbot.mouseDClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, pos=view.canvas.mapFromScene(tab))
    assert set(view.boxes) == before and view.selected_item == n + layer1  # collapsed from its tab


def test_search_reveals_the_match_and_export_writes_svg_and_png(grouped, tmp_path):
    view = grouped
    view.search_edit.setText("layer.5/attention/self/query/MatMul")
    view.find_next()
    node = view.selected_node
    assert node is not None and "layer.5/attention/self/query/MatMul" in view.tree.graph.names[node]
    assert node in view.boxes and view.boxes[node].selected_mark and view.boxes[node].matched
    assert "1 of" in view.match_label.text()
    svg, png = tmp_path / "g.svg", tmp_path / "g.png"
    view.export(str(svg))
    view.export(str(png))
    assert "<svg" in svg.read_text()[:2000] and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_torch_exported_transformer_opens_grouped_by_module(window, qtbot, tmp_path):
    from tests.factories import bert_like_onnx

    path = bert_like_onnx(tmp_path)
    with qtbot.waitSignal(window.model_loaded, timeout=TIMEOUT_MS):
        window.open_model(str(path))
    view = window.graph_view
    qtbot.waitUntil(lambda: _drawn(view) and "layers.0.q" in view.tree.graph.layers, timeout=TIMEOUT_MS)
    shown = [view.tree.groups[i - view.n_nodes].path for i in view.boxes if i >= view.n_nodes]
    assert "/layers.0" in shown and "/layers.1" in shown
    window.model_view.select_layer("layers.1.fc1")
    layer1 = view.n_nodes + next(g for g in range(len(view.tree.groups)) if view.tree.groups[g].path == "/layers.1")
    assert view.boxes[layer1].contains_selected  # the collapsed group holding it is marked, nothing expands
    _action(view.item_menu(layer1, None), "Keep in float (exclude from quantization)").trigger()
    in_layer1 = {x for x in view.tree.graph.layers if x.startswith(("layers.1.", "/layers.1/"))}
    assert set(window.state.recipe.quantize.exclude) == in_layer1 and len(in_layer1) >= 6


def test_a_big_expanded_view_is_drawn_in_steps_and_a_newer_one_takes_over(qtbot):
    from accelstudio.app.views import graph_view

    view = GraphView()
    qtbot.addWidget(view)
    tree = GroupTree(synthetic_transformer_graph(3000))
    view.set_graph(tree)
    for gid in range(1, len(tree.groups)):
        view.state.expanded.add(gid)  # everything open: about 3,000 items
    view.relayout()
    assert view.is_busy()  # the first steps ran; the rest wait for the next turns of the event loop
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=TIMEOUT_MS)
    assert len(view.boxes) == len(view.drawing.items) > graph_view.DRAW_CHUNK
    view.collapse_all()  # a small drawing replaces it at once
    assert not view.is_busy() and len(view.boxes) < 10
