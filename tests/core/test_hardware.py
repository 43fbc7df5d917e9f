"""CPU feature detection and recipe advice; features are passed in so results do not depend on this CPU."""

from __future__ import annotations

import pytest

from accelstudio.core.measure.hardware import cpu_features, hardware_warnings
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe

BASE = {"model_name": "Test CPU", "cores": 4, "avx2": True, "avx512f": False, "avx512_vnni": False,
        "avx_vnni": False, "amx": False, "f16c": True, "avx512_fp16": False, "avx512_bf16": False,
        "amx_bf16": False}
NO_VNNI = dict(BASE)
VNNI = dict(BASE, avx512f=True, avx512_vnni=True)
SAPPHIRE = dict(VNNI, amx=True, amx_bf16=True, avx512_bf16=True, avx512_fp16=True)

INT8_PER_TENSOR = Recipe(quantize=QuantSpec(mode="dynamic-int8"))


def codes(recipe, backend="onnx", features=NO_VNNI, device="cpu"):
    return [w.code for w in hardware_warnings(recipe, backend, device=device, features=features)]


def test_cpu_features_parses_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Example Xeon\n"
                    "flags\t\t: fpu sse avx2 f16c avx512f avx512_vnni amx_tile amx_bf16\n\n"
                    "processor\t: 1\nmodel name\t: Example Xeon\nflags\t\t: fpu\n")
    f = cpu_features(info)
    assert f["model_name"] == "Example Xeon" and f["cores"] >= 1
    assert f["avx2"] and f["f16c"] and f["avx512f"] and f["avx512_vnni"] and f["amx"] and f["amx_bf16"]
    assert not f["avx_vnni"] and not f["avx512_fp16"] and not f["avx512_bf16"]
    assert f["int8_dot"] and f["bf16_native"] and not f["fp16_native"]


def test_cpu_features_without_cpuinfo_still_answers(tmp_path):
    f = cpu_features(tmp_path / "missing")
    assert f["model_name"] and f["cores"] >= 1 and f["avx2"] is False
    real = cpu_features()
    for key in ("model_name", "cores", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx", "f16c",
                "avx512_fp16", "avx512_bf16", "amx_bf16"):
        assert key in real


@pytest.mark.parametrize("mode", ["dynamic-int8", "static-int8"])
def test_per_tensor_qint8_warns_only_without_vnni(mode):
    recipe = Recipe(quantize=QuantSpec(mode=mode))
    assert "int8-saturation" in codes(recipe, features=NO_VNNI)
    assert "int8-saturation" not in codes(recipe, features=VNNI)
    assert "int8-saturation" not in codes(Recipe(quantize=QuantSpec(mode=mode, per_channel=True)))
    assert "int8-saturation" not in codes(Recipe(quantize=QuantSpec(mode=mode, weight_type="quint8")))
    warning = next(w for w in hardware_warnings(recipe, "onnx", features=NO_VNNI) if w.code == "int8-saturation")
    assert "per-channel" in warning.advice and "QUInt8" in warning.advice
    assert "Test CPU" in warning.message and warning.control == "quantize"


def test_uint8_weights_of_static_int8_warn_on_cpus_with_int8_dot_products():
    uint8 = Recipe(quantize=QuantSpec(mode="static-int8", per_channel=True, weight_type="quint8"))
    assert "int8-uint8-weights" in codes(uint8, features=VNNI)
    assert "int8-uint8-weights" in codes(uint8, features=SAPPHIRE)
    assert "int8-uint8-weights" not in codes(uint8, features=NO_VNNI)  # not measured there: no claim
    assert "int8-uint8-weights" not in codes(uint8, backend="torch", features=VNNI)
    int8 = Recipe(quantize=QuantSpec(mode="static-int8", per_channel=True))
    assert "int8-uint8-weights" not in codes(int8, features=VNNI)
    warning = next(w for w in hardware_warnings(uint8, "onnx", features=VNNI) if w.code == "int8-uint8-weights")
    assert "QInt8" in warning.advice and warning.control == "quantize"


@pytest.mark.parametrize("mode,native", [("fp16", dict(avx512_fp16=True)), ("bf16", dict(avx512_bf16=True)),
                                         ("bf16", dict(amx_bf16=True))])
def test_half_precision_is_slow_without_native_arithmetic(mode, native):
    recipe = Recipe(quantize=QuantSpec(mode=mode))
    slow = [w for w in hardware_warnings(recipe, "torch", features=NO_VNNI) if w.code == f"{mode}-slow"]
    assert slow and "slower than fp32" in slow[0].message and "int8" in slow[0].advice
    assert f"{mode}-slow" not in codes(recipe, "torch", features=dict(NO_VNNI, **native))


def test_zeroing_sparsity_advises_structured_pruning():
    for method in ("l1-unstructured", "random", "2:4"):
        warnings = hardware_warnings(Recipe(prune=PruneSpec(amount=0.5, method=method)), "torch", features=VNNI)
        assert [w.code for w in warnings] == ["sparsity-no-speedup"]
        assert warnings[0].control == "prune" and "l1-structured" in warnings[0].advice
    assert codes(Recipe(prune=PruneSpec(amount=0.5, method="l1-structured")), features=VNNI) == []
    assert codes(Recipe(prune=PruneSpec(amount=0.0)), features=VNNI) == []


def test_static_int8_on_ort_mentions_graph_optimization():
    recipe = Recipe(quantize=QuantSpec(mode="static-int8", per_channel=True))
    warning = next(w for w in hardware_warnings(recipe, "onnx", features=VNNI)
                   if w.code == "static-int8-graph-optimization")
    assert "graph optimization" in warning.advice and "AccelStudio" in warning.advice
    assert "static-int8-graph-optimization" not in codes(recipe, "torch", features=VNNI)


def test_weight_only_and_sim_modes_explain_what_they_buy():
    assert "weight-only-int4" in codes(Recipe(quantize=QuantSpec(mode="weight-int4")), features=SAPPHIRE)
    assert "simulated-quantization" in codes(Recipe(quantize=QuantSpec(mode="sim", bits=4)), features=SAPPHIRE)


def test_a_modern_cpu_gets_no_quantization_warning_for_good_choices():
    for mode in ("fp16", "bf16", "dynamic-int8"):
        assert codes(Recipe(quantize=QuantSpec(mode=mode)), "torch", features=SAPPHIRE) == []


def test_every_warning_says_what_to_do():
    recipe = Recipe(prune=PruneSpec(amount=0.5), quantize=QuantSpec(mode="static-int8"))
    warnings = hardware_warnings(recipe, "onnx", features=NO_VNNI)
    assert len(warnings) == 3
    for w in warnings:
        assert w.message and w.advice and w.control in ("prune", "quantize")
