"""The quantization-mode table: every mode is a valid recipe with a description, and the table's facts (bytes
per stored weight, integer grid, per-channel) agree with what the torch quantizer really stores."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from accelstudio.core.compress.quant_torch import quantize_torch
from accelstudio.core.errors import RecipeError
from accelstudio.core.quant_modes import QUANT_MODE_TABLE, QUANT_MODES, integer_range, modes_where, quant_mode
from accelstudio.core.recipe import QuantSpec, Recipe

IN, OUT = 64, 16


def test_names_are_unique_and_in_table_order():
    assert QUANT_MODES == tuple(m.name for m in QUANT_MODE_TABLE)
    assert len(set(QUANT_MODES)) == len(QUANT_MODES) and QUANT_MODES[0] == "none"


@pytest.mark.parametrize("name", QUANT_MODES)
def test_every_mode_is_a_valid_recipe_and_described(name):
    recipe = Recipe.from_dict({"quantize": {"mode": name}})
    assert quant_mode(name).name == name and quant_mode(name).tip
    if name == "none":
        assert recipe.is_identity and recipe.describe() == "baseline (fp32)"
    else:
        assert recipe.describe().startswith("sim-8bit" if name == "sim" else name)


def test_descriptions_name_only_the_settings_a_mode_uses():
    def describe(**quant):
        return Recipe(quantize=QuantSpec(**quant)).describe()

    assert describe(mode="static-int8", per_channel=True, calibration="entropy") == \
        "static-int8 per-channel qint8 entropy"
    assert describe(mode="dynamic-int8", weight_type="quint8") == "dynamic-int8 per-tensor quint8"
    assert describe(mode="weight-int8", per_channel=True) == "weight-int8 per-channel"
    assert describe(mode="weight-int4", per_channel=True) == "weight-int4"
    assert describe(mode="sim", bits=3) == "sim-3bit per-tensor"
    assert describe(mode="fp16", per_channel=True, calibration="entropy") == "fp16"


def test_unknown_mode_is_a_recipe_error_naming_the_choices():
    with pytest.raises(RecipeError, match=r"'quantize.mode': got 'int3'; allowed: none, dynamic-int8"):
        quant_mode("int3")
    with pytest.raises(RecipeError, match=r"'quantize.mode': got 'int3'; allowed: none, dynamic-int8"):
        Recipe.from_dict({"quantize": {"mode": "int3"}})


def test_only_the_simulated_mode_takes_other_widths():
    for name in QUANT_MODES:
        spec = {"mode": name, "bits": 4}
        if quant_mode(name).simulated:
            assert Recipe.from_dict({"quantize": spec}).quantize.bits == 4
        else:
            with pytest.raises(RecipeError, match="quantize.bits"):
                Recipe.from_dict({"quantize": spec})


def test_grids():
    assert quant_mode("dynamic-int8").grid() == (-127, 127)
    assert quant_mode("static-int8").grid(symmetric=False) == (0, 255)
    assert quant_mode("weight-int4").grid() == (-7, 7)
    assert quant_mode("sim").grid(bits=3) == integer_range(3, True) == (-3, 3)
    assert quant_mode("fp16").grid() is None and quant_mode("none").grid() is None
    assert modes_where(half=True) == ("fp16", "bf16")
    assert modes_where(needs_calibration=True) == ("static-int8",)


# ---------------------------------------------------------------------------- against the torch quantizer

def _linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(IN, OUT)).eval()


def _quantized_layer(mode: str, **spec) -> nn.Module:
    model = _linear_model()
    return quantize_torch(model, QuantSpec(mode=mode, **spec), None, (torch.randn(1, IN),))[0]


def _stored_weight_bytes(layer: nn.Module) -> float:
    if hasattr(layer, "qweight"):
        weight = layer.qweight
    else:
        weight = layer.weight() if callable(layer.weight) else layer.weight
    return weight.numel() * weight.element_size() / (IN * OUT)


@pytest.mark.parametrize("name", [m.name for m in QUANT_MODE_TABLE if not m.needs_calibration])
def test_bytes_per_weight_match_the_torch_quantizer(name):
    assert _stored_weight_bytes(_quantized_layer(name)) == quant_mode(name).weight_bytes


@pytest.mark.parametrize("name", modes_where(weight_only=True))
def test_weight_only_codes_stay_on_the_grid(name):
    mode = quant_mode(name)
    codes = _quantized_layer(name).qweight.to(torch.int16)
    if mode.bits == 4:  # two codes a byte, stored with an offset of 8
        codes = torch.cat((codes & 15, codes >> 4)) - 8
    lo, hi = mode.grid()
    assert int(codes.min()) >= lo and int(codes.max()) <= hi
    assert max(-int(codes.min()), int(codes.max())) == hi  # the largest weight of a row lands on the edge


@pytest.mark.parametrize("name", modes_where(weight_only=True) + ("sim",))
def test_per_channel_changes_the_result_only_where_allowed(name):
    def weights(per_channel):
        layer = _quantized_layer(name, per_channel=per_channel)
        return layer.dequantized_weight() if hasattr(layer, "dequantized_weight") else layer.weight.detach()

    changed = not torch.equal(weights(True), weights(False))
    assert changed == quant_mode(name).per_channel_allowed


def test_both_quantizers_dispatch_every_mode_of_the_table():
    from accelstudio.core.compress.quant_onnx import ONNX_STEPS
    from accelstudio.core.compress.quant_torch import TORCH_STEPS

    assert set(ONNX_STEPS) == set(QUANT_MODES) and set(TORCH_STEPS) == set(QUANT_MODES)


@pytest.mark.parametrize("name", [m.name for m in QUANT_MODE_TABLE if m.active and not m.needs_calibration])
def test_the_symmetric_choice_changes_the_result_only_where_allowed(name):
    def weights(symmetric):
        layer = _quantized_layer(name, symmetric=symmetric)
        if hasattr(layer, "dequantized_weight"):
            return layer.dequantized_weight()
        weight = layer.weight() if callable(layer.weight) else layer.weight
        return (weight.dequantize() if weight.is_quantized else weight).detach().float()

    changed = not torch.equal(weights(True), weights(False))
    assert changed == quant_mode(name).symmetric_allowed


def test_torch_facts_name_the_modes_they_describe():
    assert modes_where(torch_swaps_modules=True) == ("dynamic-int8", "weight-int8", "weight-int4", "sim")
    assert modes_where(torch_ao=True) == ("dynamic-int8", "static-int8")
    assert modes_where(torch_traces=True) == modes_where(needs_calibration=True)
    assert modes_where(onnxruntime_cpu=False) == ("bf16",)
    assert quant_mode("static-int8").stored_kinds("onnx") == {"linear", "conv", "embedding"}
    assert quant_mode("fp16").stored_kinds("torch") == frozenset() and quant_mode("sim").stored_kinds("x") == set()
