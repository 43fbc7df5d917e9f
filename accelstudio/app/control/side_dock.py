"""Docks for studies (Search, Sensitivity): a tab beside the Controls, scrolling, hidden until opened, so the
window still fits 1280x720 with one open."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QScrollArea, QWidget


def side_tab_dock(window, title: str, name: str, panel: QWidget) -> QDockWidget:
    """A hidden dock holding `panel` in a scroll area, tabbed with the window's Controls dock."""
    dock = QDockWidget(title, window, objectName=name)
    scroll = QScrollArea(widgetResizable=True)
    scroll.setWidget(panel)
    dock.setWidget(scroll)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    window.tabifyDockWidget(window.controls_dock, dock)
    dock.hide()
    return dock
