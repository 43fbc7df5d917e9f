"""The window's totals strip on a graph nobody here wrote: totals agree with the table, no phantom
"after recipe" figure, and the prediction shown is the core's prediction for the recipe."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import onnx
import pytest

from accelstudio.core.recipe import QuantSpec, Recipe
from accelstudio.core.compress.size_prediction import predict_size

WAIT_MS = 60_000
RESNET50 = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light" / "light_resnet50.onnx"


@pytest.fixture
def resnet_window(window, qtbot, monkeypatch):
    monkeypatch.setattr(window, "ask_open_path", lambda: str(RESNET50))
    with qtbot.waitSignal(window.model_loaded, timeout=WAIT_MS):
        window.open_action.trigger()
    qtbot.waitUntil(window.models.is_settled,
                    timeout=WAIT_MS)
    return window


def test_resnet50_header_totals_match_the_table(resnet_window):
    summary = resnet_window.state.model.summary
    labels = resnet_window.model_view.totals.labels
    rows = resnet_window.model_view.table_model
    table_params = sum(layer.params for layer in rows._layers)
    assert table_params == 25_557_032
    assert f"{table_params + summary.other_params:,}" in labels["params"].text()
    assert f"{summary.other_params:,} other parameters" in labels["params"].toolTip()
    assert "102.4" in labels["size"].text()  # MB: weights, biases and BatchNorm statistics in float32
    assert float(labels["flops"].text().split("<b>")[1].split("<")[0]) > 8000  # MFLOPs at 1x3x224x224


def test_no_recipe_shows_no_after_recipe_size(resnet_window, qtbot):
    predicted = resnet_window.model_view.totals.labels["predicted"]
    qtbot.waitUntil(lambda: "no change" in predicted.text(), timeout=WAIT_MS)
    assert "MB" not in predicted.text()


def test_recipe_prediction_is_the_core_prediction_and_names_float_layers(resnet_window, qtbot):
    window = resnet_window
    window.state.edit("onnx runtime", runtime=replace(window.state.runtime, runtime="onnxruntime"))
    window.state.edit("dynamic int8", recipe=Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=True)))
    predicted = window.model_view.totals.labels["predicted"]
    expected = predict_size(window.state.model.summary, window.state.recipe, window.state.prediction, "onnx")
    qtbot.waitUntil(lambda: f"{expected.bytes / 1e6:.3f} MB" in predicted.text(), timeout=WAIT_MS)
    # dynamic int8 quantizes the fc layer only: the 53 convolutions stay float32, and the strip says so
    assert "stay float" in predicted.text() and "Conv" in predicted.toolTip()
    assert 0.9 * window.state.model.summary.total_bytes < expected.bytes < window.state.model.summary.total_bytes
    window.undo_action.trigger()
    qtbot.waitUntil(lambda: "no change" in predicted.text(), timeout=WAIT_MS)
