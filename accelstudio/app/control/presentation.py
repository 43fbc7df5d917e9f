"""Presenter mode and UI zoom: View > Presenter mode (Ctrl+Shift+P), Zoom in/out/reset (Ctrl+Plus, Ctrl+Minus,
Ctrl+0).

Zoom scales the application font and every plot's text and lines; presenter mode multiplies that by
PRESENTER_FONT (lines by PRESENTER_LINES), switches to high-contrast colours and hides the secondary docks
(shown again when it is switched off). Both are kept in the app's settings.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QFont, QFontMetrics, QKeySequence, QResizeEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QScrollArea, QTableView

from accelstudio.app.plots.theme import scale_axes, set_plot_scale
from accelstudio.app.views.results_panel import MIN_TABLE_ROWS, table_height

TITLE_REFIT_MS = 50  # after a font change, time for the plots' axes to take their new size
ZOOM_STEPS = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6, 1.8, 2.0)
PRESENTER_FONT = 1.25
PRESENTER_LINES = 2.0
PRESENTER_PLOT_SHARE = 0.75  # of their usual minimum height: large text must still fit a 720-pixel screen
MIN_CONTROLS_WIDTH, MAX_CONTROLS_WIDTH = 360, 540  # the controls dock is as wide as its widgets, within these
PRIMARY_DOCKS = ("controlsDock", "resultsDock", "lessonDock")  # stay as they are in presenter mode
BASE_FONT_PROPERTY = "accelstudioBaseFont"
ZOOM_KEY, PRESENTER_KEY, HIDDEN_KEY = "ui/zoom", "ui/presenter", "ui/presenterHiddenDocks"


def nearest_step(zoom: float) -> int:
    """Index of the zoom step closest to `zoom`."""
    return min(range(len(ZOOM_STEPS)), key=lambda i: abs(ZOOM_STEPS[i] - zoom))


class PresentationController(QObject):
    """Owns the zoom level and presenter mode of one window; `changed` after either is applied."""

    changed = Signal()

    def __init__(self, window, parent: QObject | None = None):
        super().__init__(parent or window)
        self.window = window
        self.settings = window.settings
        app = QApplication.instance()
        base = app.property(BASE_FONT_PROPERTY)  # the font before any window zoomed it
        if not isinstance(base, QFont):
            base = QFont(app.font())
            app.setProperty(BASE_FONT_PROPERTY, base)
        self._base_font = QFont(base)
        self._base_points = self._base_font.pointSizeF() if self._base_font.pointSizeF() > 0 else 9.0
        try:
            zoom = float(self.settings.value(ZOOM_KEY, 1.0))
        except (TypeError, ValueError):
            zoom = 1.0
        self._step = nearest_step(zoom)
        self._presenter = False
        self._hidden_docks: list[QDockWidget] = []
        view, results = window.model_view, window.results
        self._table_minimum = results.table.minimumHeight()
        self._split_sizes: list[int] | None = None  # the results split before presenter mode changed it
        self._plot_minimums = {plot: plot.minimumHeight() for plot in (
            view.size_bars, view.sparsity_bars, view.histogram, view.mask_heatmap,
            results.tradeoff, results.histogram, results.sizes)}
        self.presenter_action = self._action("&Presenter mode", self.set_presenter, "Ctrl+Shift+P",
                                             "Large fonts, thick lines, high contrast and fewer panels")
        self.presenter_action.setCheckable(True)
        self.zoom_in_action = self._action("Zoom &in", self.zoom_in, ["Ctrl++", "Ctrl+="],
                                           "Larger text and plots")
        self.zoom_out_action = self._action("Zoom &out", self.zoom_out, ["Ctrl+-"], "Smaller text and plots")
        self.zoom_reset_action = self._action("&Actual size", self.zoom_reset, ["Ctrl+0"], "Normal text size")

    def restore(self) -> None:
        """Zoom and presenter mode as last kept in the settings (after the window's layout is restored)."""
        self.fit_layout(QApplication.instance().font())
        if str(self.settings.value(PRESENTER_KEY, "false")).lower() == "true":
            hidden = self.settings.value(HIDDEN_KEY, [])
            names = {hidden} if isinstance(hidden, str) else set(hidden or [])
            self._hidden_docks = [d for d in self.secondary_docks() if d.objectName() in names]
            self.set_presenter(True)
        elif self._step != nearest_step(1.0):
            self.apply()

    def _action(self, text: str, slot, keys, tip: str) -> QAction:
        action = QAction(text, self.window)
        keys = keys if isinstance(keys, list) else [keys]
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.triggered.connect(slot)
        self.window.addAction(action)  # the shortcut works anywhere in the window
        return action

    def fill_menu(self, menu) -> None:
        """Presenter mode and the zoom entries, for the View menu."""
        menu.addSeparator()
        menu.addAction(self.presenter_action)
        for action in (self.zoom_in_action, self.zoom_out_action, self.zoom_reset_action):
            menu.addAction(action)

    # -- state ----------------------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return ZOOM_STEPS[self._step]

    @property
    def presenter(self) -> bool:
        return self._presenter

    def font_scale(self) -> float:
        """How much larger than normal the text is now."""
        return self.zoom * (PRESENTER_FONT if self._presenter else 1.0)

    def line_scale(self) -> float:
        """How much thicker than normal plot lines are now."""
        return self.zoom * (PRESENTER_LINES if self._presenter else 1.0)

    def zoom_in(self) -> None:
        self.set_zoom_step(self._step + 1)

    def zoom_out(self) -> None:
        self.set_zoom_step(self._step - 1)

    def zoom_reset(self) -> None:
        self.set_zoom_step(nearest_step(1.0))

    def set_zoom_step(self, step: int) -> None:
        step = max(0, min(len(ZOOM_STEPS) - 1, step))
        if step == self._step:
            return
        self._step = step
        self.settings.setValue(ZOOM_KEY, self.zoom)
        self.apply()
        self.window.statusBar().showMessage(f"Zoom {self.zoom:.0%}", 3000)

    def set_presenter(self, on: bool, remember: bool = True) -> None:
        """Switch presenter mode on or off (secondary docks hidden, then shown again); `remember` keeps the
        choice for the next start."""
        on = bool(on)
        self.presenter_action.setChecked(on)
        if on == self._presenter:
            return
        self._presenter = on
        if remember:
            self.settings.setValue(PRESENTER_KEY, on)
        if on:
            self._hidden_docks += [d for d in self.secondary_docks() if d.isVisible() and d not in self._hidden_docks]
            for dock in self._hidden_docks:
                dock.hide()
            self.settings.setValue(HIDDEN_KEY, [d.objectName() for d in self._hidden_docks])
        else:
            for dock in self._hidden_docks:
                dock.show()
            self._hidden_docks = []
        self.window.theme.set_high_contrast(on)
        self.apply()

    def secondary_docks(self) -> list[QDockWidget]:
        """Docks presenter mode hides: every dock but the controls, results and lesson."""
        return [d for d in self.window.findChildren(QDockWidget) if d.objectName() not in PRIMARY_DOCKS
                and d.parent() is self.window]

    def shutdown(self) -> None:
        """The window closes: the application font and plot scale go back to normal (the settings keep both)."""
        QApplication.instance().setFont(self._base_font)
        set_plot_scale(1.0, 1.0)
        if self._presenter:
            self.window.theme.set_high_contrast(False)

    # -- applying -------------------------------------------------------------------------------------------
    def apply(self) -> None:
        """Application font and plot scale for the current zoom and mode; every plot redraws."""
        font = QFont(self._base_font)
        font.setPointSizeF(self._base_points * self.font_scale())
        QApplication.instance().setFont(font)
        set_plot_scale(self.font_scale(), self.line_scale())
        self.fit_layout(font)
        self.restyle_plots()
        self.changed.emit()

    def fit_layout(self, font: QFont) -> None:
        """Table rows as tall as the text, smaller plot minimums in presenter mode (the window must still fit
        1280x720), the results text in fewer lines, and the controls dock as wide as its controls want."""
        row = max(22, QFontMetrics(font).height() + 6)
        for table in self.window.findChildren(QTableView):
            table.verticalHeader().setDefaultSectionSize(row)
        results = self.window.results.table
        results.setMinimumHeight(max(self._table_minimum, table_height(results, MIN_TABLE_ROWS)))
        self.window.results.fit_text_lines(QFontMetrics(font).lineSpacing(), compact=self._presenter)
        split = self.window.results.split
        if self._presenter and self._split_sizes is None:  # the plots take all but what the table needs
            self._split_sizes = split.sizes()
            split.setStretchFactor(1, 0)
            split.setSizes([sum(self._split_sizes), 0])
        elif not self._presenter and self._split_sizes is not None:
            split.setStretchFactor(1, 2)
            split.setSizes(self._split_sizes)
            self._split_sizes = None
        share = PRESENTER_PLOT_SHARE if self._presenter else 1.0
        for plot, height in self._plot_minimums.items():
            plot.setMinimumHeight(int(height * share))
        self.fit_controls_width()
        QTimer.singleShot(0, self, self.fit_controls_width)  # again once the new font has reached every layout

    def fit_controls_width(self) -> None:
        """The controls dock at least as wide as its widgets want (within the MIN/MAX_CONTROLS_WIDTH)."""
        dock = self.window.controls_dock
        scroll = dock.findChild(QScrollArea, "controlsScroll")
        if scroll is None or scroll.widget() is None:
            return
        wanted = scroll.widget().minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 8
        dock.setMinimumWidth(int(min(max(wanted, MIN_CONTROLS_WIDTH), MAX_CONTROLS_WIDTH)))

    def restyle_plots(self) -> None:
        """Every plot in the window at the current scale: axes, titles, pens."""
        for widget in self.window.findChildren(pg.GraphicsView):
            rescale = getattr(widget, "rescale", None)
            if rescale is not None:
                rescale()
                continue
            for item in widget.items():
                if isinstance(item, pg.PlotItem):
                    scale_axes(item)
        self.window.refresh_plot_colors()
        QTimer.singleShot(TITLE_REFIT_MS, self, self.refit_titles)

    def refit_titles(self) -> None:
        """Plots choose their title for their width and axis; once the new font has resized their axes, each
        chooses again (a resize event of its own size), so no title is wider than its plot."""
        for widget in self.window.findChildren(pg.GraphicsView):
            if widget.isVisible():
                QApplication.sendEvent(widget, QResizeEvent(widget.size(), widget.size()))
