"""The Sensitivity dock: hidden until Run > Sensitivity study..., runs a study of the open example through the
worker, draws the heatmap, selects the layer a cell names in the layer table, and edits the recipe undoably
(exclude the top k, per-layer amounts); the stored study comes back on reload."""

from __future__ import annotations

from PySide6.QtCore import Qt

STUDY_TIMEOUT_MS = 240_000


def _run_study(window, qtbot):
    controller = window.sensitivity
    panel = controller.panel
    panel.amounts.setText("50, 90")
    panel.samples.setValue(32)
    panel.budget.setValue(120)
    with qtbot.waitSignal(controller.study_shown, timeout=STUDY_TIMEOUT_MS):
        panel.run_button.click()
        assert controller.is_running() and panel.cancel_button.isEnabled()
    return controller


def test_dock_runs_a_study_and_its_heatmap_selects_layers(window, qtbot):
    controller = window.sensitivity
    assert not controller.dock.isVisible()
    action = next(a for a in window.menuBar().actions() if a.text() == "&Run").menu().actions()
    next(a for a in action if "Sensitivity" in a.text()).trigger()
    assert controller.dock.isVisible()
    _run_study(window, qtbot)
    result, panel = controller.result, controller.panel
    assert result["status"] == "done" and result["ranking"]
    assert set(result["ranking"]) <= set(window.state.layer_names())
    heatmap = panel.heatmap
    assert heatmap.labels == ["prune 50%", "prune 90%"] and heatmap.layers[0] == result["ranking"][0]
    assert not panel.cancel_button.isEnabled()
    row = 1
    qtbot.waitUntil(lambda: heatmap.plot.vb.height() > 20)
    point = heatmap.mapFromScene(heatmap.cell_center(row, 1))
    qtbot.mouseClick(heatmap.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert panel.selected_layer() == heatmap.layers[row]
    assert window.model_view.current_layer() == heatmap.layers[row]
    assert panel.table.item(row, 1).text() == heatmap.layers[row]


def test_exclude_top_k_and_amounts_edit_the_recipe_and_reload(window, qtbot):
    controller = _run_study(window, qtbot)
    ranking = controller.result["ranking"]
    panel, state = controller.panel, window.state
    panel.top_k.setValue(2)
    panel.exclude_prune.click()
    assert list(state.recipe.prune.exclude) == ranking[:2]
    window.undo_action.trigger()
    assert state.recipe.prune.exclude == ()
    assert not panel.keep_float.isEnabled()  # no quantization was screened
    panel.max_loss.setValue(100.0)
    panel.set_amounts.click()
    assert set(state.recipe.prune.overrides) == set(ranking) and set(state.recipe.prune.overrides.values()) == {0.9}
    study_id = controller.result["study_id"]
    controller.result = None
    controller.reload()
    assert controller.result["study_id"] == study_id and controller.result["ranking"] == ranking


def test_cancel_stops_the_worker_and_stores_the_study_as_stopped(window, qtbot):
    controller = window.sensitivity
    with qtbot.waitSignal(controller.thread.cancelled, timeout=STUDY_TIMEOUT_MS):
        controller.panel.run_button.click()
        controller.panel.cancel_button.click()
    assert "Cancelled" in controller.panel.status.text() and controller.panel.run_button.isEnabled()
    (record,) = window.runs.store.list_studies("sensitivity")
    assert record.status == "stopped"
