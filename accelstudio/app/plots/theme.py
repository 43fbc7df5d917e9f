"""Light and dark themes. "system" follows QStyleHints.colorScheme (and its changes); the View menu can force
light or dark. The Fusion style draws both from a palette; plots restyle through `ThemeManager.changed`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEME_MODES = ("system", "light", "dark")
TITLE_SIZE = "10pt"


@dataclass(frozen=True)
class PlotColors:
    """Colours plots use; chosen for contrast on their background."""

    background: str
    foreground: str
    grid_alpha: float
    primary: str  # current values
    secondary: str  # predicted values
    grid_line: str  # quantization levels
    muted: str


LIGHT = PlotColors("#ffffff", "#202124", 0.25, "#1f77b4", "#ff7f0e", "#d62728", "#9aa0a6")
DARK = PlotColors("#1e1f22", "#e8eaed", 0.3, "#5aa9e6", "#ffa94d", "#ff6b6b", "#80868b")


def dark_palette() -> QPalette:
    """A dark Fusion palette with readable disabled text and a blue highlight."""
    p = QPalette()
    base, window, text = QColor(30, 31, 34), QColor(43, 45, 48), QColor(232, 234, 237)
    roles = {
        QPalette.ColorRole.Window: window, QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base, QPalette.ColorRole.AlternateBase: QColor(38, 40, 43),
        QPalette.ColorRole.ToolTipBase: QColor(60, 63, 65), QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text, QPalette.ColorRole.Button: window,
        QPalette.ColorRole.ButtonText: text, QPalette.ColorRole.BrightText: QColor(255, 107, 107),
        QPalette.ColorRole.Link: QColor(90, 169, 230), QPalette.ColorRole.Highlight: QColor(53, 116, 240),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.PlaceholderText: QColor(150, 154, 160),
        QPalette.ColorRole.Mid: QColor(70, 72, 76), QPalette.ColorRole.Dark: QColor(20, 21, 23),
        QPalette.ColorRole.Light: QColor(80, 82, 86), QPalette.ColorRole.Midlight: QColor(62, 64, 68),
    }
    for role, color in roles.items():
        p.setColor(role, color)
    grey = QColor(128, 132, 138)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, grey)
    return p


def light_palette() -> QPalette:
    """Fusion's own light palette."""
    from PySide6.QtWidgets import QStyleFactory

    return QStyleFactory.create("Fusion").standardPalette()


class ThemeManager(QObject):
    """Applies the chosen theme to the application and tells plots when light/dark flips."""

    changed = Signal(bool)  # True when dark

    def __init__(self, app: QApplication, mode: str = "system", parent: QObject | None = None):
        super().__init__(parent)
        self._app = app
        self._mode = mode if mode in THEME_MODES else "system"
        self._dark: bool | None = None
        app.setStyle("Fusion")
        app.styleHints().colorSchemeChanged.connect(self._system_changed)
        self.apply()

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def is_dark(self) -> bool:
        return bool(self._dark)

    def colors(self) -> PlotColors:
        """Plot colours for the active theme."""
        return DARK if self._dark else LIGHT

    def set_mode(self, mode: str) -> None:
        """'system', 'light' or 'dark'."""
        if mode not in THEME_MODES:
            raise ValueError(f"unknown theme {mode!r}; choose one of {', '.join(THEME_MODES)}")
        self._mode = mode
        hints = self._app.styleHints()
        if mode == "system":
            hints.unsetColorScheme()
        else:
            hints.setColorScheme(Qt.ColorScheme.Dark if mode == "dark" else Qt.ColorScheme.Light)
        self.apply()

    def apply(self) -> None:
        """Set the palette and pyqtgraph defaults for the current mode; emit `changed` when it flips."""
        dark = self._wants_dark()
        self._app.setPalette(dark_palette() if dark else light_palette())
        colors = DARK if dark else LIGHT
        pg.setConfigOptions(background=colors.background, foreground=colors.foreground, antialias=True)
        if dark != self._dark:
            self._dark = dark
            self.changed.emit(dark)

    def _wants_dark(self) -> bool:
        if self._mode != "system":
            return self._mode == "dark"
        return self._app.styleHints().colorScheme() == Qt.ColorScheme.Dark

    def _system_changed(self, _scheme) -> None:
        if self._mode == "system":
            self.apply()


def style_plot(plot: pg.PlotItem, colors: PlotColors) -> None:
    """Recolour a plot's axes, labels and title for `colors` (pyqtgraph sets colours only at creation)."""
    pen = pg.mkPen(colors.foreground)
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pen)
        axis.setTextPen(pen)
        if axis.labelText:
            style = dict(axis.labelStyle, color=colors.foreground)
            axis.setLabel(axis.labelText, units=axis.labelUnits or None, **style)
    if plot.titleLabel is not None and plot.titleLabel.text:
        plot.setTitle(plot.titleLabel.text, color=colors.foreground, size=TITLE_SIZE)
    plot.showGrid(x=False, y=True, alpha=colors.grid_alpha)
