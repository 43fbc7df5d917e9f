"""Light and dark themes. "system" follows QStyleHints.colorScheme (and its changes); the View menu can force
light or dark. The Fusion style draws both from a palette; plots restyle through `ThemeManager.changed`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from accelstudio.app.plots.axis_ticks import keep_labels_apart

THEME_MODES = ("system", "light", "dark")
TITLE_SIZE = "10pt"
TITLE_POINTS = 10


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
# presenter mode: pure black on white (or white on black), stronger grid, saturated data colours
LIGHT_HIGH = PlotColors("#ffffff", "#000000", 0.45, "#0050a0", "#d55e00", "#c00000", "#606060")
DARK_HIGH = PlotColors("#000000", "#ffffff", 0.5, "#66c2ff", "#ffb000", "#ff5050", "#b0b0b0")


@dataclass
class PlotScale:
    """How much larger than normal plots draw their text (`font`) and lines (`line`): zoom and presenter mode
    set it through `set_plot_scale`; every plot reads it when it draws."""

    font: float = 1.0
    line: float = 1.0


_SCALE = PlotScale()


def set_plot_scale(font: float, line: float) -> None:
    """Text and line scale for plots drawn from now on (1.0: normal)."""
    _SCALE.font, _SCALE.line = float(font), float(line)


def plot_scale() -> PlotScale:
    """The current plot scale (a copy)."""
    return PlotScale(_SCALE.font, _SCALE.line)


def scaled_pen(color, width: float = 1.0, **options):
    """A pen `width` pixels wide at normal scale, wider in presenter mode or when zoomed in."""
    return pg.mkPen(color, width=width * _SCALE.line, **options)


def scaled_points(points: float) -> float:
    """A font size in points at the current plot scale."""
    return points * _SCALE.font


def title_size(points: float = TITLE_POINTS) -> str:
    """A title size for pyqtgraph's setTitle at the current scale ("13pt")."""
    return f"{scaled_points(points):.0f}pt"


def base_point_size() -> float:
    """The application's font size in points (what axis text is scaled from)."""
    app = QApplication.instance()
    size = app.font().pointSizeF() if app is not None else -1.0
    return size if size > 0 else 9.0


def keep_in_view(view: pg.GraphicsView) -> None:
    """Keep a plot view's central item the size of the view. Qt may grow a top-level graphics layout to a size
    it needed earlier (a longer title, larger text) after the view was resized, which pushes the plot's right
    part out of sight; this puts it back once the layout settles."""
    item = view.centralWidget

    def fit() -> None:
        if not view.closed and view.centralWidget is item and item.geometry() != view.range:
            item.setGeometry(view.range)  # never below the item's minimum: then it stays as Qt sized it

    item.geometryChanged.connect(lambda: QTimer.singleShot(0, view, fit))


def scale_axes(plot: pg.PlotItem, color=None) -> None:
    """Tick and label fonts of a plot's axes at the application's font size (which zoom already scales), and axis
    lines at the current line scale."""
    font = QFont(QApplication.font())
    font.setPointSizeF(base_point_size())
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        if axis is None:
            continue
        axis.setStyle(tickFont=font)
        keep_labels_apart(axis)
        if color is not None:
            axis.setPen(scaled_pen(color))
        else:
            pen = axis.pen()
            axis.setPen(scaled_pen(pen.color()))
        axis.label.setFont(font)
        if axis.labelText:
            style = dict(axis.labelStyle, **{"font-size": f"{base_point_size():.1f}pt"})
            axis.setLabel(axis.labelText, units=axis.labelUnits or None, **style)
        refit = getattr(axis, "refit", None)
        if refit is not None:
            refit()


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


def high_contrast(palette: QPalette, dark: bool) -> QPalette:
    """`palette` with pure black/white text and backgrounds and darker frames."""
    p = QPalette(palette)
    ink, paper = (QColor(255, 255, 255), QColor(0, 0, 0)) if dark else (QColor(0, 0, 0), QColor(255, 255, 255))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.ToolTipText):
        p.setColor(QPalette.ColorGroup.Active, role, ink)
        p.setColor(QPalette.ColorGroup.Inactive, role, ink)
    for role in (QPalette.ColorRole.Base, QPalette.ColorRole.Window):
        p.setColor(role, paper)
    p.setColor(QPalette.ColorRole.Button, QColor(48, 48, 48) if dark else paper)  # raised parts stay visible
    if dark:
        p.setColor(QPalette.ColorRole.Light, QColor(110, 110, 110))
        p.setColor(QPalette.ColorRole.Midlight, QColor(80, 80, 80))
    p.setColor(QPalette.ColorRole.AlternateBase, QColor(40, 40, 40) if dark else QColor(232, 232, 232))
    p.setColor(QPalette.ColorRole.Mid, QColor(160, 160, 160) if dark else QColor(90, 90, 90))
    p.setColor(QPalette.ColorRole.Dark, QColor(200, 200, 200) if dark else QColor(40, 40, 40))
    return p


class ThemeManager(QObject):
    """Applies the chosen theme to the application and tells plots when light/dark flips."""

    changed = Signal(bool)  # True when dark

    def __init__(self, app: QApplication, mode: str = "system", parent: QObject | None = None):
        super().__init__(parent)
        self._app = app
        self._mode = mode if mode in THEME_MODES else "system"
        self._dark: bool | None = None
        self._high_contrast = False
        app.setStyle("Fusion")
        app.styleHints().colorSchemeChanged.connect(self._system_changed)
        self.apply()

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def is_dark(self) -> bool:
        return bool(self._dark)

    @property
    def high_contrast(self) -> bool:
        return self._high_contrast

    def colors(self) -> PlotColors:
        """Plot colours for the active theme."""
        if self._high_contrast:
            return DARK_HIGH if self._dark else LIGHT_HIGH
        return DARK if self._dark else LIGHT

    def set_high_contrast(self, on: bool) -> None:
        """Black on white (or white on black) text and stronger plot colours, as presenter mode wants."""
        self._high_contrast = bool(on)
        self.apply()

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
        palette = dark_palette() if dark else light_palette()
        if self._high_contrast:
            palette = high_contrast(palette, dark)
        self._app.setPalette(palette)
        colors = (DARK_HIGH if dark else LIGHT_HIGH) if self._high_contrast else (DARK if dark else LIGHT)
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
    """Recolour a plot's axes, labels and title for `colors` (pyqtgraph sets colours only at creation), at the
    current plot scale."""
    pen = scaled_pen(colors.foreground)
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setTextPen(pg.mkPen(colors.foreground))
        if axis.labelText:
            style = dict(axis.labelStyle, color=colors.foreground)
            axis.setLabel(axis.labelText, units=axis.labelUnits or None, **style)
    scale_axes(plot, colors.foreground)
    for name in ("left", "bottom", "right", "top"):
        plot.getAxis(name).setPen(pen)
    if plot.titleLabel is not None and plot.titleLabel.text:
        plot.setTitle(plot.titleLabel.text, color=colors.foreground, size=title_size())
    plot.showGrid(x=False, y=True, alpha=colors.grid_alpha)
