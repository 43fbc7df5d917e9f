"""Small ONNX graphs built with onnx.helper for input-shape tests: fixed shapes, fixed batch, dynamic axes,
token ids through an embedding table."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper


def _save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def fixed_matmul(path):
    """y = a @ b with a fixed at [2, 3] and b at [3, 4]: no batch dimension at all."""
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "mm",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3]),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])])
    return _save(g, path)


def conv(path, shape):
    """A 3->4 channel 3x3 convolution whose input is declared `shape` (ints fixed, strings symbolic)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3],
                           np.random.default_rng(0).random(108).astype(np.float32))
    out = [shape[0], 4, shape[2], shape[3]]
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "conv",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], [w])
    return _save(g, path)


def token_model(path, vocab=50, width=8):
    """Embedding lookup of int64 ids [N, S] times a float attention mask [N, S], summed over S: ids >= vocab
    make ONNX Runtime fail, so only valid synthesized ids run."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [vocab, width],
                               np.random.default_rng(0).random(vocab * width).astype(np.float32))
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["emb"]),
             helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["maskf", "axis"], ["mask3"]),
             helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
             helper.make_node("ReduceSum", ["masked", "axis1"], ["y"], keepdims=0)]
    consts = [helper.make_tensor("axis", TensorProto.INT64, [1], [2]),
              helper.make_tensor("axis1", TensorProto.INT64, [1], [1])]
    g = helper.make_graph(nodes, "tok",
                          [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "S"]),
                           helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", "S"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])], [table] + consts)
    return _save(g, path)


def fixed_width_add(path, width=16):
    """y = x + c with x declared [N, "D"] but c of shape [width]: only D = width (or 1) runs."""
    c = helper.make_tensor("c", TensorProto.FLOAT, [width], np.ones(width, dtype=np.float32))
    g = helper.make_graph([helper.make_node("Add", ["x", "c"], ["y"])], "add",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "D"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])], [c])
    return _save(g, path)
