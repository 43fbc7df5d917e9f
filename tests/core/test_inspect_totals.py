"""Header totals are the table's sums (plus an explicit remainder) on graphs nobody here wrote, and FLOPs are
counted on dynamic-axis transformers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from accelstudio.core.model.inspect import inspect_model
from accelstudio.core.model.loading import load_example, open_model
from accelstudio.core.model.handle import InputSpec, ModelHandle
from tests.factories import tiny_encoder_onnx

LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"
LIGHT_MODELS = sorted(LIGHT.glob("*.onnx"))
EXAMPLES = ("digits-mlp", "digits-cnn", "digits-resnet")


def assert_totals_are_table_sums(summary) -> None:
    """total == sum over rows + the explicit 'other' figure, for params and bytes; other is never negative."""
    assert summary.other_params >= 0 and summary.other_bytes >= 0
    assert summary.total_params == sum(layer.params for layer in summary.layers) + summary.other_params
    assert summary.total_bytes == sum(layer.bytes for layer in summary.layers) + summary.other_bytes


def test_light_folder_is_there():
    assert len(LIGHT_MODELS) >= 9, f"onnx's backend test data moved: {LIGHT}"


@pytest.mark.parametrize("path", LIGHT_MODELS, ids=lambda p: p.stem)
def test_light_models_totals_equal_table(path):
    summary = inspect_model(open_model(str(path)))
    assert_totals_are_table_sums(summary)
    assert summary.layers and summary.total_flops > 0 and not summary.warnings
    # these graphs store (almost) everything in weighted layers: what is left over is small and explicit
    assert summary.other_params <= 0.02 * summary.total_params


def test_resnet50_counts_its_constant_of_shape_weights():
    summary = inspect_model(open_model(str(LIGHT / "light_resnet50.onnx")))
    weights_and_biases = sum(layer.params for layer in summary.layers)
    assert weights_and_biases == 25_557_032  # torchvision's ResNet-50 count
    assert summary.total_params == weights_and_biases + summary.other_params and summary.other_params < 10
    # float32 weights and biases plus the 53 BatchNorms' running mean and variance (stored, not parameters)
    bn_channels = sum(layer.weight_shape[0] for layer in summary.layers if layer.op_type == "BatchNormalization")
    assert bn_channels == 26_560
    assert summary.total_bytes == 4 * (weights_and_biases + 2 * bn_channels) + 4 * summary.other_params


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("backend", ("torch", "onnx"))
def test_examples_totals_equal_table(name, backend):
    summary = inspect_model(load_example(name, backend))
    assert_totals_are_table_sums(summary)
    assert summary.other_params == 0 and summary.other_bytes == 0


def test_shared_weight_counts_once():
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "shared.weight")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "shared.weight"], ["h"], name="first"),
         helper.make_node("Transpose", ["shared.weight"], ["wt"], name="t"),
         helper.make_node("MatMul", ["h", "wt"], ["y"], name="second")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    summary = inspect_model(ModelHandle("onnx", "onnx", (InputSpec("x", (None, 4)),), onnx_model=model))
    first, second = summary.layers
    assert first.params == 12 and first.bytes == 48 and first.shared_with == ""
    assert second.params == 0 and second.bytes == 0 and second.shared_with == first.name
    assert summary.total_params == 12 and summary.total_bytes == 48
    assert second.flops == 2 * 3 * 4  # the shared layer still computes


def test_tied_torch_weights_count_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 8)
            self.out = nn.Linear(8, 20, bias=False)
            self.out.weight = self.emb.weight
            self.scale = nn.Parameter(torch.ones(3))

        def forward(self, ids):
            return self.out(self.emb(ids)) * self.scale.sum()

    module = Tied().eval()
    summary = inspect_model(ModelHandle("torch", "pickle", (InputSpec("ids", (None, 5), "int64"),), module=module))
    assert [layer.params for layer in summary.layers] == [160, 0]
    assert summary.layers[1].shared_with == "emb"
    assert summary.other_params == 3 and summary.other_bytes == 12
    assert summary.total_params == sum(p.numel() for p in module.parameters()) == 163
    assert_totals_are_table_sums(summary)


def test_batchnorm_statistics_count_as_bytes_in_both_backends():
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    summary = inspect_model(ModelHandle("torch", "pickle", (InputSpec("x", (None, 3, 8, 8)),), module=module))
    bn = summary.layers[1]
    assert bn.params == 8 and bn.bytes == 4 * 16
    assert_totals_are_table_sums(summary)


def test_int64_shapes_are_not_parameters():
    shape = numpy_helper.from_array(np.array([2, 6], dtype=np.int64), "target")
    graph = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["target"], ["w"], name="fill",
                          value=numpy_helper.from_array(np.array([0.5], np.float32))),
         helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 6])], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    summary = inspect_model(ModelHandle("onnx", "onnx", (InputSpec("x", (None, 2)),), onnx_model=model))
    assert summary.total_params == 12 and summary.total_bytes == 48 and summary.layers[0].zeros == 0


def test_dynamic_axis_transformer_flops_match_analytic_count(tmp_path):
    path, module = tiny_encoder_onnx(tmp_path)
    handle = open_model(str(path))
    assert handle.inputs[0].shape == (None, None)
    for shapes in (None, {"input_ids": (2, 24)}):
        summary = inspect_model(handle, shapes)
        batch, seq = summary.inputs[0].shape
        expected = module.analytic_matmul_flops(batch, seq)
        assert summary.total_flops > 0 and not summary.warnings
        assert abs(summary.total_flops - expected) <= 0.03 * expected
    assert_totals_are_table_sums(summary)
    # the exporter stores the identical (ones / zeros) LayerNorm parameters once: those rows share them
    shared = [layer for layer in summary.layers if layer.shared_with]
    assert shared and {layer.op_type for layer in shared} == {"LayerNormalization"}
    assert summary.total_params - summary.other_params <= sum(p.numel() for p in module.parameters())


def test_symbolic_shape_inference_writes_nothing_in_the_working_folder(tmp_path, monkeypatch):
    path, _ = tiny_encoder_onnx(tmp_path)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    summary = inspect_model(open_model(str(path)))
    assert summary.total_flops > 0
    assert list(work.iterdir()) == []


def test_flops_hidden_in_fused_torchscript_kernels_are_not_counted(tmp_path):
    """A traced TorchScript transformer runs its encoder layers as fused kernels FlopCounterMode cannot see: the
    total would be only the head's FLOPs, so it is reported as not counted rather than a wrong small number."""
    import torch

    from accelstudio.core.model.inspect import inspect_model
    from accelstudio.core.model.loading import load_model

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(100, 32)
            layer = torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
            self.enc = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = torch.nn.Linear(32, 5)

        def forward(self, x):
            return self.head(self.enc(self.emb(x)).mean(1))

    with torch.no_grad():
        traced = torch.jit.trace(Encoder().eval(), torch.randint(0, 100, (1, 16)), check_trace=False)
    path = tmp_path / "encoder.pt"
    traced.save(str(path))
    summary = inspect_model(load_model(str(path), trust=True), input_shapes={"x": (1, 16)})
    assert summary.total_flops == 0 and not summary.flops_counted
    assert any("FLOPs not counted" in w for w in summary.warnings)
