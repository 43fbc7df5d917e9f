"""A layered (Sugiyama-style) top-to-bottom layout for the Graph tab, small enough to run on every expand.

Items arrive in the graph's topological order (ONNX stores nodes that way; groups take their first node's
place), so an edge from a later item to an earlier one closes a cycle that grouping created and is drawn
upward instead of taking part in layering. Steps: longest-path layering (each item one layer below its lowest
predecessor; items without predecessors just above their first consumer), barycenter ordering sweeps (down
and up) to reduce crossings, then x positions that pull each item under the mean of its predecessors without
overlapping its neighbours. Long edges get no dummy nodes: they are drawn as curves, which keeps the work
linear in items + edges.

grandalf (a pure-Python Sugiyama layout) was measured for this and took 0.26 s for 1,000 items, too slow for
expanded views of thousands of items within the 300 ms an expand may take; graphviz is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

NODE_HEIGHT = 34.0
LAYER_GAP = 36.0  # vertical space between layers, for edges
ITEM_GAP = 18.0  # horizontal space between neighbours in a layer
SWEEPS = 4


@dataclass(frozen=True)
class Layout:
    """Centres (x, y) and the layer of each item, in the order the items were given; `width` / `height` of
    the whole drawing."""

    x: np.ndarray
    y: np.ndarray
    layer: np.ndarray
    widths: np.ndarray
    width: float
    height: float


def layered_layout(n: int, src: Sequence[int], dst: Sequence[int], widths: Sequence[float],
                   node_height: float = NODE_HEIGHT) -> Layout:
    """Lay out `n` items (0..n-1, in topological order) with edges src[k] -> dst[k] and the given widths."""
    widths_arr = np.asarray(widths, dtype=float)
    preds, succs = _adjacency(n, src, dst)
    layer = _layers(n, preds, succs)
    rows = _initial_rows(layer)
    rank = np.zeros(n)
    _set_ranks(rows, rank)
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        neighbours = preds if down else succs
        for row in (rows[1:] if down else reversed(rows[:-1])):
            _order_row(row, neighbours, rank)
    x = _place(rows, preds, widths_arr)
    y = layer * (node_height + LAYER_GAP) + node_height / 2
    left = float((x - widths_arr / 2).min()) if n else 0.0
    x = x - left
    width = float((x + widths_arr / 2).max()) if n else 0.0
    height = float(layer.max() + 1) * (node_height + LAYER_GAP) - LAYER_GAP if n else 0.0
    return Layout(x=x, y=y, layer=layer, widths=widths_arr, width=width, height=height)


def _adjacency(n: int, src: Sequence[int], dst: Sequence[int]) -> tuple[list[list[int]], list[list[int]]]:
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(np.asarray(src).tolist(), np.asarray(dst).tolist()):
        if a == b:
            continue
        if a > b:  # against the topological order: a cycle made by grouping; drawn upward
            a, b = b, a
        preds[b].append(a)
        succs[a].append(b)
    return preds, succs


def _layers(n: int, preds: list[list[int]], succs: list[list[int]]) -> np.ndarray:
    layer = np.zeros(n, dtype=np.int64)
    for v in range(n):  # predecessors always come earlier
        if preds[v]:
            layer[v] = max(layer[u] for u in preds[v]) + 1
    for v in range(n - 1, -1, -1):  # sources (constants, weights) sit just above their first consumer
        if not preds[v] and succs[v]:
            layer[v] = max(min(layer[w] for w in succs[v]) - 1, 0)
    return layer


def _initial_rows(layer: np.ndarray) -> list[list[int]]:
    if not len(layer):
        return []
    rows: list[list[int]] = [[] for _ in range(int(layer.max()) + 1)]
    for v, row in enumerate(layer.tolist()):
        rows[row].append(v)
    return rows


def _set_ranks(rows: list[list[int]], rank: np.ndarray) -> None:
    for row in rows:
        count = max(len(row), 1)
        for i, v in enumerate(row):
            rank[v] = (i + 0.5) / count


def _order_row(row: list[int], neighbours: list[list[int]], rank: np.ndarray) -> None:
    """Sort `row` by the mean rank of each item's neighbours (items without any keep their place)."""
    keys = []
    for i, v in enumerate(row):
        near = neighbours[v]
        bary = sum(rank[u] for u in near) / len(near) if near else rank[v]
        keys.append((bary, rank[v], v))
    keys.sort()
    row[:] = [v for _, _, v in keys]
    count = len(row)
    for i, v in enumerate(row):
        rank[v] = (i + 0.5) / count


def _place(rows: list[list[int]], preds: list[list[int]], widths: np.ndarray) -> np.ndarray:
    """x centres: each row in its order, each item as close to under its predecessors as its left neighbour
    allows, then the row shifted so that it sits centred under what it hangs from."""
    x = np.zeros(len(widths))
    for row in rows:
        desired = [float(np.mean([x[u] for u in preds[v]])) if preds[v] else None for v in row]
        right = -np.inf
        pulls = []
        for v, want in zip(row, desired):
            lowest = right + ITEM_GAP + widths[v] / 2
            x[v] = lowest if want is None else max(want, lowest) if np.isfinite(lowest) else want
            if not np.isfinite(x[v]):
                x[v] = widths[v] / 2
            right = x[v] + widths[v] / 2
            if want is not None:
                pulls.append(want - x[v])
        if pulls:  # a uniform shift keeps the spacing and splits the pull both ways
            shift = float(np.median(pulls))
            for v in row:
                x[v] += shift
    return x


def edges_point_down(layout: Layout, src: Sequence[int], dst: Sequence[int]) -> bool:
    """True when every forward edge (src before dst in the given order) goes to a lower layer."""
    return all(layout.layer[b] > layout.layer[a] for a, b in zip(src, dst) if a < b)


def overlaps_in_layers(layout: Layout) -> int:
    """How many pairs of neighbours in a layer overlap (0 for a valid layout)."""
    bad = 0
    for row in set(layout.layer.tolist()):
        members = np.flatnonzero(layout.layer == row)
        order = members[np.argsort(layout.x[members])]
        lefts = layout.x[order] - layout.widths[order] / 2
        rights = layout.x[order] + layout.widths[order] / 2
        bad += int(np.sum(lefts[1:] < rights[:-1] - 1e-6))
    return bad
