"""Node-made and Identity-shared weights are quantized like stored ones (onnx_weights.materialize_weights)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from accelstudio.core.compress.apply import apply_recipe
from accelstudio.core.model.inspect import inspect_model
from accelstudio.core.model.handle import InputSpec, ModelHandle
from accelstudio.core.model.onnx_weights import materialize_weights
from accelstudio.core.recipe import QuantSpec, Recipe
from accelstudio.core.compress.size_prediction import predict_size


def _two_layer_graph(ir_version: int = 8) -> onnx.ModelProto:
    """x -> MatMul(W) -> Relu -> MatMul(Identity(W)) -> MatMul(V made by ConstantOfShape): what the legacy torch
    exporter writes for two layers with identical weights, plus a weight filled by a node."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(64, 64)).astype(np.float32), "W")
    shape = numpy_helper.from_array(np.array([64, 64], np.int64), "V_shape")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="m0"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Identity", ["W"], ["W_shared"], name="share"),
             helper.make_node("MatMul", ["r", "W_shared"], ["h2"], name="m1"),
             helper.make_node("ConstantOfShape", ["V_shape"], ["V"], name="fill",
                              value=numpy_helper.from_array(np.array([0.01], np.float32))),
             helper.make_node("MatMul", ["h2", "V"], ["y"], name="m2")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64])
    inputs = [x] + ([helper.make_tensor_value_info(n, t, d) for n, t, d in
                     (("W", TensorProto.FLOAT, [64, 64]), ("V_shape", TensorProto.INT64, [2]))]
                    if ir_version < 4 else [])
    model = helper.make_model(helper.make_graph(nodes, "shared", inputs, [y], [w, shape]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = ir_version
    return model


def test_shared_and_node_made_weights_become_initializers():
    for ir in (3, 8):
        out, changed = materialize_weights(_two_layer_graph(ir))
        onnx.checker.check_model(out)
        assert out.ir_version >= 4 and [i.name for i in out.graph.input] == ["x"]  # weights are constants
        assert changed == 2
        assert [n.input[1] for n in out.graph.node if n.op_type == "MatMul"] == ["W", "W", "V"]
        assert {n.op_type for n in out.graph.node} == {"MatMul", "Relu"}  # Identity and the fill are gone
        assert "V_shape" not in {i.name for i in out.graph.initializer}


def test_dynamic_int8_quantizes_every_layer_and_the_prediction_holds(monkeypatch):
    # ONNX Runtime's pre-processing would fold these nodes, but it gives up on many real graphs (a torch export
    # whose symbolic dims it cannot merge): quantization must not depend on it.
    import onnxruntime.quantization as ortq

    def fails(*args, **kwargs):
        raise RuntimeError("symbolic shape inference failed")

    monkeypatch.setattr(ortq, "quant_pre_process", fails)
    model = _two_layer_graph()
    handle = ModelHandle(backend="onnx", source_format="onnx", onnx_model=model,
                         inputs=(InputSpec("x", (None, 64), "float32"),))
    recipe = Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=True))
    produced = apply_recipe(handle, recipe).handle
    ops = [n.op_type for n in produced.onnx_model.graph.node]
    assert ops.count("MatMulInteger") == 3 and "MatMul" not in ops
    before, after = inspect_model(handle), inspect_model(produced)
    assert after.total_bytes < 0.3 * before.total_bytes  # the shared weight is stored once, as int8
    predicted = predict_size(before, recipe, (), "onnx")
    assert abs(predicted.bytes - after.total_bytes) <= 0.05 * after.total_bytes


def test_static_int8_per_channel_on_an_old_graph_with_node_made_weights(tmp_path):
    """onnx's SqueezeNet test graph: opset 9, IR 3, every weight made by ConstantOfShape. Per-channel static int8
    must quantize its convolutions and still give a model ONNX Runtime accepts."""
    import os

    import onnxruntime as ort

    from accelstudio.core.model.loading import open_model

    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_squeezenet.onnx")
    handle = open_model(path)
    calib = {handle.inputs[0].name: np.random.default_rng(0).normal(size=(4, 3, 224, 224)).astype(np.float32)}
    recipe = Recipe(quantize=QuantSpec(mode="static-int8", per_channel=True, calib_samples=4))
    produced = apply_recipe(handle, recipe, calib=calib).handle.onnx_model
    weights_dq = [n for n in produced.graph.node if n.op_type == "DequantizeLinear" and "_w_" in n.input[0]]
    assert len(weights_dq) >= 20  # the convolutions' weights are int8 now
    session = ort.InferenceSession(produced.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {handle.inputs[0].name: calib[handle.inputs[0].name][:1]}
    out = session.run(None, feed)[0].ravel()
    ref = ort.InferenceSession(handle.onnx_model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, feed)[0].ravel()
    # the final softmax (behind a Reshape) stays float: 8-bit steps of 1/255 would turn its uniform 0.001s to 0
    assert abs(out.sum() - 1.0) < 1e-3
    assert float(out @ ref / (np.linalg.norm(out) * np.linalg.norm(ref))) > 0.99
