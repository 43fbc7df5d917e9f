"""The main window: loading, the layer table, predictions, the histogram grid, themes, undo, dialogs."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox

from accelstudio.core.model.inspect import inspect_model
from accelstudio.core.model.loading import open_model
from tests import factories as fx

WAIT_MS = 30_000


def table_names(window) -> list[str]:
    proxy = window.model_view.proxy
    return [proxy.index(r, 0).data() for r in range(proxy.rowCount())]


def test_opens_with_default_example_and_lists_its_layers(window):
    expected = [layer.name for layer in inspect_model(open_model("example:digits-cnn")).layers]
    assert table_names(window) == expected == ["conv1", "conv2", "fc1", "fc2"]
    assert window.state.model.handle.backend == "torch"
    assert "digits-cnn" in window.windowTitle()
    assert "38,282" in window.model_view.totals.labels["params"].text()
    assert window.size().width() >= 1200
    assert window.model_view.size_bars.axis.visible_names() == expected


def test_examples_menu_lists_every_example_in_both_forms(window):
    from accelstudio.core.model.examples import list_examples

    texts = [a.text() for a in window.examples_menu.actions()]
    n = len(list_examples())
    assert n == 4 and len(texts) == 2 * n
    assert sum("ONNX" in t for t in texts) == n and sum("PyTorch" in t for t in texts) == n
    assert any("ViT" in t for t in texts)


def test_filter_keeps_matching_rows(window, qtbot):
    window.model_view.filter_edit.setText("fc")
    assert table_names(window) == ["fc1", "fc2"]
    window.model_view.filter_edit.setText("CONV2D")  # type column, case-insensitive
    assert table_names(window) == ["conv1", "conv2"]
    window.model_view.filter_edit.setText("nothing-like-this")
    assert table_names(window) == []
    assert window.model_view.count_label.text() == "0 of 4 layers"
    window.model_view.filter_edit.clear()
    assert len(table_names(window)) == 4


def test_sorting_by_params_is_numeric(window):
    window.model_view.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    assert table_names(window) == ["fc1", "conv2", "fc2", "conv1"]


def test_prune_slider_updates_predicted_sparsity(window, qtbot):
    model = window.model_view.table_model
    assert model.predicted("fc1") == pytest.approx(0.0)
    window.recipe_controls.amount_slider.setValue(50)
    assert window.recipe_controls.amount_spin.value() == 50
    qtbot.waitUntil(lambda: (model.predicted("fc1") or 0) > 0.2, timeout=WAIT_MS)
    layers = window.state.model.summary.layers
    reports = {r.name: r for r in window.state.prediction}
    zeros = sum(reports[layer.name].achieved * layer.params for layer in layers)
    assert zeros / sum(layer.params for layer in layers) == pytest.approx(0.5, abs=0.02)  # global: 50% overall
    assert window.model_view.sparsity_bars.predicted[2] == pytest.approx(model.predicted("fc1"))
    assert "nonzero" in window.model_view.totals.labels["predicted"].text()


def test_excluded_layer_is_predicted_dense(window, qtbot):
    window.model_view.select_layer("fc1")
    window.recipe_controls.selection_action.emit("prune-exclude")
    assert window.state.recipe.prune.exclude == ("fc1",)
    window.recipe_controls.amount_spin.setValue(60)
    qtbot.waitUntil(lambda: (window.model_view.table_model.predicted("conv2") or 0) > 0.3, timeout=WAIT_MS)
    assert window.model_view.table_model.predicted("fc1") == 0.0
    row = window.model_view.table_model.layer_names().index("fc1")
    assert window.model_view.table_model.index(row, 9).data() == "no pruning"


def test_histogram_shows_selected_layer_with_quantization_grid(window, qtbot):
    hist = window.model_view.histogram
    window.model_view.select_layer("fc1")
    qtbot.waitUntil(lambda: hist.layer == "fc1", timeout=WAIT_MS)
    assert hist.grid_levels.size == 0  # mode none: no grid
    controls = window.recipe_controls
    controls.mode_combo.setCurrentIndex(controls.mode_combo.findData("dynamic-int8"))
    qtbot.waitUntil(lambda: hist.grid_levels.size == 255, timeout=WAIT_MS)  # int8 symmetric: -127..127
    controls.mode_combo.setCurrentIndex(controls.mode_combo.findData("sim"))
    assert controls.bits_slider.isEnabled()
    controls.bits_slider.setValue(2)
    controls.symmetric_check.setChecked(False)
    qtbot.waitUntil(lambda: hist.grid_levels.size == 4, timeout=WAIT_MS)  # 2-bit asymmetric: 4 levels
    controls.symmetric_check.setChecked(True)
    qtbot.waitUntil(lambda: hist.grid_levels.size == 3, timeout=WAIT_MS)  # 2-bit symmetric: -1, 0, 1
    assert "3 levels" in hist.plot.titleLabel.text


def test_hardware_warnings_sit_under_their_control(window, qtbot):
    controls = window.recipe_controls
    assert controls.prune_warning.isHidden() and controls.quant_warning.isHidden()
    controls.amount_spin.setValue(30)  # unstructured zeros: no speed-up on dense kernels
    qtbot.waitUntil(lambda: not controls.prune_warning.isHidden(), timeout=WAIT_MS)
    controls.mode_combo.setCurrentIndex(controls.mode_combo.findData("sim"))
    qtbot.waitUntil(lambda: not controls.quant_warning.isHidden(), timeout=WAIT_MS)
    assert any(w.code == "simulated-quantization" for w in controls.quant_warning.warnings)
    assert all(w.control == "prune" for w in controls.prune_warning.warnings)


def test_runtime_choices_are_only_available_ones(window):
    from accelstudio.core.measure.runtimes import available_runtimes

    combo = window.runtime_panel.backend_combo
    offered = {combo.itemData(i) for i in range(combo.count())}
    assert offered == {o.runtime for o in available_runtimes()}
    assert window.runtime_panel.threads_spin.value() >= 1


def test_undo_and_redo_a_slider_change(window, qtbot):
    assert window.undo_action.shortcut() == QKeySequence("Ctrl+Z")
    assert QKeySequence("Ctrl+Shift+Z") in window.redo_action.shortcuts()
    window.recipe_controls.amount_slider.setValue(40)
    assert window.state.recipe.prune.amount == pytest.approx(0.4)
    window.undo_action.trigger()
    assert window.state.recipe.prune.amount == 0.0
    assert window.recipe_controls.amount_slider.value() == 0
    window.redo_action.trigger()
    assert window.state.recipe.prune.amount == pytest.approx(0.4)
    assert window.recipe_controls.amount_spin.value() == 40
    qtbot.waitUntil(lambda: (window.model_view.table_model.predicted("fc1") or 0) > 0.1, timeout=WAIT_MS)


def test_theme_switch_recolours_app_and_plots(window):
    window.set_theme("dark")
    assert window.theme.is_dark
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() < 100
    assert QColor(window.model_view.histogram.backgroundBrush().color()).lightness() < 100
    assert window.theme_actions["dark"].isChecked()
    window.set_theme("light")
    assert not window.theme.is_dark
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() > 150
    assert QColor(window.model_view.histogram.backgroundBrush().color()).lightness() > 200
    assert window.settings.value("theme") == "light"
    window.set_theme("system")


def test_torchscript_file_asks_for_trust_and_opens_when_trusted(window, qtbot, tmp_path, dialog_answers):
    path = fx.torchscript_file(tmp_path)
    dialog_answers.answer = QMessageBox.StandardButton.Yes
    with qtbot.waitSignal(window.model_loaded, timeout=WAIT_MS) as loaded:
        window.open_model(str(path))
    assert dialog_answers.names() == ["trustDialog"]
    assert "code while they load" in dialog_answers.boxes[0].informativeText()
    assert loaded.args[0].trust is True
    assert table_names(window) == ["conv", "fc"]
    assert window.recent_files()[0] == str(path.resolve())


def test_untrusted_file_is_not_opened(window, qtbot, tmp_path, dialog_answers):
    path = fx.torchscript_file(tmp_path)
    window.open_model(str(path))
    qtbot.waitUntil(lambda: dialog_answers.names() == ["trustDialog"], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.models.loader.is_loading(), timeout=WAIT_MS)
    assert window.state.model.ref == "example:digits-cnn"
    assert "not trusted" in window.statusBar().currentMessage()


def test_bad_file_shows_error_dialog_and_app_stays_up(window, qtbot, tmp_path, dialog_answers):
    path = fx.random_bytes_file(tmp_path)
    window.open_model(str(path))
    qtbot.waitUntil(lambda: dialog_answers.names() == ["errorDialog"], timeout=WAIT_MS)
    box = dialog_answers.boxes[0]
    assert path.name in box.text()
    assert box.detailedText()  # the technical details are one click away
    assert window.isVisible() and window.state.model.ref == "example:digits-cnn"
    with qtbot.waitSignal(window.model_loaded, timeout=WAIT_MS):  # still works afterwards
        window.open_model("example:digits-mlp", backend="onnx")
    assert window.state.model.handle.backend == "onnx"


def test_file_open_action_and_recent_files(window, qtbot, tmp_path, monkeypatch):
    path = fx.onnx_example(tmp_path)
    monkeypatch.setattr(window, "ask_open_path", lambda: str(path))
    assert window.open_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    with qtbot.waitSignal(window.model_loaded, timeout=WAIT_MS):
        window.open_action.trigger()
    assert window.state.model.handle.backend == "onnx"
    assert window.recent_files() == [str(path.resolve())]
    for i in range(12):
        window.add_recent(str(tmp_path / f"m{i}.onnx"))
    assert len(window.recent_files()) == 10


def test_drop_a_file_onto_the_window_opens_it(window, qtbot, tmp_path):
    path = fx.onnx_example(tmp_path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.model_loaded, timeout=WAIT_MS):
        window.dropEvent(event)
    assert window.state.model.ref == str(path)


def test_restore_a_run_puts_its_settings_back(window, qtbot):
    from accelstudio.core.job import JobSpec, RunResult, RuntimeSettings
    from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe

    recipe = Recipe(prune=PruneSpec(amount=0.6), quantize=QuantSpec(mode="fp16"))
    spec = JobSpec(model="example:digits-cnn", recipe=recipe, runtime=RuntimeSettings(runtime="torch", batch=4))
    window.results.restore_requested.emit(RunResult(status="done", spec=spec.to_dict(), run_id=7))
    assert window.state.recipe == recipe
    assert window.recipe_controls.amount_slider.value() == 60
    assert window.runtime_panel.batch_spin.value() == 4
    other = JobSpec(model="example:digits-mlp", recipe=Recipe(prune=PruneSpec(amount=0.2)))
    with qtbot.waitSignal(window.model_loaded, timeout=WAIT_MS):
        window.results.restore_requested.emit(RunResult(status="done", spec=other.to_dict(), run_id=8))
    assert window.state.model.ref == "example:digits-mlp"
    assert window.state.recipe.prune.amount == pytest.approx(0.2)


def test_layout_is_saved_and_restored(make_window, settings):
    first = make_window(load=False)
    first.results_dock.hide()
    first.close()
    assert settings.value("geometry") is not None and settings.value("windowState") is not None
    second = make_window(load=False)
    assert second.results_dock.isHidden() and not second.controls_dock.isHidden()

