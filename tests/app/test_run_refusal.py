"""The window refuses a recipe the opened model's format cannot take, before any worker starts."""

from __future__ import annotations

from dataclasses import replace

from accelstudio.core.recipe import PruneSpec, Recipe
from tests import factories as fx


def test_structured_pruning_of_an_onnx_file_is_refused_before_starting(window, qtbot, tmp_path):
    path = fx.onnx_example(tmp_path)
    with qtbot.waitSignal(window.model_loaded, timeout=120_000):
        window.open_model(str(path))
    runtime = replace(window.state.runtime, runtime="onnxruntime", device="cpu")
    window.state.edit("test", recipe=Recipe(prune=PruneSpec(amount=0.5, method="l1-structured")), runtime=runtime)
    assert window.runs.start_run() is False
    message = window.statusBar().currentMessage()
    assert message.startswith("Cannot run: ") and "structured pruning" in message and path.name in message
    assert not window.runs.is_running() and window.run_button.isEnabled()
