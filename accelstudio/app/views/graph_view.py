"""The Graph tab: the open model's operator graph, top to bottom, grouped by name scope and collapsed at first.

Double-click a group to expand it in place, double-click an expanded group's tab to collapse it; wheel to zoom,
drag to pan; search by name or op type (Enter jumps to the next match, expanding what hides it). Clicking a node
that computes a layer selects that layer in the table (and the table's choice is marked here). The colour menu
picks an overlay (app/plots/graph_colors.py); the context menu edits the recipe for the layers under a node or
group and re-runs. Layout runs through `submit` (a TaskRunner's, on a background thread); the GUI thread only
turns the visible part into items.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (QFileDialog, QFrame, QGraphicsScene, QHBoxLayout, QInputDialog, QLabel, QLineEdit,
                               QMenu, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from accelstudio.app.plots.graph_colors import OverlayColors, item_color, item_tooltip, legend_html
from accelstudio.app.plots.plot_export import ExportError, export_png, export_svg
from accelstudio.app.views.graph_canvas import GraphCanvas, build_item_menu
from accelstudio.app.views.graph_items import BoxItem, FrameItem, edge_items
from accelstudio.core.model.graph_drawing import Drawing, draw_state
from accelstudio.core.model.graph_groups import GraphView as ExpandState, GroupTree
from accelstudio.core.graphs.overlays import OVERLAYS, Overlay, group_stats, op_overlay
from accelstudio.core.model.graph_layout import NODE_HEIGHT

DRAW_CHUNK = 300  # items per drawing step
EDGE_CHUNK = 600  # edges per drawing step
TURN_BUDGET_S = 0.04  # drawing steps run in one turn of the event loop until they have used this long


class GraphView(QWidget):
    """The Graph tab's widget. Give it a graph with `set_graph(tree)`; colour it with `set_overlay(overlay)`."""

    layer_selected = Signal(str)  # a node computing this layer was clicked
    layer_action = Signal(str, list)  # action key (graph_canvas.GRAPH_ACTIONS), layer names
    amount_chosen = Signal(list, float)  # layer names, pruning amount for them
    rerun_requested = Signal()
    overlay_requested = Signal(str)  # overlay key
    drawn = Signal()  # a layout has been turned into items

    def __init__(self, submit: Callable | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._submit = submit
        self.tree: GroupTree | None = None
        self.state: ExpandState | None = None
        self.drawing: Drawing | None = None
        self.overlay: Overlay | None = None
        self.colors: OverlayColors | None = None
        self.boxes: dict[int, BoxItem] = {}
        self.selected_node: int | None = None
        self.selected_item: int | None = None
        self.default_amount = 0.5
        self.last_build_s = 0.0  # GUI time the last drawing took, all steps together
        self.last_turn_s = 0.0  # the longest single turn of the event loop it took
        self._draw_token = 0
        self._matches: list[int] = []
        self._match_at = -1
        self._pending_focus: int | None = None
        self._generation = 0
        self.scene = QGraphicsScene(self)
        self.canvas = GraphCanvas(self.scene, self)
        self._build()

    # -- construction ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.search_edit = QLineEdit(placeholderText="Find node by name or op type (Enter: next match)")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.returnPressed.connect(self.find_next)
        self.search_edit.textChanged.connect(self._search_changed)
        self.match_label = QLabel()
        self.overlay_button = QToolButton(text="Colour by: Op type")
        self.overlay_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.overlay_button)
        group = QActionGroup(self)
        self.overlay_actions: dict[str, QAction] = {}
        for key, title in OVERLAYS:
            action = menu.addAction(title)
            action.setCheckable(True)
            action.setChecked(key == "op")
            action.triggered.connect(lambda _=False, k=key: self.choose_overlay(k))
            group.addAction(action)
            self.overlay_actions[key] = action
        self.overlay_button.setMenu(menu)
        buttons = [("Collapse all", self.collapse_all), ("Fit", self.fit), ("Export…", None)]
        row = QHBoxLayout()
        row.addWidget(self.search_edit, 1)
        row.addWidget(self.match_label)
        row.addWidget(self.overlay_button)
        for text, slot in buttons:
            button = QToolButton(text=text)
            if slot is None:
                export_menu = QMenu(button)
                export_menu.addAction("SVG…", lambda: self.export_dialog("svg"))
                export_menu.addAction("PNG…", lambda: self.export_dialog("png"))
                button.setMenu(export_menu)
                button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            else:
                button.clicked.connect(slot)
            row.addWidget(button)
        self.legend = QLabel(objectName="graphLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.legend.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.legend.setFixedWidth(230)
        self.legend.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.legend.setFrameShape(QFrame.Shape.StyledPanel)
        self.legend.setMargin(6)
        self.message = QLabel("Open a model to see its graph", objectName="graphMessage")
        self.message.setWordWrap(True)
        self.picture = QWidget(objectName="graphPicture")  # what Export writes: the graph and its legend
        body = QHBoxLayout(self.picture)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.canvas, 1)
        body.addWidget(self.legend)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(self.picture, 1)

    @property
    def n_nodes(self) -> int:
        return len(self.tree.graph) if self.tree is not None else 0

    # -- graph and layout ----------------------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        """A line above the graph (what is being done, or why there is no graph)."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def set_graph(self, tree: GroupTree | None) -> None:
        """Show a new graph, collapsed; None clears the tab."""
        self._generation += 1
        self.tree = tree
        self.state = ExpandState(tree) if tree is not None else None
        self.selected_node = self.selected_item = None
        self._matches, self._match_at = [], -1
        self.drawing = None
        self.scene.clear()
        self.boxes.clear()
        self.overlay = self.colors = None
        self.overlay_actions["op"].setChecked(True)
        self.overlay_button.setText("Colour by: Op type")
        self._show_legend()
        if tree is not None:
            self.show_message(f"{len(tree.graph):,} nodes in {len(tree.groups) - 1:,} groups; laying out…")
            self.relayout()
            self._default_overlay(tree)

    def _default_overlay(self, tree: GroupTree) -> None:
        """Op types, worked out with the layout (off the GUI thread when there is a runner)."""
        def done(overlay: Overlay) -> None:
            if self.tree is tree and self.overlay is None:
                self.set_overlay(overlay)

        if self._submit is None:
            done(op_overlay(tree.graph))
        else:
            self._submit("graph-op-overlay", lambda: op_overlay(tree.graph), done)

    def relayout(self) -> None:
        """Lay the current expanded state out in the background and draw it when done."""
        if self.tree is None:
            return
        tree, expanded, generation = self.tree, frozenset(self.state.expanded), self._generation

        def done(drawing: Drawing) -> None:
            if generation == self._generation:
                self._draw(drawing)

        if self._submit is None:
            done(draw_state(tree, expanded))
        else:
            self._submit("graph-layout", lambda: draw_state(tree, expanded), done,
                         lambda exc, _trace: self.show_message(f"Could not lay the graph out: {exc}"))

    def is_busy(self) -> bool:
        """True while the expanded state differs from what is drawn."""
        return self.tree is not None and (self.drawing is None or self.drawing.expanded != frozenset(
            self.state.expanded))

    def expand(self, gid: int) -> None:
        """Open group `gid` in place."""
        self.state.expand(gid)
        self.relayout()

    def collapse(self, gid: int) -> None:
        """Close group `gid` (and select it, so the eye keeps its place)."""
        self.state.collapse(gid)
        self._pending_focus = self.n_nodes + gid
        self.relayout()

    def collapse_all(self) -> None:
        if self.state is not None:
            self.state = ExpandState(self.tree)
            self.relayout()

    def _draw(self, drawing: Drawing) -> None:
        """Turn a layout into items. A drawing of more than DRAW_CHUNK items is built in steps of DRAW_CHUNK
        items, going on in the next turn of the event loop once a turn has used TURN_BUDGET_S, so the window
        keeps answering; a newer drawing arriving meanwhile drops the rest of the older one."""
        self._draw_token += 1
        token, first = self._draw_token, self.drawing is None
        old_center = self.canvas.mapToScene(self.canvas.viewport().rect().center())
        steps = [lambda: self._draw_begin()]
        steps += [lambda lo=lo: self._draw_frames(drawing, lo) for lo in range(0, len(drawing.frames), DRAW_CHUNK)]
        steps += [lambda lo=lo: self._draw_boxes(drawing, lo) for lo in range(0, len(drawing.items), DRAW_CHUNK)]
        steps += [lambda lo=lo: self._draw_edges(drawing, lo) for lo in range(0, len(drawing.edge_a), EDGE_CHUNK)]
        steps.append(lambda: setattr(self, "drawing", drawing))
        steps += [lambda lo=lo: self._recolor(drawing.items[lo:lo + DRAW_CHUNK].tolist())
                  for lo in range(0, len(drawing.items), DRAW_CHUNK)]
        steps.append(lambda: self._draw_end(drawing, first, old_center))
        self.last_build_s = self.last_turn_s = 0.0
        small = len(drawing.items) + len(drawing.frames) <= DRAW_CHUNK  # drawn at once, whatever the load
        self._run_steps(steps, token, budget=float("inf") if small else TURN_BUDGET_S)

    def _run_steps(self, steps: list, token: int, budget: float = TURN_BUDGET_S) -> None:
        if token != self._draw_token:  # a newer drawing took over
            return
        turn = time.perf_counter()
        while steps:
            started = time.perf_counter()
            steps.pop(0)()
            self.last_build_s += time.perf_counter() - started
            if steps and time.perf_counter() - turn > budget:
                QTimer.singleShot(0, self, lambda: self._run_steps(steps, token))
                break
        self.last_turn_s = max(self.last_turn_s, time.perf_counter() - turn)

    def _draw_begin(self) -> None:
        self.scene.clear()
        self.boxes = {}

    def _draw_frames(self, drawing: Drawing, lo: int) -> None:
        for gid, left, top, right, bottom in drawing.frames[lo:lo + DRAW_CHUNK]:
            self.scene.addItem(FrameItem(gid, QRectF(left, top, right - left, bottom - top),
                                         self.tree.groups[gid].label))

    def _draw_boxes(self, drawing: Drawing, lo: int) -> None:
        layout, n = drawing.layout, self.n_nodes
        for k in range(lo, min(lo + DRAW_CHUNK, len(drawing.items))):
            item = int(drawing.items[k])
            box = BoxItem(item, item >= n, float(layout.x[k]), float(layout.y[k]), float(layout.widths[k]),
                          drawing.titles[k], drawing.subtitles[k])
            self.boxes[item] = box
            self.scene.addItem(box)

    def _draw_edges(self, drawing: Drawing, lo: int) -> None:
        layout, half, hi = drawing.layout, NODE_HEIGHT / 2, lo + EDGE_CHUNK
        segments = []
        for a, b, count in zip(drawing.edge_a[lo:hi].tolist(), drawing.edge_b[lo:hi].tolist(),
                               drawing.edge_count[lo:hi].tolist()):
            upward = layout.layer[b] <= layout.layer[a]
            segments.append((QPointF(layout.x[a], layout.y[a] + half), QPointF(layout.x[b], layout.y[b] - half),
                             count, upward))
        for path in edge_items(segments):
            self.scene.addItem(path)

    def _draw_end(self, drawing: Drawing, first: bool, old_center) -> None:
        self.scene.setSceneRect(QRectF(-60, -60, drawing.layout.width + 120, drawing.layout.height + 120))
        self._mark_selection()
        self._mark_matches()
        self.show_message("")
        if first:
            self.fit()
        focus = self._pending_focus
        self._pending_focus = None
        if focus is not None and focus in self.boxes:
            self.select_item(focus, from_user=True)
            self.canvas.centerOn(self.boxes[focus])
        elif not first:
            self.canvas.centerOn(old_center)
        self.drawn.emit()

    def fit(self) -> None:
        """Zoom so the whole drawing fits, but never below a readable scale for big drawings."""
        rect = self.scene.sceneRect()
        if rect.isEmpty():
            return
        self.canvas.resetTransform()
        view = self.canvas.viewport().rect()
        scale = min(view.width() / rect.width(), view.height() / rect.height(), 1.0)
        scale = max(scale, 0.7)
        self.canvas.scale(scale, scale)
        self.canvas.centerOn(rect.center().x(), rect.top() + view.height() / (2 * scale))

    # -- overlays ----------------------------------------------------------------------------------------------
    def choose_overlay(self, key: str) -> None:
        """Ask for an overlay (the controller answers with set_overlay)."""
        self.overlay_actions[key].setChecked(True)
        self.overlay_button.setText(f"Colour by: {dict(OVERLAYS)[key]}")
        self.overlay_requested.emit(key)

    def current_overlay_key(self) -> str:
        return next(k for k, a in self.overlay_actions.items() if a.isChecked())

    def set_overlay(self, overlay: Overlay) -> None:
        """Colour the nodes by `overlay` and show its legend."""
        if self.tree is None or len(overlay.numeric if overlay.numeric is not None else overlay.categories) \
                != self.n_nodes:
            return
        self.overlay = overlay
        self.colors = OverlayColors(overlay)
        self._show_legend()
        self._recolor()

    def _show_legend(self) -> None:
        self.legend.setText(legend_html(self.colors) if self.colors is not None else "")

    def _recolor(self, items: list[int] | None = None) -> None:
        if self.colors is None:
            return
        for item in (items if items is not None else list(self.boxes)):
            box = self.boxes[item]
            stats = group_stats(self.overlay, self.tree, item - self.n_nodes) if item >= self.n_nodes else None
            box.set_fill(self._item_color(item, stats))
            box.setToolTip(self.item_tooltip(item, stats))

    def _item_color(self, item: int, stats):
        return item_color(self.colors, item, self.n_nodes, stats)

    def item_tooltip(self, item: int, stats=None) -> str:
        """Name, op type / size, layer and the overlay's value (min / max / sum for a group)."""
        return item_tooltip(self.tree, self.overlay, item, stats)

    # -- selection and search -----------------------------------------------------------------------------------
    def select_item(self, item: int, from_user: bool) -> None:
        """Select a visible item; a node computing a layer tells the table (`from_user`)."""
        self.selected_item = item
        self.selected_node = item if item < self.n_nodes else None
        self._mark_selection()
        layer = self.tree.graph.layers[item] if item < self.n_nodes else ""
        if from_user and layer:
            self.layer_selected.emit(layer)

    def show_layer(self, name: str) -> None:
        """Mark the node computing layer `name` (the table's current row): itself if visible, else the
        collapsed group holding it (dashed outline); nothing is expanded for it."""
        if self.tree is None or name not in self.tree.graph.layers:
            return
        node = self.tree.graph.layers.index(name)
        if self.selected_node == node:
            return
        self.selected_node = node
        self.selected_item = node
        self._mark_selection()
        rep = self._visible_item(node)
        if rep is not None and rep in self.boxes:
            self.canvas.ensureVisible(self.boxes[rep], 60, 60)

    def _visible_item(self, node: int) -> int | None:
        if self.drawing is None:
            return None
        return int(self.drawing.view.rep[node])

    def _mark_selection(self) -> None:
        rep = self._visible_item(self.selected_node) if self.selected_node is not None else None
        for item, box in self.boxes.items():
            box.set_marks(selected=item == self.selected_item, contains=rep == item and item != self.selected_item)

    def _search_changed(self, _text: str) -> None:
        self._matches, self._match_at = [], -1
        self.match_label.setText("")
        self._mark_matches()

    def find_next(self) -> None:
        """Go to the next node matching the search text, expanding the groups that hide it."""
        if self.tree is None:
            return
        if not self._matches:
            self._matches = self.tree.find(self.search_edit.text())
            self._match_at = -1
            if not self._matches:
                self.match_label.setText("no match")
                return
        self._match_at = (self._match_at + 1) % len(self._matches)
        node = self._matches[self._match_at]
        more = "+" if len(self._matches) >= 200 else ""
        self.match_label.setText(f"{self._match_at + 1} of {len(self._matches)}{more}")
        self.selected_node = node
        self._pending_focus = node
        self.state.reveal(node)
        if self.drawing is not None and self.drawing.expanded == frozenset(self.state.expanded):
            self._pending_focus = None
            self.select_item(node, from_user=True)
            self._mark_matches()
            self.canvas.centerOn(self.boxes[node])
        else:
            self.relayout()

    def _mark_matches(self) -> None:
        wanted = set(self._matches)
        for item, box in self.boxes.items():
            box.set_marks(matched=item in wanted)

    # -- context menu ------------------------------------------------------------------------------------------
    def layers_under(self, item: int) -> list[str]:
        """Layers computed by a node, or by every node inside a group, in graph order."""
        graph = self.tree.graph
        if item < self.n_nodes:
            return [graph.layers[item]] if graph.layers[item] else []
        nodes = np.sort(self.tree.group_nodes(item - self.n_nodes))
        return [graph.layers[i] for i in nodes.tolist() if graph.layers[i]]

    def item_menu(self, item: int, global_pos, expanded: bool = False) -> QMenu:
        """The context menu of a node or group: expand/collapse, recipe edits for its layers, re-run."""
        menu = build_item_menu(self, item, self.layers_under(item), expanded)
        if global_pos is not None:
            menu.popup(global_pos)
        return menu

    def ask_amount(self, names: list[str]) -> None:
        """Ask for the pruning amount of `names` (a method so tests can replace it)."""
        amount, ok = QInputDialog.getDouble(self, "Pruning amount", f"Prune {len(names)} layer(s) by (0-0.95):",
                                            self.default_amount, 0.0, 0.95, 2)
        if ok:
            self.amount_chosen.emit(names, float(amount))

    # -- export --------------------------------------------------------------------------------------------------
    def export_dialog(self, kind: str) -> None:
        path = self.ask_export_path(kind)
        if path:
            try:
                self.export(path)
            except ExportError as exc:
                self.show_message(str(exc))

    def ask_export_path(self, kind: str) -> str:
        """The file chooser (a method so tests can replace it)."""
        path, _ = QFileDialog.getSaveFileName(self, "Export graph", f"graph.{kind}", f"{kind.upper()} (*.{kind})")
        return path

    def export(self, path: str) -> None:
        """Write what is on screen (graph and legend) as SVG or PNG, by the file's extension."""
        if str(path).lower().endswith(".svg"):
            export_svg(self.picture, path, title="AccelStudio graph")
        else:
            export_png(self.picture, path)
