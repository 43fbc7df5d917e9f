"""The Graph tab's canvas (zoom, pan, clicks, double-clicks, context menus) and the context menu of a node or
group: recipe edits for the layers under it (the same per-layer rules as the layer table) and a re-run."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView, QMenu

from accelstudio.app.views.graph_items import BoxItem, FrameItem

ZOOM_STEP = 1.2
GRAPH_ACTIONS = (
    ("quant-exclude", "Keep in float (exclude from quantization)"),
    ("quant-include", "Quantize again"),
    ("prune-exclude", "Exclude from pruning"),
    ("prune-include", "Include in pruning again"),
    ("override", "Set pruning amount…"),
    ("clear-override", "Clear pruning amount"),
)


class GraphCanvas(QGraphicsView):
    """The scene's view: wheel zooms around the cursor, dragging the background pans."""

    def __init__(self, scene: QGraphicsScene, owner):  # owner: the GraphView whose items it shows
        super().__init__(scene)
        self.owner = owner
        self.setObjectName("graphCanvas")
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt's name
        factor = ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP
        self.scale(factor, factor)

    def pick(self, point):
        """The box or frame under a viewport point (edges, drawn as a few big paths, are looked through)."""
        return next((it for it in self.items(point) if isinstance(it, (BoxItem, FrameItem))), None)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        item = self.pick(event.position().toPoint())
        if isinstance(item, BoxItem) and event.button() == Qt.MouseButton.LeftButton:
            self.owner.select_item(item.item_id, from_user=True)
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt's name
        point = event.position().toPoint()
        item = self.pick(point)
        if isinstance(item, BoxItem) and item.is_group:
            self.owner.expand(item.item_id - self.owner.n_nodes)
        elif isinstance(item, FrameItem) and item.header_rect().contains(item.mapFromScene(self.mapToScene(point))):
            self.owner.collapse(item.group_id)
        else:
            super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - Qt's name
        item = self.pick(event.pos())
        if isinstance(item, BoxItem):
            self.owner.item_menu(item.item_id, event.globalPos())
        elif isinstance(item, FrameItem):
            self.owner.item_menu(self.owner.n_nodes + item.group_id, event.globalPos(), expanded=True)


def build_item_menu(view, item: int, names: list[str], expanded: bool) -> QMenu:
    """The context menu of visible item `item` of `view` (a node, or a group: n_nodes + group id), whose
    recipe actions act on the layers `names`."""
    menu = QMenu(view)
    n = view.n_nodes
    is_group = item >= n
    label = view.tree.groups[item - n].path.lstrip("/") if is_group else view.tree.graph.names[item]
    title = menu.addAction(f"{label}  ({len(names)} layer{'s' if len(names) != 1 else ''})")
    title.setEnabled(False)
    if is_group:
        gid = item - n
        if expanded:
            menu.addAction("Collapse group", lambda: view.collapse(gid))
        else:
            menu.addAction("Expand group", lambda: view.expand(gid))
    menu.addSeparator()
    for key, text in GRAPH_ACTIONS:
        action = menu.addAction(text)
        action.setEnabled(bool(names))
        if key == "override":
            action.triggered.connect(lambda _=False, chosen=names: view.ask_amount(chosen))
        else:
            action.triggered.connect(lambda _=False, k=key, chosen=names: view.layer_action.emit(k, chosen))
    menu.addSeparator()
    menu.addAction("Re-run with these settings (F5)", view.rerun_requested.emit)
    return menu
