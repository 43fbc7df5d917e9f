"""apply_recipe orchestration (copy, progress, cancel, quantize hand-off) and export_model round trips."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file

from accelstudio.core.model.architectures import get_architecture
from accelstudio.core.compress.apply import apply_recipe
from accelstudio.core.errors import CompressionError, JobCancelled
from accelstudio.core.model.examples import get_example
from accelstudio.core.compress.export import export_model, to_onnx_handle
from accelstudio.core.progress import Cancel
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe

from compress_helpers import example_handle, param_total, torch_weights

PRUNE_HALF = Recipe(prune=PruneSpec(amount=0.5))
STRUCTURED = Recipe(prune=PruneSpec(amount=0.5, method="l1-structured", scope="layer"))


def digits(name: str, n: int = 50) -> np.ndarray:
    return np.load(get_example(name).data_path)["x"][:n]


def run_ort(path_or_bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path_or_bytes) if not isinstance(path_or_bytes, bytes) else path_or_bytes,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("recipe", [PRUNE_HALF, STRUCTURED])
def test_input_torch_handle_is_never_changed(recipe):
    handle = example_handle("digits-cnn")
    before = {k: v.clone() for k, v in handle.module.state_dict().items()}
    result = apply_recipe(handle, recipe)
    after = handle.module.state_dict()
    assert set(before) == set(after) and all(torch.equal(before[k], after[k]) for k in before)
    assert result.handle.module is not handle.module
    assert result.handle.source is None and result.handle.metadata["recipe"] == recipe.to_dict()
    assert result.handle.metadata["derived_from"] == str(handle.source)


def test_input_onnx_handle_is_never_changed():
    handle = example_handle("digits-cnn", "onnx")
    before = handle.onnx_model.SerializeToString()
    result = apply_recipe(handle, PRUNE_HALF)
    assert handle.onnx_model.SerializeToString() == before
    assert result.handle.onnx_model.SerializeToString() != before


def test_identity_recipe_copies_without_reports():
    handle = example_handle("digits-mlp")
    result = apply_recipe(handle, Recipe())
    assert result.layers == () and result.warnings == ()
    x = torch.from_numpy(digits("digits-mlp"))
    with torch.no_grad():
        assert torch.equal(result.handle.module(x), handle.module(x))


def test_progress_reports_the_prune_stage_and_cancel_stops_between_layers():
    handle = example_handle("digits-cnn")
    events = []
    apply_recipe(handle, PRUNE_HALF, progress=events.append)
    assert {e.stage for e in events} == {"prune"} and events[-1].fraction == 1.0
    cancel = Cancel()

    def cancel_after_first_layer(event):
        if event.fraction > 0:
            cancel.set()

    with pytest.raises(JobCancelled):
        apply_recipe(handle, PRUNE_HALF, progress=cancel_after_first_layer, cancel=cancel)
    with pytest.raises(JobCancelled):
        apply_recipe(handle, STRUCTURED, progress=cancel_after_first_layer, cancel=cancel)


def test_unknown_exclusion_is_reported_even_without_pruning():
    from accelstudio.core.errors import RecipeError

    with pytest.raises(RecipeError, match="fc1, fc2, fc3"):
        apply_recipe(example_handle("digits-mlp"), Recipe(prune=PruneSpec(exclude=("fc4",))))


def test_static_int8_without_calibration_data_says_what_to_pass():
    handle = example_handle("digits-mlp")
    anonymous = handle.with_model(module=handle.module, example=None)
    with pytest.raises(CompressionError, match="calibration"):
        apply_recipe(anonymous, Recipe(quantize=QuantSpec(mode="static-int8")))


def test_prune_then_quantize_torch_end_to_end():
    pytest.importorskip("accelstudio.core.compress.quant_torch")
    handle = example_handle("digits-mlp")
    recipe = Recipe(prune=PruneSpec(amount=0.5), quantize=QuantSpec(mode="dynamic-int8", per_channel=True))
    events = []
    result = apply_recipe(handle, recipe, progress=events.append)
    assert [e.stage for e in events][0] == "prune" and events[-1].stage == "quantize"
    x = torch.from_numpy(digits("digits-mlp"))
    with torch.no_grad():
        assert result.handle.module(x).shape == (len(x), 10)
    assert {w.code for w in result.warnings} >= {"sparsity-no-speedup"}


def test_prune_then_quantize_onnx_end_to_end(tmp_path):
    pytest.importorskip("accelstudio.core.compress.quant_onnx")
    handle = example_handle("digits-cnn", "onnx")
    recipe = Recipe(prune=PruneSpec(amount=0.5), quantize=QuantSpec(mode="dynamic-int8", per_channel=True))
    result = apply_recipe(handle, recipe)
    written = export_model(result.handle, tmp_path / "q.onnx", recipe)
    assert run_ort(written[0], digits("digits-cnn")).shape == (50, 10)


# ---------------------------------------------------------------------------------------------- export


def test_export_torch_to_onnx_runs_in_ort_with_any_batch(tmp_path):
    handle = example_handle("digits-cnn")
    result = apply_recipe(handle, STRUCTURED)
    written = export_model(result.handle, tmp_path / "small.onnx", STRUCTURED)
    assert written == [tmp_path / "small.onnx", tmp_path / "small.recipe.json"]
    x = digits("digits-cnn", 7)
    with torch.no_grad():
        expected = result.handle.module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_ort(written[0], x), expected, rtol=1e-4, atol=1e-4)
    assert Recipe.from_json(written[1].read_text()) == STRUCTURED
    assert not list(tmp_path.glob("*.tmp"))


def test_export_torchscript_loads_with_jit_load(tmp_path):
    handle = example_handle("digits-cnn")
    result = apply_recipe(handle, PRUNE_HALF)
    path = export_model(result.handle, tmp_path / "m.pt", PRUNE_HALF)[0]
    loaded = torch.jit.load(str(path))
    x = torch.from_numpy(digits("digits-cnn", 5))
    with torch.no_grad():
        assert torch.allclose(loaded(x), result.handle.module(x), atol=1e-5)


def test_export_safetensors_round_trip(tmp_path):
    handle = example_handle("digits-mlp")
    result = apply_recipe(handle, PRUNE_HALF)
    path = export_model(result.handle, tmp_path / "m.safetensors", PRUNE_HALF)[0]
    module = get_architecture("digits-mlp").build()
    module.load_state_dict(load_file(str(path)))
    assert all(np.array_equal(a, b) for a, b in zip(torch_weights(module).values(),
                                                    torch_weights(result.handle.module).values()))
    assert json.loads((tmp_path / "m.recipe.json").read_text())["prune"]["amount"] == 0.5


def test_export_refuses_what_it_cannot_write(tmp_path):
    handle = example_handle("digits-cnn")
    with pytest.raises(CompressionError, match=r"allowed extensions: \.onnx, \.pt, \.safetensors"):
        export_model(handle, tmp_path / "m.h5")
    with pytest.raises(CompressionError, match="own source file"):
        export_model(handle, handle.source)
    with pytest.raises(CompressionError, match="own source file"):  # a result derived from it, too
        export_model(apply_recipe(handle, PRUNE_HALF).handle, handle.source)
    structured = apply_recipe(handle, STRUCTURED).handle
    assert param_total(structured.module) < param_total(handle.module)
    with pytest.raises(CompressionError, match=r"no longer fit.*structured.*\.pt"):
        export_model(structured, tmp_path / "m.safetensors")
    with pytest.raises(CompressionError, match="cannot be written as TorchScript"):
        export_model(example_handle("digits-cnn", "onnx"), tmp_path / "m.pt")
    assert not list(tmp_path.iterdir())


def test_export_onnx_handle_and_to_onnx_handle(tmp_path):
    onnx_handle = example_handle("digits-mlp", "onnx")
    path = export_model(onnx_handle, tmp_path / "copy.onnx")[0]
    assert path.read_bytes() == onnx_handle.onnx_model.SerializeToString()
    converted = to_onnx_handle(example_handle("digits-mlp"))
    assert converted.backend == "onnx" and converted.source is None
    names = {t.name for t in converted.onnx_model.graph.initializer}
    assert {"fc1.weight", "fc2.weight", "fc3.weight"} <= names
    out = run_ort(converted.onnx_model.SerializeToString(), digits("digits-mlp"))
    assert out.shape == (50, 10)
