"""A small ONNX MLP in which one layer is clearly the most sensitive to pruning: fc1 and fc3 hold a few large
weights among many near-zero ones (magnitude pruning removes only the near-zero ones), fc2 is dense (every
amount removes weights that matter)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SENSITIVE = "fc2"


def _sparse_like(rng: np.random.Generator, shape: tuple[int, int], keep: float = 0.08) -> np.ndarray:
    w = rng.normal(0, 1e-4, size=shape)
    big = rng.random(shape) < keep
    w[big] = rng.normal(0, 1.0, size=int(big.sum()))
    return w.astype(np.float32)


def sensitive_mlp(folder: Path, name: str = "sensitive.onnx", width: int = 32) -> Path:
    """fc1 (16 -> width), fc2 (width -> width, dense), fc3 (width -> 10); Relu between; dynamic batch."""
    rng = np.random.default_rng(0)
    weights = {"fc1.weight": _sparse_like(rng, (16, width)),
               "fc2.weight": (rng.normal(0, 1.0, size=(width, width)) / np.sqrt(width)).astype(np.float32),
               "fc3.weight": _sparse_like(rng, (width, 10))}
    nodes = [helper.make_node("MatMul", ["x", "fc1.weight"], ["h1"], name="/fc1/MatMul"),
             helper.make_node("Relu", ["h1"], ["a1"], name="/act1/Relu"),
             helper.make_node("MatMul", ["a1", "fc2.weight"], ["h2"], name="/fc2/MatMul"),
             helper.make_node("Relu", ["h2"], ["a2"], name="/act2/Relu"),
             helper.make_node("MatMul", ["a2", "fc3.weight"], ["logits"], name="/fc3/MatMul")]
    graph = helper.make_graph(nodes, "sensitive_mlp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / name
    onnx.save(model, path)
    return path


def labeled_npz(folder: Path, n: int = 96, name: str = "screen.npz") -> Path:
    """Inputs and labels that the sensitive MLP's own predictions give (so the baseline is 100% accurate)."""
    import onnxruntime as ort

    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, size=(n, 16)).astype(np.float32)
    session = ort.InferenceSession(str(folder / "sensitive.onnx"), providers=["CPUExecutionProvider"])
    labels = session.run(None, {"x": x})[0].argmax(axis=1).astype(np.int64)
    path = folder / name
    np.savez(path, x=x, labels=labels)
    return path
