"""Small ONNX models that misbehave at run time, for pipeline and worker tests (input x: (N, 64) float32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper


def _save(nodes, path: Path, initializers=(), out_dims=("N", 10)) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_dims))
    graph = helper.make_graph(nodes, "faulty", [x], [y], list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def segfault_model(path: Path) -> Path:
    """Passes onnx.checker and session creation, then crashes ONNX Runtime in run(): an Einsum whose second
    input name is empty."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [64, 10], np.ones(640, np.float32))
    return _save([helper.make_node("Einsum", ["x", ""], ["y"], equation="ij,jk->ik")], path, [w])


def nan_model(path: Path) -> Path:
    """Outputs NaN for every input: (x - x) / (x - x) = 0 / 0."""
    nodes = [helper.make_node("Sub", ["x", "x"], ["z"]), helper.make_node("Div", ["z", "z"], ["y"])]
    return _save(nodes, path, out_dims=("N", 64))


def huge_allocation_model(path: Path) -> Path:
    """Asks for about 2.8 GB per sample at run time (Tile x 11,000,000), over a 2 GB memory limit."""
    reps = helper.make_tensor("reps", TensorProto.INT64, [2], np.array([1, 11_000_000], np.int64))
    return _save([helper.make_node("Tile", ["x", "reps"], ["y"])], path, [reps], out_dims=("N", None))
