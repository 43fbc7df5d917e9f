"""Torch quantization modes on the bundled examples.

Tolerance for every real quantization mode on digits-cnn (360 test samples): top-1 agreement with the float32
model >= 97% and accuracy within 2 points of it (an accuracy difference on 360 samples has an error bar of about
1-2 points, so tighter bounds would test noise).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from accelstudio.core.model.architectures import get_architecture
from accelstudio.core.errors import CompressionError, RecipeError
from accelstudio.core.model.examples import get_example
from accelstudio.core.compress.quant_sim import quantization_notes
from accelstudio.core.compress.quant_torch import quantize_torch
from accelstudio.core.compress.quant_weight_only import WeightOnlyConv2d, WeightOnlyLinear
from accelstudio.core.recipe import QuantSpec

torch.set_num_threads(1)
MIN_AGREEMENT = 0.97
MAX_ACCURACY_DROP = 0.02


def _load(name):
    info = get_example(name)
    module = get_architecture(info.architecture).build()
    module.load_state_dict(load_file(info.weights_path))
    data = np.load(info.data_path)
    calib = {"x": np.load(info.calib_path)["x"]}
    return module.eval(), data["x"], data["labels"], calib


@pytest.fixture(scope="module")
def cnn():
    return _load("digits-cnn")


@pytest.fixture(scope="module")
def mlp():
    return _load("digits-mlp")


def _predict(module, x):
    with torch.no_grad():
        out = module(torch.from_numpy(x))
    assert out.dtype == torch.float32
    return out.argmax(1).numpy()


def _quantize(example, spec):
    module, x, _, calib = example
    return quantize_torch(module, spec, calib, (torch.from_numpy(x[:1]),))


def _assert_close_to_float(example, quantized):
    module, x, labels, _ = example
    ref, got = _predict(module, x), _predict(quantized, x)
    assert (ref == got).mean() >= MIN_AGREEMENT
    assert (ref == labels).mean() - (got == labels).mean() <= MAX_ACCURACY_DROP


def _state_bytes(module):
    return sum(t.numel() * t.element_size() for t in module.state_dict().values() if isinstance(t, torch.Tensor))


# ------------------------------------------------------------------------------------------------ dynamic

@pytest.mark.parametrize("per_channel", [False, True])
def test_dynamic_int8_quantizes_linear_layers_and_notes_the_convolutions(cnn, per_channel):
    q = _quantize(cnn, QuantSpec("dynamic-int8", per_channel=per_channel))
    assert isinstance(q.fc1, torch.ao.nn.quantized.dynamic.Linear)
    assert q.fc1.weight().dtype == torch.qint8
    scheme = q.fc1.weight().qscheme()
    assert (scheme == torch.per_channel_affine) == per_channel
    assert isinstance(q.conv1, nn.Conv2d)  # torch has no dynamic int8 convolution
    assert any("conv1" in note and "float32" in note for note in quantization_notes(q))
    _assert_close_to_float(cnn, q)


def test_dynamic_int8_exclusion_and_mlp(mlp):
    q = _quantize(mlp, QuantSpec("dynamic-int8", exclude=("fc3",)))
    assert type(q.fc3) is nn.Linear and q.fc3.weight.dtype == torch.float32
    assert type(q.fc1) is not nn.Linear and type(q.fc2) is not nn.Linear
    assert not quantization_notes(q)  # no convolutions to mention
    _assert_close_to_float(mlp, q)


def test_torch_int8_refuses_quint8_weights(cnn):
    with pytest.raises(RecipeError, match="weight_type"):
        _quantize(cnn, QuantSpec("dynamic-int8", weight_type="quint8"))


# ------------------------------------------------------------------------------------------------- static

@pytest.mark.parametrize("calibration", ["minmax", "percentile"])
def test_static_int8_fx_quantizes_conv_and_linear(cnn, calibration):
    q = _quantize(cnn, QuantSpec("static-int8", per_channel=True, calibration=calibration, calib_samples=64,
                                 exclude=("fc2",)))
    assert "quantized" in type(q.conv1).__module__ and "quantized" in type(q.fc1).__module__
    assert type(q.fc2) is nn.Linear  # excluded: stays float
    _assert_close_to_float(cnn, q)


def test_static_int8_without_calibration_data_fails_clearly(cnn):
    module, x, _, _ = cnn
    with pytest.raises(CompressionError, match="static int8 needs calibration data"):
        quantize_torch(module, QuantSpec("static-int8"), None, (torch.from_numpy(x[:1]),))


class _DataDependent(nn.Module):
    """Control flow on a tensor value: FX symbolic tracing cannot follow it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


def test_static_int8_untraceable_model_suggests_onnx_runtime():
    module = _DataDependent().eval()
    calib = {"x": np.random.default_rng(0).random((8, 64), dtype=np.float32)}
    with pytest.raises(CompressionError, match="ONNX Runtime"):
        quantize_torch(module, QuantSpec("static-int8"), calib, (torch.rand(1, 64),))


# -------------------------------------------------------------------------------------------- fp16 / bf16

@pytest.mark.parametrize("mode, dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_half_precision_keeps_float32_io_and_excluded_layers(cnn, mode, dtype):
    module = cnn[0]
    q = _quantize(cnn, QuantSpec(mode, exclude=("fc2",)))
    assert q.conv1.weight.dtype == dtype and q.fc1.weight.dtype == dtype
    assert q.fc2.weight.dtype == torch.float32
    assert list(q.state_dict()) == list(module.state_dict())  # layer names unchanged
    assert _state_bytes(q) < 0.6 * _state_bytes(module)
    _assert_close_to_float(cnn, q)  # _predict also checks the output is float32


# -------------------------------------------------------------------------------------------- weight-only

@pytest.mark.parametrize("mode, max_ratio", [("weight-int8", 0.27), ("weight-int4", 0.16)])
def test_weight_only_shrinks_weights_and_keeps_outputs(cnn, mode, max_ratio):
    module = cnn[0]
    q = _quantize(cnn, QuantSpec(mode, per_channel=True))
    assert isinstance(q.fc1, WeightOnlyLinear) and isinstance(q.conv2, WeightOnlyConv2d)
    assert q.fc1.qweight.dtype == (torch.int8 if mode == "weight-int8" else torch.uint8)
    # int8: 1 byte per weight + per-channel scales; int4: half a byte + one fp16 scale per 32 weights
    assert _state_bytes(q) / _state_bytes(module) < max_ratio
    weight = module.fc1.weight.detach()
    half_step = float(weight.abs().max()) / (2 * (127 if mode == "weight-int8" else 7))  # rounding error bound
    assert (q.fc1.dequantized_weight() - weight).abs().max() <= half_step * 1.001
    _assert_close_to_float(cnn, q)


def test_weight_int4_asymmetric_with_exclusion(cnn):
    q = _quantize(cnn, QuantSpec("weight-int4", symmetric=False, exclude=("conv1",)))
    assert type(q.conv1) is nn.Conv2d and q.conv1.weight.dtype == torch.float32
    assert q.fc1.zero is not None and q.fc1.zero.dtype == torch.uint8  # asymmetric: one zero point per group
    _assert_close_to_float(cnn, q)


# ------------------------------------------------------------------------------------------------ general

@pytest.mark.parametrize("spec", [QuantSpec("dynamic-int8"), QuantSpec("static-int8", calib_samples=32),
                                  QuantSpec("fp16"), QuantSpec("weight-int4"), QuantSpec("sim", bits=4)],
                         ids=lambda s: s.mode)
def test_input_module_is_never_modified(cnn, spec):
    module = cnn[0]
    before = {k: v.clone() for k, v in module.state_dict().items()}
    types = [type(m) for m in module.modules()]
    q = _quantize(cnn, spec)
    assert q is not module
    assert [type(m) for m in module.modules()] == types
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == torch.float32 for k in before)
    assert not module._forward_hooks and not module._forward_pre_hooks


def test_unknown_excluded_layer_lists_real_names(cnn):
    with pytest.raises(RecipeError, match=r"quantize\.exclude.*fc7.*conv1, conv2, fc1, fc2"):
        _quantize(cnn, QuantSpec("fp16", exclude=("fc7",)))


# ------------------------------------------------------------------------------------- attention models

def test_static_int8_on_the_vision_transformer_quantizes_only_linear_layers():
    vit = _load("digits-vit")
    q = _quantize(vit, QuantSpec("static-int8"))  # the default recipe settings
    quantized = {type(m).__name__ for m in q.modules()}
    assert "Linear" in {t.split(".")[-1] for t in quantized} or any("Quantized" in t for t in quantized)
    assert not any("LayerNorm" in t and "Quantized" in t for t in quantized)
    module, x = vit[0], torch.from_numpy(vit[1])
    with torch.no_grad():
        ref, got = module(x), q(x)
    assert torch.nn.functional.cosine_similarity(ref, got, dim=1).mean() >= 0.99
    _assert_close_to_float(vit, q)
    assert any("attention model" in note for note in quantization_notes(q))
