"""Recovery controls (undo, restore, hints, progress text), the results layout (table height, run-id labels,
latency axis from 0, short histogram title) and the window icon."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from accelstudio.app.plots import run_metrics as rm
from accelstudio.app.views.recovery_controls import (MODEL_EXAMPLE, MODEL_OTHER, MODEL_TORCH, LearningRateSpin,
                                               recovery_hints)
from accelstudio.app.views.results_panel import MIN_TABLE_ROWS, ResultsPanel, table_height
from accelstudio.app.control.run_controller import stage_text
from accelstudio.core.job import JobSpec, RunResult, RuntimeSettings
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe, RecoverySpec
from accelstudio.core.runs.store import RunStore

WAIT_MS = 30_000
RUN_MS = 240_000


def _run(recipe: Recipe, p50: float, acc: float, model: str = "example:digits-cnn") -> RunResult:
    spec = JobSpec(model=model, recipe=recipe, runtime=RuntimeSettings(threads=2))
    metrics = {"p50_ms": p50, "p90_ms": p50 * 1.2, "accuracy": acc, "n_eval": 360, "size_bytes": 100_000,
               "baseline_size_bytes": 150_000}
    return RunResult(status="done", spec=spec.to_dict(), metrics=metrics,
                     latencies_ms=list(np.linspace(p50 * 0.9, p50 * 1.5, 40)),
                     model_identity={"path": model, "sha256": "c" * 64, "name": "digits-cnn"})


@pytest.fixture
def runs_panel(qtbot, tmp_path):
    store = RunStore(tmp_path / "runs.db")
    recipes = [Recipe(), Recipe(prune=PruneSpec(amount=0.5)),
               Recipe(prune=PruneSpec(amount=0.5), recovery=RecoverySpec(method="distill", epochs=2)),
               Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=True))]
    ids = [store.add_run(_run(r, p50=0.05 + 0.02 * i, acc=0.9 + 0.01 * i)) for i, r in enumerate(recipes)]
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.resize(1100, 440)
    panel.set_store(store)
    panel.set_current_model(sha256="c" * 64)
    panel.show()
    return panel, ids


# --- recovery controls ---------------------------------------------------------------------------------------

def test_recovery_controls_edit_the_recipe_and_undo_restores_it(window, qtbot):
    group = window.recipe_controls.recovery
    assert window.state.recipe.recovery == RecoverySpec()
    assert not group.epochs_spin.isEnabled() and not group.lr_spin.isEnabled()
    group.method_combo.setCurrentIndex(group.method_combo.findData("distill"))
    assert window.state.recipe.recovery.method == "distill"
    assert group.epochs_spin.isEnabled() and group.lr_spin.isEnabled()
    group.epochs_spin.setValue(7)
    group.lr_spin.setValue(0.01)
    assert window.state.recipe.recovery == RecoverySpec(method="distill", epochs=7, lr=0.01)
    window.recipe_controls.amount_spin.setValue(40)  # another control keeps the recovery settings
    assert window.state.recipe.recovery.epochs == 7 and window.state.recipe.prune.amount == pytest.approx(0.4)
    assert "distill 7 ep" in window.state.recipe.describe()
    for _ in range(4):
        window.undo_action.trigger()
    assert window.state.recipe == Recipe()
    assert group.method_combo.currentData() == "none" and group.epochs_spin.value() == 3
    window.redo_action.trigger()
    assert window.state.recipe.recovery.method == "distill"
    assert group.method_combo.currentData() == "distill"


def test_learning_rate_box_steps_along_a_log_ladder(qtbot):
    spin = LearningRateSpin()
    qtbot.addWidget(spin)
    spin.setValue(1e-3)
    spin.stepBy(1)
    assert spin.value() == pytest.approx(3e-3)
    spin.stepBy(-2)
    assert spin.value() == pytest.approx(3e-4)
    spin.setValue(2e-4)  # between rungs: one step lands on the next rung
    spin.stepBy(1)
    assert spin.value() == pytest.approx(3e-4)
    assert spin.textFromValue(1e-5) == "1e-05" and spin.valueFromText("0.02") == pytest.approx(0.02)


def test_restoring_a_run_with_recovery_sets_the_controls(window, qtbot):
    recipe = Recipe(prune=PruneSpec(amount=0.5, method="l1-structured"),
                    recovery=RecoverySpec(method="finetune", epochs=4, lr=3e-4))
    spec = JobSpec(model="example:digits-cnn", recipe=recipe, runtime=RuntimeSettings(runtime="torch"))
    window.results.restore_requested.emit(RunResult(status="done", spec=spec.to_dict(), run_id=5))
    assert window.state.recipe == recipe
    group = window.recipe_controls.recovery
    assert group.method_combo.currentData() == "finetune"
    assert group.epochs_spin.value() == 4 and group.lr_spin.value() == pytest.approx(3e-4)
    predicted = window.model_view.totals.labels["predicted"]  # the recipe summary names the recovery
    qtbot.waitUntil(lambda: "finetune 4 ep" in predicted.toolTip(), timeout=WAIT_MS)
    window.undo_action.trigger()
    assert group.method_combo.currentData() == "none"


def test_recovery_hints_for_unpruned_recipes_and_non_torch_models(window, qtbot):
    on = RecoverySpec(method="finetune")
    assert recovery_hints(Recipe(), MODEL_OTHER) == []  # recovery off: nothing to say
    assert [h.code for h in recovery_hints(Recipe(recovery=on), MODEL_EXAMPLE)] == ["recovery-unpruned"]
    pruned = Recipe(prune=PruneSpec(amount=0.3), recovery=on)
    assert recovery_hints(pruned, MODEL_EXAMPLE) == []
    assert [h.code for h in recovery_hints(pruned, MODEL_OTHER)] == ["recovery-not-torch"]
    assert [h.code for h in recovery_hints(pruned, MODEL_TORCH)] == ["recovery-no-data"]

    hint = window.recipe_controls.recovery.hint
    group = window.recipe_controls.recovery
    assert not hint.isVisibleTo(window)
    group.method_combo.setCurrentIndex(group.method_combo.findData("finetune"))
    assert hint.isVisibleTo(window) and "Nothing is pruned" in hint.text.text()
    window.recipe_controls.amount_spin.setValue(30)
    assert not hint.isVisibleTo(window)
    window.recipe_controls.set_model_kind(MODEL_OTHER)  # as for an ONNX file the user opened
    assert hint.isVisibleTo(window) and "torch model" in hint.text.text()


def test_recovery_hint_follows_the_open_model(make_window, qtbot):
    window = make_window()
    with qtbot.waitSignal(window.model_loaded, timeout=WAIT_MS):
        window.open_model("example:digits-mlp", backend="onnx")
    window.state.edit("t", recipe=Recipe(prune=PruneSpec(amount=0.3), recovery=RecoverySpec(method="distill")))
    assert not window.recipe_controls.recovery.hint.isVisibleTo(window)  # examples bring training data


def test_progress_names_the_recover_step(window):
    text = stage_text("compress", "recover: finetune epoch 2/3: loss 0.4100")
    assert text == "Compressing › recovering accuracy: finetune epoch 2/3: loss 0.4100"
    assert stage_text("compress", "prune: pruning: l1-structured") == "Compressing › pruning: l1-structured"
    assert stage_text("benchmark", "") == "Measuring"
    window.runs._set_running(True)
    window.runs._progress("compress", 0.5, "recover: distill epoch 1/2: loss 1.2", {})
    assert "recovering accuracy: distill epoch 1/2" in window.stage_label.text()
    assert window.progress_bar.value() == 500
    window.runs._set_running(False)


def test_a_run_with_recovery_shows_the_recover_step(window, qtbot, dialog_answers):
    recipe = Recipe(prune=PruneSpec(amount=0.6), recovery=RecoverySpec(method="finetune", epochs=1))
    runtime = replace(window.state.runtime, runtime="torch", device="cpu", warmup=2, repeats=20, time_budget_s=1.0)
    window.state.edit("test settings", recipe=recipe, runtime=runtime)
    seen: list[str] = []
    window.runs.bridge.progress.connect(lambda *_: seen.append(window.stage_label.text()))
    with qtbot.waitSignal(window.runs.run_finished, timeout=RUN_MS) as finished:
        assert window.runs.start_run()
    result = finished.args[0]
    assert result.status == "done", result.reason
    assert result.spec["recipe"]["recovery"]["method"] == "finetune"
    assert any("recovering accuracy" in text for text in seen), seen


# --- results layout --------------------------------------------------------------------------------------

def test_runs_table_keeps_its_rows_visible(runs_panel, make_window, qtbot):
    panel, _ = runs_panel
    table = panel.table
    assert table.minimumHeight() >= table_height(table, MIN_TABLE_ROWS)
    rows = table.verticalHeader().defaultSectionSize()
    assert table.minimumHeight() >= table.horizontalHeader().sizeHint().height() + MIN_TABLE_ROWS * rows
    window = make_window(load=False)
    for width, height in ((1500, 950), (1280, 800)):
        window.resize(width, height)
        qtbot.waitUntil(lambda w=width: window.width() == w)
        qtbot.waitUntil(lambda: window.results.table.viewport().height() >= MIN_TABLE_ROWS * rows)
        assert window.results.tradeoff.height() >= 150  # the plots shrink, but stay readable


def test_scatter_labels_each_run_and_latency_axis_starts_at_zero(runs_panel, qtbot):
    panel, ids = runs_panel
    plot = panel.tradeoff
    assert set(plot.id_labels) == set(ids)
    for run_id, label in plot.id_labels.items():
        assert label.toPlainText().strip() == str(run_id)
        run = panel.run(run_id)
        if label.isVisible():  # beside its point: within a label's width of it
            near = plot.plotItem.vb.mapViewToScene(QPointF(run.metrics["p50_ms"], rm.quality(run).value))
            box = label.sceneBoundingRect()
            assert abs(box.center().x() - near.x()) < box.width() + 20
            assert abs(box.center().y() - near.y()) < box.height() + 20
    assert plot.baseline_item is not None and len(plot.baseline_item.points()) == 1
    assert plot.front_ids
    x_low, x_high = plot.plotItem.viewRange()[0]
    assert x_low >= 0.0 and x_high > max(panel.run(i).metrics["p50_ms"] for i in ids)
    panel.scope.setCurrentIndex(1)
    assert plot.plotItem.viewRange()[0][0] >= 0.0


def test_latency_title_is_short_and_the_recipe_is_in_the_tooltip(runs_panel):
    panel, ids = runs_panel
    panel.select_run(ids[2])
    title = panel.histogram.plotItem.titleLabel.text
    assert title.startswith(f"Latency of run {ids[2]}") and "prune" not in title
    assert "prune 50%" in panel.histogram.toolTip() and "distill 2 ep" in panel.histogram.toolTip()


def test_empty_results_plots_say_what_fills_them(qtbot):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    assert panel.tradeoff.placeholder is not None and "Run" in panel.tradeoff.placeholder.toPlainText()
    assert panel.histogram.placeholder is not None and panel.sizes.placeholder is not None


# --- window icon -------------------------------------------------------------------------------------------

def test_window_and_application_icon(window):
    from accelstudio.app.main import identify_application

    assert not window.windowIcon().isNull() and not window.windowIcon().pixmap(32, 32).isNull()
    app = QApplication.instance()
    saved = (app.applicationName(), app.organizationName(), app.applicationDisplayName(),
             QGuiApplication.desktopFileName(), app.windowIcon())
    try:
        identify_application(app)
        assert not app.windowIcon().isNull()
        assert not app.windowIcon().pixmap(64, 64).isNull()  # the image files were read
        assert QGuiApplication.desktopFileName() == "accelstudio"
    finally:
        app.setApplicationName(saved[0])
        app.setOrganizationName(saved[1])
        app.setApplicationDisplayName(saved[2])
        QGuiApplication.setDesktopFileName(saved[3])
        app.setWindowIcon(saved[4])


def test_long_run_details_never_push_the_window_past_720_pixels(make_window, qtbot):
    window = make_window(load=False)
    panel = window.results
    panel.summary.setText("Run 9: vs baseline run 1 (onnxruntime on cpu, 2 threads, batch 1): 1.32x faster "
                          "(95% CI 1.22-1.43x); Fidelity: cosine 0.9999; 3.9x smaller " * 2)
    panel.details.setText("\n".join(f"warning {i}: the baseline was measured on a busy machine" for i in range(12)))
    qtbot.waitUntil(lambda: window.minimumSizeHint().height() > 0)
    assert window.minimumSizeHint().height() <= 720
