"""Per-operator profiles: ONNX Runtime's trace and torch's module ranges mapped onto the layer table's names."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelstudio.core.compress.apply import apply_recipe
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.measure.profile import PRECISIONS, profile_model
from accelstudio.core.measure.profile_onnx import kernel_family, timings_from_trace
from accelstudio.core.model.inspect import inspect_model
from accelstudio.core.model.loading import open_model
from accelstudio.core.recipe import QuantSpec, Recipe

ORT = RuntimeSettings(runtime="onnxruntime", threads=1)


def _inputs(handle, batch=1):
    rng = np.random.default_rng(0)
    return {i.name: rng.random(i.concrete_shape(batch)).astype(i.dtype) for i in handle.inputs}


def _check_format(p: dict, source: str, calls: int) -> None:
    assert p["source"] == source and 0 < p["calls"] <= calls and p["total_ms"] > 0  # disturbed calls left out
    assert sum(r["share"] for r in p["layers"]) == pytest.approx(1.0, abs=1e-6)
    assert sum(r["time_ms"] for r in p["layers"]) == pytest.approx(p["total_ms"], rel=1e-6)
    assert sum(r["share"] for r in p["op_types"]) == pytest.approx(1.0, abs=1e-6)
    for r in p["layers"]:
        assert set(r) == {"name", "op_type", "time_ms", "share", "precision", "provider", "nodes"}
        assert r["precision"] in PRECISIONS and r["nodes"] >= 1 and r["provider"]
    assert set(p["conversions"]) == {"count", "time_ms", "share"}
    times = [r["time_ms"] for r in p["layers"]]
    assert times == sorted(times, reverse=True)


def _quantized(name: str, mode: str):
    handle = open_model(f"example:{name}", backend="onnx")
    return handle, apply_recipe(handle, Recipe(quantize=QuantSpec(mode=mode, per_channel=True))).handle


def test_onnx_profile_maps_every_compute_kernel_to_a_layer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the trace must not land in the working folder
    handle = open_model("example:digits-resnet", backend="onnx")
    p = profile_model(handle, ORT, _inputs(handle), calls=4, warmup=1)
    _check_format(p, "onnxruntime", 4)
    layers = {layer.name: layer.op_type for layer in inspect_model(handle).layers}
    graph_names = {n.name for n in handle.onnx_model.graph.node} | {o for n in handle.onnx_model.graph.node
                                                                     for o in n.output}
    for row in p["layers"]:
        if kernel_family(row["op_type"]):  # a convolution or matrix product always belongs to its layer
            assert row["name"] in layers, row
        else:  # the rest is its own node (or a node ONNX Runtime added, such as a layout reorder)
            assert row["name"] in layers or row["name"] in graph_names or "Reorder" in row["op_type"], row
    convs = {n for n, op in layers.items() if op in ("Conv", "Gemm", "MatMul")}
    assert convs <= {r["name"] for r in p["layers"]}  # BatchNorm layers folded into their Conv: no row
    assert list(tmp_path.iterdir()) == []


def test_dynamic_int8_runs_its_matrix_products_in_int8():
    base, quantized = _quantized("digits-mlp", "dynamic-int8")
    p = profile_model(quantized, ORT, _inputs(base), calls=3, warmup=1)
    _check_format(p, "onnxruntime", 3)
    rows = {r["name"]: r for r in p["layers"]}
    for name in ("fc1", "fc2", "fc3"):
        assert rows[name]["precision"] == "int8", rows[name]
    fp32 = profile_model(base, ORT, _inputs(base), calls=3, warmup=1)
    assert {r["name"]: r["precision"] for r in fp32["layers"]}["fc1"] == "fp32"


def test_static_int8_counts_the_quantize_and_dequantize_conversions():
    base, quantized = _quantized("digits-cnn", "static-int8")
    p = profile_model(quantized, ORT, _inputs(base), calls=3, warmup=1)
    _check_format(p, "onnxruntime", 3)
    rows = {r["name"]: r for r in p["layers"]}
    assert rows["conv1"]["precision"] == rows["fc1"]["precision"] == "int8"
    conv = p["conversions"]
    assert conv["count"] >= 2 and conv["time_ms"] > 0 and 0 < conv["share"] < 1
    kinds = {r["op_type"] for r in p["op_types"]}
    assert {"QuantizeLinear", "DequantizeLinear"} <= kinds


def test_torch_profile_names_rows_by_module_path():
    handle = open_model("example:digits-resnet", backend="torch")
    p = profile_model(handle, RuntimeSettings(runtime="torch", threads=1), _inputs(handle), calls=3, warmup=1)
    _check_format(p, "torch", 3)
    layers = {layer.name for layer in inspect_model(handle).layers}
    modules = {name for name, _ in handle.module.named_modules() if name}
    rows = {r["name"]: r for r in p["layers"]}
    assert layers - {n for n in layers if "bn" in n or "norm" in n} <= set(rows)
    for name in rows:
        assert name in modules or name.endswith("(top level)")
    assert rows["fc"]["op_type"] == "Linear" and rows["fc"]["precision"] == "fp32"


def test_torchscript_runtime_is_refused_with_a_sentence():
    from accelstudio.core.errors import RuntimeUnavailableError

    handle = open_model("example:digits-mlp", backend="torch")
    with pytest.raises(RuntimeUnavailableError, match="onnxruntime or torch eager"):
        profile_model(handle, RuntimeSettings(runtime="torchscript"), _inputs(handle), calls=1)


def _residual_graph() -> onnx.ModelProto:
    """x -> a:Conv -> BN -> Relu -> r ; x -> b:Conv ; Add(r, b) -> Relu -> y (both convs feed the residual)."""
    w = numpy_helper.from_array(np.ones((4, 4, 1, 1), np.float32), "a.weight")
    w2 = numpy_helper.from_array(np.ones((4, 4, 1, 1), np.float32), "b.weight")
    bn = [numpy_helper.from_array(np.ones(4, np.float32), f"bn.{k}") for k in ("weight", "bias", "mean", "var")]
    nodes = [helper.make_node("Conv", ["x", "a.weight"], ["ca"], name="/a/Conv"),
             helper.make_node("BatchNormalization", ["ca", "bn.weight", "bn.bias", "bn.mean", "bn.var"], ["ba"],
                              name="/bn/BatchNormalization"),
             helper.make_node("Relu", ["ba"], ["r"], name="/Relu"),
             helper.make_node("Conv", ["x", "b.weight"], ["cb"], name="/b/Conv"),
             helper.make_node("Add", ["r", "cb"], ["s"], name="/Add"),
             helper.make_node("Relu", ["s"], ["y"], name="/Relu_1")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    graph = helper.make_graph(nodes, "g", [x], [y], [w, w2, *bn])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _event(name: str, op: str, ts: int, dur: int, types=("float",)) -> dict:
    return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,
            "args": {"op_name": op, "provider": "CPUExecutionProvider",
                     "input_type_shape": [{t: [1]} for t in types]}}


def test_fused_kernels_named_after_later_nodes_map_back_to_their_conv():
    # the names ONNX Runtime gives fused kernels: a Conv+BN+Relu named after the Relu's output (NCHWc), the
    # Conv that absorbed the residual Add named after the final Relu with a token suffix
    run = [{"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
           {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100}]
    tail = [_event("ReorderOutput", "ReorderOutput", 280, 5), _event("Shape_9", "Shape", 290, 1, ("int64",))]
    fused_first = run + [_event("/a/Conv", "Conv", 10, 50),  # the warm-up call: left out
                         _event("r_nchwc", "Conv", 210, 30), _event("/Relu_1_token_3", "FusedConv", 250, 20)]
    timings, kept = timings_from_trace(fused_first + tail, _residual_graph(), skip_runs=1)
    assert kept == 1
    rows = {t.row: t for t in timings}
    assert rows["a"].total_us == 30 and rows["b"].total_us == 20  # the residual kernel: the conv left unclaimed
    assert rows["ReorderOutput"].op_type == "ReorderOutput" and rows["Shape_9"].precision == "other"
    assert sum(t.occurrences for t in timings) == 4
    b_first = run + [_event("/b/Conv", "Conv", 210, 30), _event("/Relu_1_token_3", "FusedConv", 250, 20)]
    rows = {t.row: t for t in timings_from_trace(b_first, _residual_graph(), skip_runs=1)[0]}
    assert rows["b"].total_us == 30 and rows["a"].total_us == 20


def test_a_call_disturbed_by_another_process_is_left_out():
    runs = [{"cat": "Session", "name": "model_run", "ts": 1000 * i, "dur": d} for i, d in enumerate([100, 100, 900])]
    events = runs + [_event("/a/Conv", "Conv", 10 + 1000 * i, d) for i, d in enumerate([60, 60, 850])]
    timings, kept = timings_from_trace(events, _residual_graph(), skip_runs=0)
    assert kept == 2 and timings[0].total_us == 120 and timings[0].occurrences == 2
