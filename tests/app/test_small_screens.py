"""The window fits 1280x720 and 1366x768 screens, with and without presenter mode: Run, the layer table, the
trade-off plot, the runs table and the Export button are inside the window, shown whole and never zero-sized."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QApplication, QScrollArea

from accelstudio.app.control.presentation import PRESENTER_FONT, ZOOM_STEPS

SIZES = ((1280, 720), (1366, 768))


def key_widgets(window) -> dict:
    return {"run button": window.run_button, "layer table": window.model_view.table,
            "trade-off plot": window.results.tradeoff, "runs table": window.results.table,
            "export button": window.results.export_button}


def visible_part(widget, window) -> QRect:
    """The part of `widget` the user can see: clipped by every parent (scroll areas included) and the window."""
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        if not parent.isVisible():
            return QRect()
        rect = rect.intersected(QRect(parent.mapTo(window, QPoint(0, 0)), parent.size()))
        parent = parent.parentWidget()
    return rect.intersected(window.rect())


def assert_fits(window, qtbot, width: int, height: int, whole=("run button", "export button")) -> None:
    assert window.width() == width and window.height() == height, (window.size(), width, height)
    assert window.minimumSizeHint().height() <= height and window.minimumSizeHint().width() <= width
    for name, widget in key_widgets(window).items():
        assert widget.isVisible(), name
        shown = visible_part(widget, window)
        assert shown.width() > 20 and shown.height() > 20, (name, shown)
        if name in whole:  # buttons are shown whole
            assert shown.size() == widget.size(), (name, shown, widget.size())
        assert window.rect().contains(QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())), name
    table = window.model_view.table
    assert table.viewport().height() >= table.verticalHeader().defaultSectionSize()  # at least one layer row
    plots = [p for p in window.findChildren(pg.GraphicsView) if p.isVisible() and p.centralWidget is not None]
    assert window.model_view.size_bars in plots and window.results.tradeoff in plots
    for plot in plots:  # no title or axis widens a plot past its view (which would cut its right part off)
        qtbot.waitUntil(lambda p=plot: p.centralWidget.geometry().right() <= p.viewport().width() + 1)
    panel = window.controls_dock.findChild(QScrollArea, "controlsScroll").widget()
    assert panel.width() >= panel.minimumSizeHint().width()  # no control cut off at the right


LONG_SUMMARY = ("Run 9: vs baseline run 1 (onnxruntime on cpu, 2 threads, batch 1): 1.32x faster (95% CI "
                "1.22-1.43x); Fidelity: cosine 0.9999; 3.9x smaller ") * 2


@pytest.mark.parametrize("presenter", [False, True])
def test_window_fits_small_screens(make_window, qtbot, presenter):
    window = make_window()
    window.presentation.set_presenter(presenter)
    panel = window.results  # a finished run's verdict, details and warnings, as long as they get
    panel.summary.setText(LONG_SUMMARY)
    panel.details.setText("\n".join(f"warning {i}: the baseline was measured on a busy machine" for i in range(12)))
    panel.why.show()
    window.recipe_controls.prune_warning.show()
    for width, height in SIZES:
        window.resize(width, height)
        qtbot.waitUntil(lambda w=width, h=height: window.width() == w and window.height() == h)
        QApplication.processEvents()
        assert_fits(window, qtbot, width, height)
    window.lessons.dock.show()  # a lesson beside everything still fits
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.width() == 1280 and window.height() == 720)
    QApplication.processEvents()
    assert_fits(window, qtbot, 1280, 720)
    window.presentation.set_presenter(False)


def test_study_docks_open_beside_the_controls_still_fit(make_window, qtbot):
    """Search and Sensitivity open as tabs beside the Controls: the window keeps to 1280x720 and every study
    panel fits its dock's width (nothing cut off at the right)."""
    window = make_window()
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.width() == 1280 and window.height() == 720)
    for controller in (window.search, window.sensitivity):
        controller.open()
        QApplication.processEvents()
        assert window.width() == 1280 and window.height() == 720
        assert window.minimumSizeHint().width() <= 1280
        scroll = controller.dock.widget()
        assert scroll.viewport().width() >= controller.panel.minimumSizeHint().width(), controller.dock.objectName()
        assert window.tabifiedDockWidgets(window.controls_dock).count(controller.dock) == 1


def test_run_stays_in_view_however_long_the_controls(make_window, qtbot):
    window = make_window(load=False)
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.height() == 720)
    window.recipe_controls.recovery.hint.show()  # warnings under the controls make them longer than the dock
    for group in window.recipe_controls.findChildren(type(window.recipe_controls.recovery.hint)):
        group.show()
    QApplication.processEvents()
    shown = visible_part(window.run_button, window)
    assert shown.size() == window.run_button.size()
    window.runs._set_running(True)  # while a job runs, Cancel is in view too
    QApplication.processEvents()
    shown = visible_part(window.cancel_button, window)
    assert window.cancel_button.isVisible() and shown.size() == window.cancel_button.size()
    window.runs._set_running(False)


def test_presenter_mode_scales_text_and_plots_and_hides_secondary_docks(make_window, qtbot, settings):
    window = make_window(load=False)
    app = QApplication.instance()
    normal = app.font().pointSizeF()
    tradeoff = window.results.tradeoff
    tick = tradeoff.plotItem.getAxis("bottom").style["tickFont"].pointSizeF()
    window.profile_dock.show()
    window.presentation.presenter_action.trigger()
    assert window.presentation.presenter and settings.value("ui/presenter") in (True, "true")
    assert app.font().pointSizeF() == pytest.approx(normal * PRESENTER_FONT)
    assert tradeoff.plotItem.getAxis("bottom").style["tickFont"].pointSizeF() > tick
    assert window.theme.high_contrast and window.theme.colors().foreground in ("#000000", "#ffffff")
    assert not window.profile_dock.isVisible() and window.results_dock.isVisible()
    window.presentation.presenter_action.trigger()
    assert app.font().pointSizeF() == pytest.approx(normal)
    assert window.profile_dock.isVisible() and not window.theme.high_contrast


def test_zoom_keys_scale_the_whole_ui_and_are_remembered(make_window, qtbot, settings):
    window = make_window(load=False)
    app = QApplication.instance()
    normal = app.font().pointSizeF()
    axis = window.model_view.size_bars.plot.getAxis("left")
    window.presentation.zoom_in_action.trigger()
    window.presentation.zoom_in_action.trigger()
    zoom = window.presentation.zoom
    assert zoom > 1.0 and app.font().pointSizeF() == pytest.approx(normal * zoom)
    assert axis.style["tickFont"].pointSizeF() == pytest.approx(normal * zoom)
    assert axis.pen().widthF() == pytest.approx(zoom)
    assert float(settings.value("ui/zoom")) == pytest.approx(zoom)
    window.close()
    again = make_window(load=False)  # a new window starts at the kept zoom
    assert again.presentation.zoom == pytest.approx(zoom)
    assert app.font().pointSizeF() == pytest.approx(normal * zoom)
    again.presentation.zoom_reset_action.trigger()
    assert app.font().pointSizeF() == pytest.approx(normal)
    for _ in range(len(ZOOM_STEPS) + 2):
        again.presentation.zoom_out_action.trigger()
    assert again.presentation.zoom == ZOOM_STEPS[0]  # stops at the smallest step
    again.presentation.zoom_reset_action.trigger()


def test_lesson_text_grows_with_the_zoom(make_window):
    window = make_window(load=False)
    panel = window.lessons.panel
    title, formula = panel.title.font().pointSizeF(), panel.formula.font().pointSizeF()
    window.presentation.set_presenter(True)
    QApplication.processEvents()  # the application font reaches the widgets through posted events
    assert panel.title.font().pointSizeF() == pytest.approx(title * PRESENTER_FONT)
    assert panel.formula.font().pointSizeF() == pytest.approx(formula * PRESENTER_FONT)
    assert panel.title.font().bold()
    window.presentation.set_presenter(False)
    QApplication.processEvents()
    assert panel.title.font().pointSizeF() == pytest.approx(title)


def test_zoom_and_presenter_keys_work_from_the_keyboard(make_window, qtbot):
    from PySide6.QtCore import Qt

    window = make_window(load=False)
    window.activateWindow()
    window.model_view.filter_edit.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.model_view.filter_edit)
    qtbot.keyClick(window.model_view.filter_edit, Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier)
    assert window.presentation.zoom > 1.0
    qtbot.keyClick(window.model_view.filter_edit, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert window.presentation.zoom == 1.0
    qtbot.keyClick(window.model_view.filter_edit, Qt.Key.Key_P,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.presentation.presenter and window.presentation.presenter_action.isChecked()
    qtbot.keyClick(window.model_view.filter_edit, Qt.Key.Key_P,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert not window.presentation.presenter


def test_first_window_size_fits_the_screen_it_opens_on(monkeypatch, qapp):
    from PySide6.QtCore import QRect

    from accelstudio.app import main_window

    class Screen:
        def availableGeometry(self):
            return QRect(0, 0, 1280, 690)  # a 1280x720 screen less a panel

    monkeypatch.setattr(main_window.QApplication, "platformName", staticmethod(lambda: "xcb"))
    monkeypatch.setattr(main_window.QApplication, "primaryScreen", staticmethod(lambda: Screen()))
    assert main_window.default_size() == (1280, 690)
    monkeypatch.setattr(main_window.QApplication, "platformName", staticmethod(lambda: "offscreen"))
    assert main_window.default_size() == main_window.DEFAULT_SIZE  # no real screen: the nominal size
