"""Everything the Graph tab draws for one expanded/collapsed state, worked out off the GUI thread: the visible
items with their labels and positions, the aggregated edges, and a frame per expanded group."""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    frames, layout = _frames(tree, items, layout, expanded)
    return Drawing(view=view, items=items, titles=tuple(t for t, _ in texts), subtitles=tuple(s for _, s in texts),
                   layout=layout, edge_a=edge_a, edge_b=edge_b, edge_count=view.edge_count, frames=frames,
                   expanded=frozenset(expanded))


def _frames(tree: GroupTree, items: np.ndarray, layout: Layout, expanded: frozenset[int]):
    """A frame per expanded group around its visible items, and the layout with room made for them: the layers
    where frames start are moved down far enough for their name tabs, stacked outermost on top, so a tab never
    covers an item of the layer above."""
    n = len(tree.graph)
    extent: dict[int, list[float]] = {}  # group -> [left, right, first layer, last layer]
    for k, item in enumerate(items.tolist()):
        gid = int(tree.node_group[item]) if item < n else tree.groups[item - n].parent
        left, right, row = layout.x[k] - layout.widths[k] / 2, layout.x[k] + layout.widths[k] / 2, layout.layer[k]
        while gid > 0:
            box = extent.setdefault(gid, [left, right, row, row])
            box[0], box[1] = min(box[0], left), max(box[1], right)
            box[2], box[3] = min(box[2], row), max(box[3], row)
            gid = tree.groups[gid].parent
    shown = sorted((g for g in extent if g in expanded), key=lambda g: _depth(tree, g))  # outermost first
    nested = {gid: 0 for gid in shown}  # how deep the expanded frames inside each one go
    for gid in reversed(shown):
        parent = tree.groups[gid].parent
        if parent in nested:
            nested[parent] = max(nested[parent], nested[gid] + 1)
    rows = int(layout.layer.max()) + 1 if len(layout.layer) else 0
    starts, ends = [[] for _ in range(rows)], [[] for _ in range(rows)]
    for gid in shown:
        starts[int(extent[gid][2])].append(gid)
        ends[int(extent[gid][3])].append(gid)
    top_pad = {g: FRAME_PAD + HEADER_ROOM * (len(row) - 1 - i) for row in starts for i, g in enumerate(row)}
    bottom_pad = {g: FRAME_PAD * (len(row) - i) for row in ends for i, g in enumerate(row)}
    shift, total = np.zeros(rows), 0.0
    for row in range(rows):
        total += (FRAME_PAD + HEADER_ROOM * len(starts[row])) if starts[row] else 0.0
        shift[row] = total
        total += FRAME_PAD * (len(ends[row]) + 1) if ends[row] else 0.0
    y = layout.y + shift[layout.layer] if rows else layout.y
    moved = replace(layout, y=y, height=layout.height + total)
    out = []
    for gid in shown:
        left, right, first, last = extent[gid]
        side = FRAME_PAD * (1 + nested[gid])
        top = float(y[layout.layer == first].min()) - NODE_HEIGHT / 2 - top_pad[gid]
        bottom = float(y[layout.layer == last].max()) + NODE_HEIGHT / 2 + bottom_pad[gid]
        out.append((gid, left - side, top, right + side, bottom))
    return tuple(out), moved


def _depth(tree: GroupTree, gid: int) -> int:
    depth = 0
    while gid > 0:
        depth, gid = depth + 1, tree.groups[gid].parent
    return depth
