"""Grouping an operator graph by its node names: the hierarchy, the collapsed view with aggregated edges, expand
and collapse, and the layered layout's invariants, on synthetic graphs and on graphs nobody here wrote (onnx's
light_resnet50 / light_densenet121, a transformer exported with torch and dynamic axes)."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from accelstudio.core.model.graph_drawing import draw_state
from accelstudio.core.graphs.source import GraphUnavailableError, op_graph_for_handle
from accelstudio.core.model.graph_extract import op_graph_from_onnx, synthetic_transformer_graph
from accelstudio.core.model.graph_groups import MAX_CHILDREN, GraphView, GroupTree, OpGraph, scope_parts
from accelstudio.core.model.graph_layout import NODE_HEIGHT, edges_point_down, layered_layout, overlaps_in_layers

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def _graph(names, edges, ops=None, layers=None) -> OpGraph:
    src, dst = zip(*edges) if edges else ((), ())
    return OpGraph(names=tuple(names), op_types=tuple(ops or [n.rsplit("/", 1)[-1] for n in names]),
                   layers=tuple(layers or [""] * len(names)), src=np.array(src, dtype=np.int64),
                   dst=np.array(dst, dtype=np.int64))


def _crossing_edges(graph: OpGraph, rep: np.ndarray) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for a, b in zip(graph.src.tolist(), graph.dst.tolist()):
        if rep[a] != rep[b]:
            counts[(int(rep[a]), int(rep[b]))] = counts.get((int(rep[a]), int(rep[b])), 0) + 1
    return counts


def _check_view(tree: GroupTree, state: GraphView) -> None:
    view = state.build()
    items = set(view.items.tolist())
    assert len(items) == len(view.items)  # each item once
    assert set(view.rep.tolist()) == items  # every node is shown by exactly one visible item, every item shows one
    for node, item in enumerate(view.rep.tolist()):
        assert item == node or item - len(tree.graph) in tree.ancestors(node)
    got = {(int(a), int(b)): int(c) for a, b, c in zip(view.edge_src, view.edge_dst, view.edge_count)}
    assert got == _crossing_edges(tree.graph, view.rep)  # aggregated: one edge per pair, counts add up, no loops


def test_scopes_come_from_exporter_names_and_module_paths():
    assert scope_parts("/encoder/layer.0/attention/self/query/MatMul") == (
        "encoder", "layer.0", "attention", "self", "query")
    assert scope_parts("encoder.layer.0.attention") == ("encoder", "layer", "0")
    assert scope_parts("Relu_12") == ()


def test_hierarchy_folds_single_nodes_and_splits_wide_levels():
    names = ["/emb/Gather", "/enc/l0/q/MatMul", "/enc/l0/k/MatMul", "/enc/l0/Softmax", "/head/Gemm"]
    tree = GroupTree(_graph(names, [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)]))
    paths = {g.path for g in tree.groups[1:] if g.size()}
    assert "/enc" in paths and "/enc/l0" in paths
    assert "/enc/l0/q" not in paths  # a scope holding a single node is that node
    assert set(tree.groups[0].nodes) == {0, 4}
    wide = GroupTree(_graph([f"op{i}" for i in range(1000)], [(i, i + 1) for i in range(999)]))
    for group in wide.groups:
        assert len(group.groups) + len(group.nodes) <= MAX_CHILDREN
    assert sorted(wide.order.tolist()) == list(range(1000))
    first = wide.groups[wide.groups[0].groups[0]]
    assert first.label == "op0 … op20"  # 1000 items in 48 blocks of 21; a block says which items it holds


def test_collapsed_view_aggregates_edges_and_expand_collapse_round_trips():
    graph = synthetic_transformer_graph(2000)
    tree = GroupTree(graph)
    state = GraphView(tree)
    before = state.build()
    assert len(before.items) < 10  # collapsed by default
    _check_view(tree, state)
    encoder = next(g for g in range(len(tree.groups)) if tree.groups[g].path == "/encoder")
    layer = tree.groups[encoder].groups[3]
    state.expand(layer)  # opens its parents too
    assert encoder in state.expanded
    _check_view(tree, state)
    state.collapse(layer)
    state.collapse(encoder)
    after = state.build()
    for field in ("items", "rep", "edge_src", "edge_dst", "edge_count"):
        assert np.array_equal(getattr(before, field), getattr(after, field)), field


def test_reveal_and_search_find_a_node_and_open_what_hides_it():
    tree = GroupTree(synthetic_transformer_graph(3000))
    hits = tree.find("layer.7/attention/self/query/matmul")
    assert hits and all("layer.7/attention/self/query" in tree.graph.names[i] for i in hits)
    assert tree.find("softmax", limit=5) and len(tree.find("softmax", limit=5)) == 5
    state = GraphView(tree)
    state.reveal(hits[0])
    assert hits[0] in state.build().items.tolist()


def _random_dag(n: int, seed: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    src, dst = [], []
    for b in range(1, n):
        for a in rng.choice(b, size=min(b, rng.integers(1, 4)), replace=False):
            src.append(int(a))
            dst.append(b)
    return src, dst


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layout_edges_point_down_without_overlaps_and_is_deterministic(seed):
    src, dst = _random_dag(300, seed)
    widths = np.random.default_rng(seed).uniform(60, 200, 300)
    first = layered_layout(300, src, dst, widths)
    assert edges_point_down(first, src, dst)
    assert overlaps_in_layers(first) == 0
    again = layered_layout(300, src, dst, widths)
    assert np.array_equal(first.x, again.x) and np.array_equal(first.y, again.y)
    assert (first.x - widths / 2).min() >= -1e-9  # the drawing starts at 0
    assert first.width >= (first.x + widths / 2).max() - 1e-6


def test_layout_of_grouped_views_keeps_its_invariants_with_cycles_made_by_grouping():
    # a -> b -> c with a and c in one group: the collapsed view has group <-> b, a cycle
    graph = _graph(["/g/a", "/b", "/g/c", "/g/d"], [(0, 1), (1, 2), (2, 3)])
    tree = GroupTree(graph)
    drawing = draw_state(tree, frozenset({0}))
    assert len(drawing.items) == 2 and len(drawing.edge_a) == 2  # both directions kept
    assert overlaps_in_layers(drawing.layout) == 0
    tree = GroupTree(synthetic_transformer_graph(5000))
    state = GraphView(tree)
    for gid in range(1, len(tree.groups), 97):
        state.expand(gid)
    drawing = draw_state(tree, frozenset(state.expanded))
    assert edges_point_down(drawing.layout, drawing.edge_a.tolist(), drawing.edge_b.tolist())
    assert overlaps_in_layers(drawing.layout) == 0
    layout = drawing.layout
    for gid, left, top, right, bottom in drawing.frames:
        assert gid in state.expanded and left < right and top < bottom
        inside = set(tree.group_nodes(gid).tolist())
        for k, item in enumerate(drawing.items.tolist()):
            box = (layout.x[k] - layout.widths[k] / 2, layout.x[k] + layout.widths[k] / 2,
                   layout.y[k] - NODE_HEIGHT / 2, layout.y[k] + NODE_HEIGHT / 2)
            member = item in inside if item < len(tree.graph) else _within(tree, item - len(tree.graph), gid)
            if member:  # the frame holds every visible item of its group
                assert left <= box[0] and box[1] <= right and top <= box[2] and box[3] <= bottom
            # no item sits under the name tab drawn above the frame
            assert not (box[0] < right and box[1] > left and box[2] < top and box[3] > top - 16)


def _within(tree: GroupTree, gid: int, ancestor: int) -> bool:
    while gid > 0:
        if gid == ancestor:
            return True
        gid = tree.groups[gid].parent
    return False


@pytest.mark.parametrize("name", ["light_resnet50.onnx", "light_densenet121.onnx"])
def test_real_onnx_graphs_group_and_lay_out(name):
    path = os.path.join(LIGHT, name)
    if not os.path.exists(path):
        pytest.skip(f"{name} is not in this onnx install")
    model = onnx.load(path)
    graph = op_graph_from_onnx(model)
    assert len(graph) == len(model.graph.node) and len(set(graph.names)) == len(graph)  # unnamed nodes named
    from accelstudio.core.model.inspect import inspect_model
    from accelstudio.core.model.loading import load_model

    layers = {layer.name for layer in inspect_model(load_model(path)).layers}
    assert {x for x in graph.layers if x} == layers  # the same layer names as the table
    tree = GroupTree(graph)
    state = GraphView(tree)
    _check_view(tree, state)
    drawing = draw_state(tree, frozenset(state.expanded))
    assert len(drawing.items) <= MAX_CHILDREN and overlaps_in_layers(drawing.layout) == 0
    assert edges_point_down(drawing.layout, drawing.edge_a.tolist(), drawing.edge_b.tolist())


def test_a_torch_transformer_with_dynamic_axes_groups_by_module(tmp_path):
    from tests.factories import bert_like_onnx

    graph = op_graph_from_onnx(onnx.load(str(bert_like_onnx(tmp_path))))
    tree = GroupTree(graph)
    state = GraphView(tree)
    view = state.build()
    shown = [tree.groups[i - len(graph)].path for i in view.items.tolist() if i >= len(graph)]
    assert "/layers.0" in shown and "/layers.1" in shown
    assert shown.index("/layers.0") < shown.index("/layers.1")  # the exporter's stray constants do not reorder
    layer0 = next(g for g in range(len(tree.groups)) if tree.groups[g].path == "/layers.0")
    names = {graph.names[i] for i in tree.group_nodes(layer0).tolist()}
    assert "/layers.0/q/MatMul" in names
    assert any(not n.startswith("/layers.0") for n in names)  # constants used only here joined the scope
    assert {"layers.0.q", "layers.1.fc2", "tokens"} <= {x for x in graph.layers if x}
    _check_view(tree, state)


def test_torch_models_come_through_their_onnx_export_and_snapshots_say_why_not():
    from accelstudio.core.model.loading import open_model

    handle = open_model("example:digits-cnn", backend="torch")
    graph = op_graph_for_handle(handle)
    assert {"conv1", "conv2", "fc1", "fc2"} <= set(graph.layers)
    with pytest.raises(GraphUnavailableError, match="separate process"):
        op_graph_for_handle(type("Snapshot", (), {"backend": "torch", "name": "m.pt"})())
