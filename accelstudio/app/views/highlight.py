"""A visible frame around a widget the lesson talks about: drawn over the window, it pulses for a few seconds and
then stays as a thin outline while the step is shown. It follows the widget when docks move or resize, and the
widget is brought into view first (its dock shown, its tab chosen, its scroll area scrolled)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt, QTimer, QVariantAnimation
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QDockWidget, QScrollArea, QStackedWidget, QTabWidget, QWidget

PULSE_MS = 700
PULSES = 4
FOLLOW_MS = 150
MARGIN = 3
SETTLE_MS = 250


class HighlightFrame(QWidget):
    """An outline over `target`, painted on the top-level window; transparent to the mouse."""

    def __init__(self, window: QWidget, color: str = "#ff8c00", dashed: bool = False):
        super().__init__(window)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self._color, self._dashed = QColor(color), dashed
        self._strength = 1.0
        self.target: QWidget | None = None
        self._pulse = QVariantAnimation(self, startValue=0.25, endValue=1.0, duration=PULSE_MS)
        self._pulse.setLoopCount(PULSES)
        self._pulse.valueChanged.connect(self._set_strength)
        self._pulse.finished.connect(lambda: self._set_strength(0.8))
        self._follow = QTimer(self, interval=FOLLOW_MS)
        self._follow.timeout.connect(self._place)
        self.hide()

    def show_on(self, target: QWidget | None) -> None:
        """Frame `target` (None: hide); brings it into view and starts the pulse."""
        self.target = target
        if target is None:
            self._follow.stop()
            self._pulse.stop()
            self.hide()
            return
        bring_into_view(target)
        # again once the layout has settled: a step's edits can show or hide warnings above the target
        QTimer.singleShot(SETTLE_MS, self, lambda: self.target is target and bring_into_view(target))
        self._place()
        self.show()
        self.raise_()
        self._pulse.stop()
        self._pulse.start()
        self._follow.start()

    def _place(self) -> None:
        target = self.target
        if target is None or not target.isVisible():
            self.setVisible(False)
            return
        rect = visible_rect(target, self.parentWidget())
        if rect.isEmpty():
            self.setVisible(False)
            return
        rect = rect.adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)
        if rect != self.geometry():
            self.setGeometry(rect)
        self.setVisible(True)
        self.raise_()

    def _set_strength(self, value) -> None:
        self._strength = float(value)
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = QColor(self._color)
        color.setAlphaF(max(0.2, min(1.0, self._strength)))
        pen = QPen(color, 2 + 2 * self._strength)
        if self._dashed:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawRoundedRect(self.rect().adjusted(2, 2, -2, -2), 6, 6)


def visible_rect(widget: QWidget, window: QWidget) -> QRect:
    """`widget`'s rectangle in `window` coordinates, cut to what its scroll areas and splitters let show."""
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        rect &= QRect(parent.mapTo(window, QPoint(0, 0)), parent.size())
        parent = parent.parentWidget()
    return rect


def bring_into_view(widget: QWidget) -> None:
    """Show the docks, tabs and stacked pages that hold `widget`, and scroll scroll areas to it."""
    child, parent = widget, widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QDockWidget) and not parent.isVisible():
            parent.show()
            parent.raise_()
        if isinstance(parent, QStackedWidget) and parent.indexOf(child) >= 0:
            parent.setCurrentWidget(child)
            tabs = parent.parentWidget()
            if isinstance(tabs, QTabWidget):
                tabs.setCurrentWidget(child)
        if isinstance(parent, QScrollArea):
            parent.ensureWidgetVisible(widget, 0, 20)
            if parent.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff:
                parent.horizontalScrollBar().setValue(0)  # never scroll a panel sideways out of sight
        child, parent = parent, parent.parentWidget()
