"""Everything the Graph tab draws for one expanded/collapsed state, worked out off the GUI thread: the visible
items with their labels and positions, the aggregated edges, and a frame per expanded group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelstudio.core.model.graph_groups import GraphView, GroupTree, ViewGraph, node_label
from accelstudio.core.model.graph_layout import NODE_HEIGHT, Layout, layered_layout

FRAME_PAD = 8.0
HEADER_ROOM = 20.0  # above a frame holding other frames, so the tabs with the group names do not overlap
CHAR_WIDTH = 6.4  # app/views/graph_items.CHAR_WIDTH: the layout cannot ask Qt for font metrics off the GUI thread


@dataclass(frozen=True)
class Drawing:
    """One state of the Graph tab. Item k is `items[k]` (a node index, or n_nodes + group id) at (x[k], y[k]);
    edges are pairs of positions in `items`; `frames` are (group id, left, top, right, bottom) per expanded
    group, outermost first."""

    view: ViewGraph
    items: np.ndarray
    titles: tuple[str, ...]
    subtitles: tuple[str, ...]
    layout: Layout
    edge_a: np.ndarray
    edge_b: np.ndarray
    edge_count: np.ndarray
    frames: tuple[tuple[int, float, float, float, float], ...]
    expanded: frozenset[int]


def item_text(tree: GroupTree, item: int) -> tuple[str, str]:
    """(title, subtitle) of an item: a node's op type and its own name; a group's name and size."""
    n = len(tree.graph)
    if item >= n:
        group = tree.groups[item - n]
        return group.label, f"{group.size():,} nodes"
    op = tree.graph.op_types[item]
    layer = tree.graph.layers[item]
    label = layer.rsplit(".", 1)[-1] if layer else node_label(tree.graph.names[item])
    return op, "" if label.startswith(op) else label


def box_width(title: str, subtitle: str) -> float:
    """The same estimate as app/views/graph_items.box_width."""
    return float(min(max(max(len(title), len(subtitle)) * CHAR_WIDTH + 18, 90), 220))


def draw_state(tree: GroupTree, expanded: frozenset[int]) -> Drawing:
    """Lay out `tree` with the groups in `expanded` open (plain data; safe on any thread)."""
    state = GraphView(tree)
    state.expanded = set(expanded)
    view = state.build()
    items = view.items
    position = {int(item): k for k, item in enumerate(items.tolist())}
    edge_a = np.array([position[int(a)] for a in view.edge_src.tolist()], dtype=np.int64)
    edge_b = np.array([position[int(b)] for b in view.edge_dst.tolist()], dtype=np.int64)
    texts = [item_text(tree, int(item)) for item in items.tolist()]
    widths = [box_width(t, s) for t, s in texts]
    layout = layered_layout(len(items), edge_a, edge_b, widths)
    frames = _frames(tree, items, layout, expanded)
    return Drawing(view=view, items=items, titles=tuple(t for t, _ in texts), subtitles=tuple(s for _, s in texts),
                   layout=layout, edge_a=edge_a, edge_b=edge_b, edge_count=view.edge_count, frames=frames,
                   expanded=frozenset(expanded))


def _frames(tree: GroupTree, items: np.ndarray, layout: Layout, expanded: frozenset[int]):
    n = len(tree.graph)
    boxes: dict[int, list[float]] = {}
    depth: dict[int, int] = {}
    for k, item in enumerate(items.tolist()):
        gid = int(tree.node_group[item]) if item < n else tree.groups[item - n].parent
        left, right = layout.x[k] - layout.widths[k] / 2, layout.x[k] + layout.widths[k] / 2
        top, bottom = layout.y[k] - NODE_HEIGHT / 2, layout.y[k] + NODE_HEIGHT / 2
        while gid > 0:
            box = boxes.setdefault(gid, [left, top, right, bottom])
            box[0], box[1] = min(box[0], left), min(box[1], top)
            box[2], box[3] = max(box[2], right), max(box[3], bottom)
            gid = tree.groups[gid].parent
    for gid in boxes:
        d, g = 0, gid
        while g > 0:
            d, g = d + 1, tree.groups[g].parent
        depth[gid] = d
    nested = {gid: 0 for gid in boxes}  # how many expanded frames lie inside each one, at most
    for gid in sorted(boxes, key=lambda g: -depth[g]):
        parent = tree.groups[gid].parent
        if gid in expanded and parent in nested:
            nested[parent] = max(nested[parent], nested[gid] + 1)
    out = []
    for gid in sorted(boxes, key=lambda g: depth[g]):
        if gid not in expanded:
            continue
        side, top_pad = FRAME_PAD * (1 + nested[gid]), FRAME_PAD + HEADER_ROOM * nested[gid]
        left, top, right, bottom = boxes[gid]
        out.append((gid, left - side, top - top_pad, right + side, bottom + side))
    return tuple(out)
