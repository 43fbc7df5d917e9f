"""An operator graph grouped by its node names, and the collapsed view of it that the Graph tab draws.

Exporters name nodes by the module they came from (`/encoder/layer.0/attention/self/query/MatMul` from torch's
ONNX exporter, `encoder.layer.0.attention` as a torch module path), so the names already hold a hierarchy:
every scope becomes a group. A group with more than `MAX_CHILDREN` direct children (a flat graph whose names
hold no scopes, say) is split into consecutive blocks, so no single level ever shows thousands of items.

The tree is numbered so that each group covers one contiguous range of `order` (the nodes in tree order);
then the visible item of every node, and the edges between visible items, are a few numpy operations over all
nodes and edges, whatever is expanded. Only what is visible is ever turned into Python objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

_OPAQUE = re.compile(r"[A-Za-z]{0,2}_?\d+")  # generated names such as 'n17', 'r_4'
MAX_CHILDREN = 48
CHECK_EVERY = 4096  # nodes or groups between progress calls
Progress = Callable[[int, int], None]  # a group shows at most this many items when expanded; more become blocks


@dataclass(frozen=True)
class OpGraph:
    """A flat operator graph: node names (unique), op types, the layer (table row) each node belongs to ("" for
    none), and edges as two index arrays (source -> destination), nodes in topological order when known.
    `constant[i]` is True for a node that reads stored values only (no graph input, no other node's output);
    None: only Constant nodes are."""

    names: tuple[str, ...]
    op_types: tuple[str, ...]
    layers: tuple[str, ...]
    src: np.ndarray
    dst: np.ndarray
    constant: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)


class Group:
    """One scope: `path` its full name ("" for the root), `label` what is drawn, the range [start, end) of
    `GroupTree.order` it covers, its child groups and its direct child nodes. (A plain class with slots: a big
    graph has tens of thousands of these, and a dataclass's generated __init__ is several times slower.)"""

    __slots__ = ("path", "label", "parent", "start", "end", "groups", "nodes")

    def __init__(self, path: str, label: str, parent: int, groups: list[int] | None = None,
                 nodes: list[int] | None = None):
        self.path, self.label, self.parent = path, label, parent
        self.start = self.end = 0
        self.groups = groups if groups is not None else []
        self.nodes = nodes if nodes is not None else []

    def size(self) -> int:
        return self.end - self.start


def scope_parts(name: str) -> tuple[str, ...]:
    """The scopes in a node name: '/enc/layer.0/attn/MatMul' -> ('enc', 'layer.0', 'attn') (the last part is the
    node itself); a torch module path 'enc.layer.0.attn' -> ('enc', 'layer', '0'); no scopes -> ()."""
    if "/" in name:
        return tuple(p for p in name.split("/") if p)[:-1]
    if "." in name:
        return tuple(name.split(".")[:-1])
    return ()


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _blocks(items: list[tuple[str, int]], max_children: int) -> list[list[tuple[str, int]]]:
    """Split a too-wide level: first each run of loose nodes between groups becomes one block (groups stay
    themselves); when that is still too wide, consecutive items are chunked evenly."""
    runs: list[list[tuple[str, int]]] = []
    for item in items:
        if item[0] == "n" and runs and runs[-1][-1][0] == "n":
            runs[-1].append(item)
        else:
            runs.append([item])
    if 1 < len(runs) <= max_children:
        return runs
    chunk = max(-(-len(items) // max_children), 1)
    return [items[lo:lo + chunk] for lo in range(0, len(items), chunk)]


def node_label(name: str) -> str:
    """The last part of a node name ('/enc/layer.0/attn/MatMul' -> 'MatMul')."""
    return [p for p in name.split("/") if p][-1] if name.strip("/") else name


class GroupTree:
    """The groups of an OpGraph, built from node names; group 0 is the root."""

    def __init__(self, graph: OpGraph, max_children: int = MAX_CHILDREN, progress: Progress | None = None):
        """`progress(done, total)` is called every few thousand nodes or groups (the caller may use the pauses,
        for example to move the objects made so far out of the garbage collector's young generations)."""
        self.graph = graph
        self._progress = progress or (lambda done, total: None)
        self.groups: list[Group] = [Group("", "", -1)]
        self.node_group = np.zeros(len(graph), dtype=np.int64)
        by_source = np.argsort(graph.src, kind="stable")  # consumers of node i: a slice, not a list per node
        self._out_dst = graph.dst[by_source]
        self._out_start = np.searchsorted(graph.src[by_source], np.arange(len(graph) + 1))
        self.rank = self._ranks()
        self._first_memo: dict[int, float] = {}
        self._build(max_children)
        self.order, self.position = self._number()
        # where each group sits in the graph's order: sorting items by it keeps the order topological
        self.first = np.array([float(self.rank[self.order[g.start:g.end]].min()) if g.end > g.start else 0.0
                               for g in self.groups])
        del self._out_dst, self._out_start, self._first_memo, self._progress

    def _consumers(self, i: int) -> list[int]:
        return self._out_dst[self._out_start[i]:self._out_start[i + 1]].tolist()

    def _ranks(self) -> np.ndarray:
        """A topological position per node: its index, except that a node with no inputs from other nodes (a
        constant, a weight copy) sits just before its first consumer rather than wherever the exporter put it."""
        rank = np.arange(len(self.graph), dtype=float)
        has_input = np.zeros(len(self.graph), dtype=bool)
        has_input[self.graph.dst] = True
        for i in np.flatnonzero(~has_input)[::-1].tolist():
            consumers = self._consumers(i)
            if consumers:
                rank[i] = rank[consumers].min() - 0.5
        return rank

    # -- building ------------------------------------------------------------------------------------------
    def _build(self, max_children: int) -> None:
        index: dict[tuple[str, ...], int] = {(): 0}
        node_group = [0] * len(self.graph)
        for i, scopes in enumerate(self._node_scopes()):
            if i % CHECK_EVERY == 0:
                self._progress(i, len(self.graph))
            gid = index.get(scopes)
            if gid is None:
                gid = self._add_scope(scopes, index)
            self.groups[gid].nodes.append(i)
            node_group[i] = gid
        self.node_group = np.asarray(node_group, dtype=np.int64)
        self._fold_single_children()
        for gid in range(len(self.groups)):
            if gid % CHECK_EVERY == 0:
                self._progress(gid, len(self.groups))
            self._split_wide(gid, max_children)

    def _add_scope(self, scopes: tuple[str, ...], index: dict[tuple[str, ...], int]) -> int:
        parent = index.get(scopes[:-1])
        if parent is None:
            parent = self._add_scope(scopes[:-1], index)
        gid = len(self.groups)
        index[scopes] = gid
        self.groups.append(Group("/" + "/".join(scopes), scopes[-1], parent))
        self.groups[parent].groups.append(gid)
        return gid

    def _node_scopes(self) -> list[tuple[str, ...]]:
        """Each node's scopes from its name, except that a node computing from stored values only (the constants
        and weight copies an exporter adds, 'Constant_117', often named without scopes or, in converted
        models, after the weight they make) takes the scopes its consumers share, so it sits with what uses it."""
        graph = self.graph
        scopes = [scope_parts(name) for name in graph.names]
        constant = graph.constant if graph.constant is not None else np.array(
            [op == "Constant" for op in graph.op_types], dtype=bool)
        for i in np.flatnonzero(constant)[::-1].tolist():  # consumers come later: their scopes are settled first
            consumers = self._consumers(i)
            if not consumers:
                continue
            shared = scopes[consumers[0]]
            for j in consumers[1:]:
                shared = _common_prefix(shared, scopes[j])
                if not shared:
                    break
            scopes[i] = shared
        return scopes

    def _fold_single_children(self) -> None:
        """A group holding one node and nothing else is that node (drawn with the group's name)."""
        for gid in range(len(self.groups) - 1, 0, -1):
            group = self.groups[gid]
            if not group.groups and len(group.nodes) == 1:
                parent = self.groups[group.parent]
                if gid in parent.groups:
                    parent.groups.remove(gid)
                    parent.nodes.append(group.nodes[0])
                    self.node_group[group.nodes[0]] = group.parent
                    group.nodes = []

    def _split_wide(self, gid: int, max_children: int) -> None:
        group = self.groups[gid]
        items = [("g", g) for g in group.groups if self.groups[g].nodes or self.groups[g].groups]
        items += [("n", n) for n in group.nodes]
        if len(items) <= max_children:
            group.groups = [g for kind, g in items if kind == "g"]
            return
        items.sort(key=lambda item: self._first_node(item))
        group.groups, group.nodes = [], []
        for part in _blocks(items, max_children):
            if len(part) == 1:
                kind, idx = part[0]
                (group.groups if kind == "g" else group.nodes).append(idx)
                continue
            named = [item for item in part if not self._is_constant(item)] or part  # ops name a block better
            label = f"{self._item_label(named[0])} … {self._item_label(named[-1])}"
            block = len(self.groups)
            self.groups.append(Group(f"{group.path}/{label}", label, gid,
                                     groups=[g for kind, g in part if kind == "g"],
                                     nodes=[n for kind, n in part if kind == "n"]))
            for g in self.groups[block].groups:
                self.groups[g].parent = block
            for n in self.groups[block].nodes:
                self.node_group[n] = block
            group.groups.append(block)
            self._split_wide(block, max_children)

    def _is_constant(self, item: tuple[str, int]) -> bool:
        kind, idx = item
        constant = self.graph.constant
        return kind == "n" and (bool(constant[idx]) if constant is not None else self.graph.op_types[idx] == "Constant")

    def _item_label(self, item: tuple[str, int]) -> str:
        kind, idx = item
        if kind == "g":
            return self.groups[idx].label
        label = node_label(self.graph.names[idx])
        return self.graph.op_types[idx] if _OPAQUE.fullmatch(label) else label  # 'n17' says less than 'Conv'

    def _first_node(self, item: tuple[str, int]) -> float:
        kind, idx = item
        if kind == "n":
            return float(self.rank[idx])
        if idx not in self._first_memo:
            group = self.groups[idx]
            firsts = [float(self.rank[n]) for n in group.nodes] + [self._first_node(("g", g)) for g in group.groups]
            self._first_memo[idx] = min(firsts) if firsts else 0.0
        return self._first_memo[idx]

    def _number(self) -> tuple[np.ndarray, np.ndarray]:
        order: list[int] = []
        stack = [(0, False)]
        while stack:
            gid, done = stack.pop()
            group = self.groups[gid]
            if done:
                group.end = len(order)
                continue
            group.start = len(order)
            order.extend(group.nodes)
            stack.append((gid, True))
            stack.extend((g, False) for g in reversed(group.groups))
        order_arr = np.array(order, dtype=np.int64)
        position = np.empty(len(order_arr), dtype=np.int64)
        position[order_arr] = np.arange(len(order_arr))
        return order_arr, position

    # -- questions -----------------------------------------------------------------------------------------
    def ancestors(self, node: int) -> list[int]:
        """The groups holding `node`, innermost first, root excluded."""
        out, gid = [], int(self.node_group[node])
        while gid > 0:
            out.append(gid)
            gid = self.groups[gid].parent
        return out

    def group_nodes(self, gid: int) -> np.ndarray:
        """Every node inside group `gid` (at any depth)."""
        group = self.groups[gid]
        return self.order[group.start:group.end]

    def find(self, text: str, limit: int = 200) -> list[int]:
        """Nodes whose name or op type contains `text` (case-insensitive), at most `limit`, in graph order."""
        needle = text.strip().lower()
        if not needle:
            return []
        names, ops = self.graph.names, self.graph.op_types
        found = []
        for i in range(len(names)):
            if needle in names[i].lower() or needle in ops[i].lower():
                found.append(i)
                if len(found) >= limit:
                    break
        return found


@dataclass(frozen=True)
class ViewGraph:
    """What is drawn: items (node i is item i, group g is item n_nodes + g), their labels and kinds, and the
    edges between them with how many node-level edges each stands for. `rep[i]` is the item showing node i."""

    items: np.ndarray
    rep: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_count: np.ndarray
    n_nodes: int

    def is_group(self, item: int) -> bool:
        return item >= self.n_nodes


class GraphView:
    """Which groups are expanded, and the ViewGraph that follows from it (collapsed by default)."""

    def __init__(self, tree: GroupTree):
        self.tree = tree
        self.expanded: set[int] = {0}
        root = tree.groups[0]
        while len(root.groups) == 1 and not root.nodes:  # one scope holds everything ('/model/...'): open it
            self.expanded.add(root.groups[0])
            root = tree.groups[root.groups[0]]

    def expand(self, gid: int) -> None:
        """Open group `gid` (and every group above it, so it can be seen)."""
        while gid > 0:
            self.expanded.add(gid)
            gid = self.tree.groups[gid].parent

    def collapse(self, gid: int) -> None:
        """Close group `gid`; what was open inside it stays remembered but hidden."""
        if gid > 0:
            self.expanded.discard(gid)

    def reveal(self, node: int) -> None:
        """Expand every group holding `node`, so it is drawn on its own."""
        for gid in self.tree.ancestors(node):
            self.expanded.add(gid)

    def item_of_group(self, gid: int) -> int:
        return len(self.tree.graph) + gid

    def build(self) -> ViewGraph:
        """The visible items and the edges between them, aggregated (self-edges of a group dropped)."""
        tree, n = self.tree, len(self.tree.graph)
        rep = np.arange(n, dtype=np.int64)
        items: list[int] = []
        stack = [0]
        while stack:
            gid = stack.pop()
            group = tree.groups[gid]
            items.extend(group.nodes)
            for child in group.groups:
                if child in self.expanded:
                    stack.append(child)
                else:
                    items.append(n + child)
                    c = tree.groups[child]
                    rep[tree.order[c.start:c.end]] = n + child
        src, dst = rep[tree.graph.src], rep[tree.graph.dst]
        keep = src != dst
        pairs = src[keep] * (n + len(tree.groups)) + dst[keep]
        unique, counts = np.unique(pairs, return_counts=True)
        width = n + len(tree.groups)
        return ViewGraph(items=np.array(sorted(items, key=lambda it: self._first(it)), dtype=np.int64), rep=rep,
                         edge_src=unique // width, edge_dst=unique % width, edge_count=counts, n_nodes=n)

    def _first(self, item: int) -> float:
        n = len(self.tree.graph)
        return float(self.tree.first[item - n]) if item >= n else float(self.tree.rank[item])
