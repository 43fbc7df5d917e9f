"""Fake quantization: grid levels, rounding, per-channel scales, and its effect on the digits-cnn example."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file

from accelstudio.core.model.architectures import get_architecture
from accelstudio.core.errors import RecipeError
from accelstudio.core.model.examples import get_example
from accelstudio.core.compress.quant_sim import (fake_quantize_tensor, quantization_grid, quantization_notes,
                                        simulate_quantization_onnx, simulate_quantization_torch)
from accelstudio.core.recipe import QuantSpec

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cnn():
    info = get_example("digits-cnn")
    module = get_architecture(info.architecture).build()
    module.load_state_dict(load_file(info.weights_path))
    data = np.load(info.data_path)
    return module.eval(), onnx.load(info.onnx_path), data["x"], data["labels"]


def _torch_predict(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).argmax(1).numpy()


def _onnx_predict(model, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0].argmax(1)


# ------------------------------------------------------------------------------------------ the grid itself

def test_symmetric_grid_has_balanced_levels_and_keeps_the_extreme():
    w = np.random.default_rng(0).normal(size=(8, 50)).astype(np.float32)
    q = fake_quantize_tensor(w, bits=3, per_channel=False, symmetric=True)
    assert q.dtype == np.float32 and q.shape == w.shape
    scale = np.abs(w).max() / 3  # codes -3..3
    codes = q / scale
    assert np.allclose(codes, np.round(codes), atol=1e-4)
    assert set(np.round(codes).astype(int).ravel()) <= set(range(-3, 4))
    assert np.isclose(np.abs(q).max(), np.abs(w).max(), rtol=1e-6)
    assert np.abs(q - w).max() <= scale / 2 + 1e-6


def test_asymmetric_grid_uses_all_levels_with_a_zero_point():
    w = np.random.default_rng(1).uniform(-0.2, 1.0, size=(4, 100)).astype(np.float32)
    q = fake_quantize_tensor(w, bits=2, per_channel=False, symmetric=False)
    levels = np.unique(q)
    assert len(levels) <= 4
    assert np.any(np.isclose(quantization_grid(w, 2, False, False), 0.0, atol=1e-7))  # zero is exact
    assert np.abs(q - w).max() <= (1.2 / 3) / 2 + 1e-6


def test_per_channel_keeps_small_channels_that_per_tensor_rounds_to_zero():
    w = np.stack([np.linspace(-100, 100, 32), np.linspace(-0.1, 0.1, 32)]).astype(np.float32)
    per_tensor = fake_quantize_tensor(w, 4, per_channel=False, symmetric=True)
    per_channel = fake_quantize_tensor(w, 4, per_channel=True, symmetric=True)
    assert np.all(per_tensor[1] == 0)
    assert np.abs(per_channel[1] - w[1]).max() < 0.01
    along_last = fake_quantize_tensor(w.T.copy(), 4, per_channel=True, symmetric=True, axis=1)
    assert np.allclose(along_last.T, per_channel)


def test_torch_tensors_come_back_as_torch_tensors():
    w = torch.randn(6, 3, 3, 3)
    q = fake_quantize_tensor(w, 8, per_channel=True, symmetric=True)
    assert isinstance(q, torch.Tensor) and q.dtype == torch.float32 and q.shape == w.shape
    assert torch.allclose(q, w, atol=float(w.abs().max()) / 127)


def test_grid_levels_for_int8_and_per_channel():
    w = np.stack([np.linspace(-1, 1, 10), np.linspace(-5, 5, 10)]).astype(np.float32)
    grid = quantization_grid(w, 8, per_channel=False, symmetric=True)
    assert len(grid) == 255 and np.isclose(grid[-1], 5.0) and np.isclose(grid[0], -5.0)
    assert np.allclose(grid, -grid[::-1])
    widest = quantization_grid(w, 4, per_channel=True, symmetric=True)
    assert len(widest) == 15 and np.isclose(widest.max(), 5.0)  # the channel with range +-5
    assert len(quantization_grid(w, 4, per_channel=True, symmetric=False)) == 16


@pytest.mark.parametrize("bits", [1, 9])
def test_bits_out_of_range_is_a_recipe_error(bits):
    with pytest.raises(RecipeError, match="quantize.bits"):
        fake_quantize_tensor(np.ones((2, 2), np.float32), bits, False, True)


# ------------------------------------------------------------------------------------ models (digits-cnn)

def test_torch_2bit_collapses_accuracy_and_8bit_keeps_it(cnn):
    module, _, x, labels = cnn
    before = {k: v.clone() for k, v in module.state_dict().items()}
    base = (_torch_predict(module, x) == labels).mean()
    two = (_torch_predict(simulate_quantization_torch(module, QuantSpec("sim", bits=2)), x) == labels).mean()
    eight = simulate_quantization_torch(module, QuantSpec("sim", bits=8, per_channel=True))
    acc8 = (_torch_predict(eight, x) == labels).mean()
    assert two < 0.5  # 2-bit weights (levels -1, 0, 1 times a scale) destroy the model
    assert abs(acc8 - base) <= 0.01  # 8-bit weights: within 1 point on 360 samples
    assert eight.fc1.weight.dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert quantization_notes(eight)


def test_torch_exclusions_keep_weights_exact(cnn):
    module = cnn[0]
    sim = simulate_quantization_torch(module, QuantSpec("sim", bits=3, exclude=("fc2", "conv1")))
    assert torch.equal(sim.fc2.weight, module.fc2.weight)
    assert torch.equal(sim.conv1.weight, module.conv1.weight)
    assert len(torch.unique(sim.fc1.weight)) <= 7


def test_onnx_2bit_collapses_accuracy_and_8bit_keeps_it(cnn):
    _, model, x, labels = cnn
    original = model.SerializeToString()
    base = (_onnx_predict(model, x) == labels).mean()
    two = (_onnx_predict(simulate_quantization_onnx(model, QuantSpec("sim", bits=2)), x) == labels).mean()
    eight = simulate_quantization_onnx(model, QuantSpec("sim", bits=8, exclude=("fc2",)))
    acc8 = (_onnx_predict(eight, x) == labels).mean()
    assert two < 0.5
    assert abs(acc8 - base) <= 0.01
    assert model.SerializeToString() == original
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in eight.graph.initializer}
    src = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    assert np.array_equal(inits["fc2.weight"], src["fc2.weight"])
    assert not np.array_equal(inits["fc1.weight"], src["fc1.weight"])
    assert len(np.unique(inits["fc1.weight"])) <= 255


def test_unknown_excluded_layer_lists_the_real_names(cnn):
    module, model, _, _ = cnn
    with pytest.raises(RecipeError, match=r"quantize\.exclude.*conv1.*fc2"):
        simulate_quantization_torch(module, QuantSpec("sim", bits=4, exclude=("fc9",)))
    with pytest.raises(RecipeError, match=r"quantize\.exclude.*conv1.*fc2"):
        simulate_quantization_onnx(model, QuantSpec("sim", bits=4, exclude=("fc9",)))
