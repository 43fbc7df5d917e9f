"""Opening another model resets what belonged to the previous one: the runs listed under 'Show: This model',
the plots and verdict, per-layer settings naming layers the new model lacks, recipe parts its format cannot do,
and the data choices (remembered per model and brought back when it is opened again)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from accelstudio.core.data.settings import DataSettings
from accelstudio.core.model.examples import get_example
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe
from tests import factories as fx
from tests.app.test_window_runs import RUN_MS, short_run


def _example_subset(tmp_path, name: str = "digits-cnn", n: int = 60):
    with np.load(get_example(name).data_path) as npz:
        path = tmp_path / f"{name}-subset.npz"
        np.savez(path, x=npz["x"][:n], labels=npz["labels"][:n])
    return str(path.resolve())


def test_switching_models_resets_runs_plots_recipe_and_data(window, qtbot, tmp_path, dialog_answers):
    data_a = _example_subset(tmp_path)
    first_layer = window.state.layer_names()[0]
    recipe = Recipe(prune=PruneSpec(amount=0.3, method="l1-structured", overrides={first_layer: 0.5}),
                    quantize=QuantSpec(mode="dynamic-int8", per_channel=True, exclude=(first_layer,)))
    short_run(window, recipe)
    window.state.edit("data", data=DataSettings(data=data_a))
    with qtbot.waitSignal(window.runs.run_finished, timeout=RUN_MS) as finished:
        assert window.runs.start_run()
    run_a = finished.args[0]
    assert run_a.status == "done", run_a.reason
    assert run_a.spec["data"] == data_a
    assert window.results.table.model().rowCount() >= 1 and window.results.selected_ids() == [run_a.run_id]
    assert window.results.histogram.latencies.size > 0 and window.results.sizes.bars

    model_b = fx.onnx_example(tmp_path, "digits-mlp")
    with qtbot.waitSignal(window.model_loaded, timeout=RUN_MS):
        window.open_model(str(model_b))
    results = window.results
    assert results.table.model().rowCount() == 0  # "Show: This model": none of digits-cnn's runs
    assert results.selected_ids() == [] and results.histogram.latencies.size == 0 and results.sizes.bars == []
    assert results.summary.text().startswith("Select a run")
    recipe_b = window.state.recipe
    assert recipe_b.prune.method == "l1-unstructured" and recipe_b.prune.amount == 0.3
    assert recipe_b.prune.overrides == {} and recipe_b.quantize.exclude == ()
    message = window.statusBar().currentMessage()
    assert "structured pruning became l1-unstructured" in message and "naming layers this model lacks" in message
    assert window.state.data == DataSettings()  # digits-cnn's data file does not feed this model
    assert window.data_panel.badge.isVisible() and window.data_panel.problem() == ""
    assert not window.state.undo_stack.canUndo()
    assert window.recipe_controls.method_combo.currentData() == "l1-unstructured"

    with qtbot.waitSignal(window.runs.run_finished, timeout=RUN_MS) as finished:
        assert window.runs.start_run()
    run_b = finished.args[0]
    assert run_b.status == "done", run_b.reason  # the carried-over recipe now fits the ONNX graph
    assert run_b.spec["data"] is None and run_b.spec["recipe"]["prune"]["method"] == "l1-unstructured"
    assert [results.proxy.index(r, 0).data() for r in range(results.proxy.rowCount())] == [str(run_b.run_id)]

    with qtbot.waitSignal(window.model_loaded, timeout=RUN_MS):
        window.open_default()
    assert window.state.data == DataSettings(data=data_a)  # remembered for digits-cnn
    assert str(run_a.run_id) in [results.proxy.index(r, 0).data() for r in range(results.proxy.rowCount())]
    assert str(run_b.run_id) not in [results.proxy.index(r, 0).data() for r in range(results.proxy.rowCount())]
    assert dialog_answers.boxes == []


def test_recovery_is_turned_off_for_an_onnx_graph(window, qtbot, tmp_path):
    recipe = window.state.recipe
    window.state.edit("recovery", recipe=replace(recipe, prune=replace(recipe.prune, amount=0.3),
                                                 recovery=replace(recipe.recovery, method="finetune")))
    assert window.state.recipe.recovery.active
    with qtbot.waitSignal(window.model_loaded, timeout=RUN_MS):
        window.open_model(str(fx.onnx_example(tmp_path, "digits-mlp")))
    assert window.state.recipe.recovery.method == "none"
    assert "accuracy recovery was turned off" in window.statusBar().currentMessage()
