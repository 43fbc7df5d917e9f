"""The drawn pieces of the Graph tab: a box per visible node or collapsed group, a frame around each expanded
group, and the edges (a few path items in all, not one item per edge, so thousands of edges stay cheap)."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyleOptionGraphicsItem

from accelstudio.core.model.graph_layout import NODE_HEIGHT

BOX_RADIUS = 5.0
SELECTED_PEN = QColor("#ff2d7a")
MATCH_PEN = QColor("#ff9f1a")
FRAME_FILL = QColor(90, 120, 170, 22)
FRAME_PEN = QColor(90, 120, 170, 150)
EDGE_COLOR = QColor(110, 110, 110, 170)


def text_color(fill: QColor) -> QColor:
    """Black or white, whichever reads better on `fill`."""
    luminance = 0.299 * fill.redF() + 0.587 * fill.greenF() + 0.114 * fill.blueF()
    return QColor("#111111") if luminance > 0.55 else QColor("#ffffff")


class BoxItem(QGraphicsItem):
    """A visible node or collapsed group: a rounded box (stacked look for groups) with two lines of text."""

    def __init__(self, item_id: int, is_group: bool, x: float, y: float, width: float, title: str, subtitle: str):
        super().__init__()
        self.item_id, self.is_group = item_id, is_group
        self.title, self.subtitle = title, subtitle
        self.fill = QColor("#dddddd")
        self.selected_mark = False
        self.contains_selected = False
        self.matched = False
        self._rect = QRectF(-width / 2, -NODE_HEIGHT / 2, width, NODE_HEIGHT)
        self.setPos(x, y)
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setZValue(2)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return self._rect.adjusted(-4, -4, 8 if self.is_group else 4, 8 if self.is_group else 4)

    def set_fill(self, color: QColor) -> None:
        self.fill = color
        self.update()

    def set_marks(self, *, selected: bool | None = None, contains: bool | None = None,
                  matched: bool | None = None) -> None:
        if selected is not None:
            self.selected_mark = selected
        if contains is not None:
            self.contains_selected = contains
        if matched is not None:
            self.matched = matched
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        rect = self._rect
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.is_group:  # two offset outlines behind: "there is more inside"
            painter.setPen(QPen(QColor("#888888"), 1))
            painter.setBrush(QBrush(self.fill.lighter(115)))
            painter.drawRoundedRect(rect.translated(6, 6), BOX_RADIUS, BOX_RADIUS)
            painter.drawRoundedRect(rect.translated(3, 3), BOX_RADIUS, BOX_RADIUS)
        pen = QPen(QColor("#555555"), 1)
        if self.matched:
            pen = QPen(MATCH_PEN, 3)
        if self.contains_selected:
            pen = QPen(SELECTED_PEN, 2, Qt.PenStyle.DashLine)
        if self.selected_mark:
            pen = QPen(SELECTED_PEN, 3)
        painter.setPen(pen)
        painter.setBrush(QBrush(self.fill))
        painter.drawRoundedRect(rect, BOX_RADIUS, BOX_RADIUS)
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        if lod < 0.35:  # zoomed far out: text would be unreadable smudges
            return
        painter.setPen(text_color(self.fill))
        font = QFont(painter.font())
        font.setPointSizeF(8.5)
        font.setBold(self.is_group)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        inner = rect.adjusted(6, 2, -6, -2)
        top = QRectF(inner.left(), inner.top(), inner.width(), inner.height() / 2)
        bottom = QRectF(inner.left(), inner.center().y(), inner.width(), inner.height() / 2)
        elide = Qt.TextElideMode.ElideMiddle
        painter.drawText(top, Qt.AlignmentFlag.AlignCenter, metrics.elidedText(self.title, elide, int(inner.width())))
        font.setBold(False)
        font.setPointSizeF(7.5)
        painter.setFont(font)
        painter.drawText(bottom, Qt.AlignmentFlag.AlignCenter,
                         painter.fontMetrics().elidedText(self.subtitle, elide, int(inner.width())))


class FrameItem(QGraphicsItem):
    """An expanded group: a tinted frame around what it holds, its name on a tab at the top left."""

    HEADER = 16.0

    def __init__(self, group_id: int, rect: QRectF, label: str):
        super().__init__()
        self.group_id, self.label = group_id, label
        self._rect = rect.adjusted(0, -self.HEADER, 0, 0)
        self.setZValue(0)
        self.setToolTip(f"{label}\nexpanded group: double-click its tab to collapse it")

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return self._rect

    def header_rect(self) -> QRectF:
        return QRectF(self._rect.left(), self._rect.top(), min(self._rect.width(), 8 + len(self.label) * 6.6),
                      self.HEADER)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setPen(QPen(FRAME_PEN, 1, Qt.PenStyle.DashLine))
        painter.setBrush(FRAME_FILL)
        painter.drawRoundedRect(self._rect, 6, 6)
        header = self.header_rect()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(FRAME_PEN)
        painter.drawRoundedRect(header, 4, 4)
        painter.setPen(QColor("#ffffff"))
        font = QFont(painter.font())
        font.setPointSizeF(7.5)
        painter.setFont(font)
        painter.drawText(header.adjusted(4, 0, -2, 0), Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(self.label, Qt.TextElideMode.ElideLeft,
                                                          int(header.width() - 6)))


def edge_items(segments: list[tuple[QPointF, QPointF, int, bool]]) -> list[QGraphicsPathItem]:
    """Path items for all edges: (start, end, count, upward). Edges standing for many node-level edges are
    drawn thicker; edges against the layering (cycles made by grouping) dashed."""
    paths: dict[tuple[int, bool], QPainterPath] = {}
    for start, end, count, upward in segments:
        width = 1 if count <= 1 else 2 if count < 8 else 3
        path = paths.setdefault((width, upward), QPainterPath())
        dy = max(abs(end.y() - start.y()) / 2, 20.0)
        path.moveTo(start)
        path.cubicTo(QPointF(start.x(), start.y() + dy), QPointF(end.x(), end.y() - dy), end)
        _arrow(path, end)
    items = []
    for (width, upward), path in sorted(paths.items()):
        item = QGraphicsPathItem(path)
        item.setPen(QPen(EDGE_COLOR, width, Qt.PenStyle.DashLine if upward else Qt.PenStyle.SolidLine))
        item.setZValue(1)
        items.append(item)
    return items


def _arrow(path: QPainterPath, tip: QPointF, size: float = 5.0) -> None:
    path.moveTo(tip.x() - size * math.sin(math.pi / 4), tip.y() - size)
    path.lineTo(tip)
    path.lineTo(tip.x() + size * math.sin(math.pi / 4), tip.y() - size)
