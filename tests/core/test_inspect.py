"""Layer inspection: parameters, bytes, sparsity and FLOPs agree with torch and between backends."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
import torch.nn.utils.prune
from onnx import TensorProto, helper, numpy_helper
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from accelstudio.core.model.architectures import get_architecture
from accelstudio.core.model.examples import get_example
from accelstudio.core.model.inspect import (
    InputShapeError, UnknownLayerError, inspect_model, layer_weights, summary_to_dict, weight_histogram,
)
from accelstudio.core.model.loading import load_example
from accelstudio.core.model.handle import InputSpec, ModelHandle

EXAMPLES = ("digits-mlp", "digits-cnn", "digits-resnet")


def _inputs(name: str) -> tuple[InputSpec, ...]:
    shape = get_architecture(get_example(name).architecture).input_shape
    return (InputSpec("x", (None,) + tuple(shape[1:]), "float32", (0.0, 1.0)),)


def torch_handle(name: str) -> ModelHandle:
    return load_example(name, "torch")


def onnx_handle(name: str) -> ModelHandle:
    return load_example(name, "onnx")


def graph_handle(graph: onnx.GraphProto, opset: int = 17, inputs=None) -> ModelHandle:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    if inputs is None:
        inputs = tuple(
            InputSpec(i.name, tuple(d.dim_value if d.HasField("dim_value") else None
                                    for d in i.type.tensor_type.shape.dim))
            for i in graph.input
        )
    return ModelHandle("onnx", "onnx", inputs, onnx_model=model)


def torch_total_flops(module: nn.Module, shape) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.rand(shape))
    return counter.get_total_flops()


@pytest.mark.parametrize("name", ("digits-mlp", "digits-cnn"))
def test_torch_params_and_flops_match_torch(name):
    handle = torch_handle(name)
    summary = inspect_model(handle, batch=3)
    assert summary.total_params == sum(p.numel() for p in handle.module.parameters())
    assert summary.total_bytes == 4 * summary.total_params
    assert summary.inputs[0].shape[0] == 3
    expected = torch_total_flops(handle.module, summary.inputs[0].shape)
    assert summary.total_flops == expected > 0
    assert summary.total_macs == expected // 2
    assert sum(layer.flops for layer in summary.layers) == expected
    for layer in summary.layers:
        module = handle.module.get_submodule(layer.name)
        assert layer.params == sum(p.numel() for p in module.parameters())
        assert layer.weight_shape == tuple(module.weight.shape)
        assert layer.dtype == "float32" and layer.bytes == 4 * layer.params
    assert summary.file_bytes == get_example(name).weights_path.stat().st_size


@pytest.mark.parametrize("name", EXAMPLES)
def test_onnx_and_torch_agree(name):
    t = inspect_model(torch_handle(name), batch=2)
    o = inspect_model(onnx_handle(name), batch=2)
    assert [layer.name for layer in o.layers] == [layer.name for layer in t.layers]
    assert [layer.params for layer in o.layers] == [layer.params for layer in t.layers]
    assert o.total_params == t.total_params
    assert o.total_bytes == t.total_bytes
    assert abs(o.total_flops - t.total_flops) <= 0.01 * t.total_flops
    for lo, lt in zip(o.layers, t.layers):
        assert abs(lo.flops - lt.flops) <= 0.01 * lt.flops
    assert o.file_bytes == get_example(name).onnx_path.stat().st_size
    assert not o.warnings and not t.warnings


def test_planted_zeros_are_counted_exactly_in_both_backends():
    handle = torch_handle("digits-mlp")
    weight = handle.module.fc1.weight
    assert int((weight == 0).sum()) == 0
    with torch.no_grad():
        weight.view(-1)[torch.randperm(weight.numel(), generator=torch.Generator().manual_seed(1))[:37]] = 0.0
    fc1 = {layer.name: layer for layer in inspect_model(handle).layers}["fc1"]
    assert fc1.zeros == 37 and fc1.sparsity == pytest.approx(37 / weight.numel())

    onnx_h = onnx_handle("digits-mlp")
    init = next(t for t in onnx_h.onnx_model.graph.initializer if t.name == "fc1.weight")
    init.CopyFrom(numpy_helper.from_array(weight.detach().numpy(), "fc1.weight"))
    fc1_onnx = {layer.name: layer for layer in inspect_model(onnx_h).layers}["fc1"]
    assert fc1_onnx.zeros == 37 and fc1_onnx.sparsity == fc1.sparsity


def test_torch_pruning_reparametrization_counts_masked_zeros():
    handle = torch_handle("digits-cnn")
    before = inspect_model(handle)
    torch.nn.utils.prune.l1_unstructured(handle.module.conv2, "weight", amount=0.5)
    after = {layer.name: layer for layer in inspect_model(handle).layers}
    assert after["conv2"].zeros == handle.module.conv2.weight.numel() // 2
    assert after["conv2"].params == {x.name: x for x in before.layers}["conv2"].params
    hist, _ = weight_histogram(handle, "conv2")
    assert hist.sum() == handle.module.conv2.weight.numel()


def test_dynamic_quantized_torch_model():
    float_handle = torch_handle("digits-cnn")
    float_summary = inspect_model(float_handle)
    qmodule = torch.ao.quantization.quantize_dynamic(float_handle.module, {nn.Linear}, dtype=torch.qint8)
    handle = float_handle.with_model(module=qmodule)
    summary = inspect_model(handle)
    layers = {layer.name: layer for layer in summary.layers}
    assert list(layers) == ["conv1", "conv2", "fc1", "fc2"]
    fc1 = layers["fc1"]
    assert fc1.dtype == "qint8" and fc1.bytes_by_dtype["qint8"] == 64 * 512
    assert fc1.bytes < 4 * fc1.params and fc1.params == 64 * 512 + 64
    assert summary.total_params == float_summary.total_params
    assert summary.total_bytes < float_summary.total_bytes
    assert fc1.flops == {x.name: x for x in float_summary.layers}["fc1"].flops
    assert summary.total_flops == float_summary.total_flops
    w = layer_weights(handle, "fc1")
    assert w.dtype == np.float32 and w.shape == (64, 512)
    np.testing.assert_allclose(w, float_handle.module.fc1.weight.detach().numpy(), atol=0.02)


def test_attention_embedding_and_norm_layers():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 16)
            self.norm = nn.LayerNorm(16)
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
            self.head = nn.Linear(16, 4)
            self.scale = nn.Parameter(torch.ones(1))  # a parameter of no weighted layer

        def forward(self, ids):
            h = self.norm(self.emb(ids))
            h, _ = self.attn(h, h, h)
            return self.head(h) * self.scale

    module = Tiny().eval()
    handle = ModelHandle("torch", "pickle", (InputSpec("ids", (None, 7), "int64"),), module=module)
    summary = inspect_model(handle, batch=2)
    names = [layer.name for layer in summary.layers]
    assert names == ["emb", "norm", "attn", "attn.out_proj", "head"]
    assert summary.total_params == sum(p.numel() for p in module.parameters())
    assert sum(layer.params for layer in summary.layers) == summary.total_params - 1
    attn = summary.layers[2]
    assert attn.weight_shape == (48, 16) and attn.params == 48 * 16 + 48 and attn.flops > 0
    assert summary.layers[0].flops == 0
    assert summary.total_flops == torch_total_flops_ids(module)


def torch_total_flops_ids(module):
    counter = FlopCounterMode(display=False)
    with counter:  # with autograd on, attention runs its composite (countable) path
        module(torch.zeros((2, 7), dtype=torch.int64))
    return counter.get_total_flops()


def test_onnx_weight_from_constant_node():
    w = np.arange(12, dtype=np.float32).reshape(4, 3) - 5.0
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w, "w_value")),
         helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
    )
    handle = graph_handle(graph)
    summary = inspect_model(handle, batch=5)
    assert [layer.name for layer in summary.layers] == ["proj"]
    layer = summary.layers[0]
    assert layer.params == 12 and layer.zeros == 1 and layer.weight_shape == (4, 3)
    assert layer.flops == 2 * 5 * 4 * 3 == summary.total_flops
    assert summary.total_params == 12 and summary.total_bytes == 48
    np.testing.assert_array_equal(layer_weights(handle, "proj"), w)


def _opset11_graph() -> onnx.GraphProto:
    rng = np.random.default_rng(0)
    conv_w = numpy_helper.from_array(rng.normal(size=(4, 2, 3, 3)).astype(np.float32), "conv.weight")
    conv_b = numpy_helper.from_array(np.zeros(4, np.float32), "conv.bias")
    fc_w = numpy_helper.from_array(rng.normal(size=(5, 4 * 6 * 6)).astype(np.float32), "fc.weight")
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Unsqueeze", ["f"], ["u"], axes=[1]),  # opset 11: axes are attributes
        helper.make_node("Squeeze", ["u"], ["s"], axes=[1]),
        helper.make_node("Gemm", ["s", "fc.weight"], ["y"], transB=1),
    ]
    return helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])], [conv_w, conv_b, fc_w],
    )


def test_opset11_model():
    handle = graph_handle(_opset11_graph(), opset=11)
    summary = inspect_model(handle, batch=2)
    assert [layer.name for layer in summary.layers] == ["conv", "fc"]
    conv, fc = summary.layers
    assert conv.params == 4 * 2 * 9 + 4 and fc.params == 5 * 144
    assert conv.flops == 2 * 2 * 4 * 6 * 6 * 2 * 9
    assert fc.flops == 2 * 2 * 144 * 5
    assert summary.total_flops == conv.flops + fc.flops and not summary.warnings


def test_dynamic_dims_take_batch_default_or_user_shape():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(8, 3)).astype(np.float32), "head.weight")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "head.weight"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 3])], [w],
    )
    handle = graph_handle(graph)
    assert handle.inputs[0].shape == (None, None, 8)
    default = inspect_model(handle, batch=4)
    assert default.inputs[0].shape == (4, 1, 8)
    assert default.total_flops == 2 * 4 * 1 * 8 * 3
    user = inspect_model(handle, {"x": (2, 10, 8)})
    assert user.inputs[0].shape == (2, 10, 8) and user.layers[0].flops == 2 * 2 * 10 * 8 * 3
    with pytest.raises(InputShapeError, match="no input named"):
        inspect_model(handle, {"y": (1, 1, 8)})
    with pytest.raises(InputShapeError, match="dimensions"):
        inspect_model(handle, {"x": (1, 8)})
    with pytest.raises(InputShapeError, match="needs 8"):
        inspect_model(handle, {"x": (1, 2, 9)})


def test_quantized_onnx_model(tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = tmp_path / "q.onnx"
    quantize_dynamic(str(get_example("digits-mlp").onnx_path), str(out), weight_type=QuantType.QInt8,
                     per_channel=True)
    handle = ModelHandle("onnx", "onnx", _inputs("digits-mlp"), onnx_model=onnx.load(str(out)), source=out)
    summary = inspect_model(handle)
    ref = inspect_model(torch_handle("digits-mlp"))
    assert [layer.params for layer in summary.layers] == [layer.params for layer in ref.layers]
    assert [layer.flops for layer in summary.layers] == [layer.flops for layer in ref.layers]
    first = summary.layers[0]
    assert first.op_type == "MatMulInteger" and first.dtype == "int8"
    assert first.bytes_by_dtype["int8"] == 64 * 128 + 128  # weights and per-channel zero points
    assert first.bytes_by_dtype["float32"] == 4 * (128 + 128)  # bias and per-channel scales
    assert first.bytes < ref.layers[0].bytes
    assert summary.file_bytes == out.stat().st_size
    w = layer_weights(handle, first.name)
    fc1 = torch_handle("digits-mlp").module.fc1.weight.detach().numpy()
    np.testing.assert_allclose(w, fc1.T, atol=0.01)


def test_histogram_and_layer_weights():
    for handle in (torch_handle("digits-cnn"), onnx_handle("digits-cnn")):
        weights = layer_weights(handle, "conv2")
        assert weights.shape == (32, 16, 3, 3) and weights.dtype == np.float32
        weights[:] = 0  # a copy: the model is unchanged
        counts, edges = weight_histogram(handle, "conv2", bins=40)
        assert counts.sum() == 32 * 16 * 9 and len(edges) == 41 and edges[0] < 0 < edges[-1]
        with pytest.raises(UnknownLayerError, match="nope"):
            layer_weights(handle, "nope")


def test_summary_to_dict_is_json(tmp_path):
    summary = inspect_model(onnx_handle("digits-cnn"))
    data = json.loads(json.dumps(summary_to_dict(summary)))
    for key in ("layers", "total_params", "total_flops", "total_macs", "total_bytes", "file_bytes", "inputs"):
        assert key in data
    assert data["inputs"] == [{"name": "x", "shape": [1, 1, 8, 8], "dtype": "float32"}]
    assert data["layers"][0]["name"] == "conv1" and data["layers"][0]["weight_shape"] == [16, 1, 3, 3]
    assert data["total_params"] == sum(layer["params"] for layer in data["layers"])


def test_external_data_counts_in_file_bytes(tmp_path):
    model = onnx.load(str(get_example("digits-cnn").onnx_path))
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="ext.data", size_threshold=0)
    handle = ModelHandle("onnx", "onnx", _inputs("digits-cnn"), onnx_model=onnx.load(str(path)), source=path)
    summary = inspect_model(handle)
    assert summary.file_bytes == path.stat().st_size + (tmp_path / "ext.data").stat().st_size
    assert summary.total_params == 38282


def test_failed_forward_pass_leaves_flops_unknown_with_warning():
    handle = torch_handle("digits-cnn")
    broken = ModelHandle("torch", "example", (InputSpec("x", (None, 3, 8, 8)),), module=handle.module)
    summary = inspect_model(broken)
    assert summary.total_flops == 0 and summary.total_params == 38282
    assert any("forward pass" in w for w in summary.warnings)


def test_half_precision_and_scripted_torch_models():
    handle = torch_handle("digits-cnn")
    ref = inspect_model(handle)
    half = inspect_model(handle.with_model(module=torch_handle("digits-cnn").module.half()))
    assert half.total_bytes == ref.total_bytes // 2 and half.layers[0].dtype == "float16"
    assert half.total_flops == ref.total_flops and not half.warnings
    scripted = inspect_model(handle.with_model(module=torch.jit.script(handle.module)))
    assert scripted.total_params == ref.total_params and scripted.total_flops == ref.total_flops
    assert [layer.name for layer in scripted.layers] == [layer.name for layer in ref.layers]
    assert any("per layer" in w for w in scripted.warnings)


def test_onnx_shape_that_contradicts_the_graph_is_warned():
    handle = graph_handle(_opset11_graph(), opset=11)
    conflicting = ModelHandle("onnx", "onnx", (InputSpec("x", (None, 2, 8, 8)),), onnx_model=handle.onnx_model)
    summary = inspect_model(conflicting)
    assert any("graph declares" in w for w in summary.warnings)
    assert summary.layers[0].flops == 2 * 4 * 8 * 8 * 2 * 9
