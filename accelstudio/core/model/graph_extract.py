"""The operator graph of an ONNX model, for the Graph tab (torch models come through their ONNX export: see
accelstudio.core.graphs.source), and a synthetic transformer-shaped graph for benchmarks and tests.

Nodes without a name (common in converted models) are named after their first output, which usually holds the
producer's scope too (`gpu_0/res2_0_branch2a_1`). Each node carries the layer (table row) it computes, by the
same weight-to-layer naming the layer table uses (core/model/onnx_layers.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accelstudio.core.model.graph_groups import OpGraph, Progress


def op_graph_from_onnx(model: Any, with_layers: bool = True, progress: Progress | None = None) -> OpGraph:
    """The main graph of an onnx.ModelProto: nodes in stored (topological) order, edges along tensors.
    `progress(done, total)` is called between steps."""
    progress = progress or (lambda done, total: None)
    nodes = list(model.graph.node)
    inputs = [tuple(node.input) for node in nodes]  # read each protobuf field once: 50k nodes add up
    outputs = [tuple(node.output) for node in nodes]
    producer: dict[str, int] = {}
    for i, outs in enumerate(outputs):
        for out in outs:
            if out:
                producer[out] = i
    stored = {init.name for init in model.graph.initializer}
    constant: list[bool] = []
    for ins in inputs:  # reads no graph input and no output of a node that does
        constant.append(all(not v or v in stored or (v in producer and constant[producer[v]]) for v in ins))
    progress(0, len(nodes))
    names = _unique_names(nodes, inputs, outputs, producer, stored, constant)
    progress(len(nodes) // 3, len(nodes))
    src, dst = [], []
    for i, ins in enumerate(inputs):
        for value in dict.fromkeys(ins):
            j = producer.get(value)
            if j is not None and j != i:
                src.append(j)
                dst.append(i)
    layers = [""] * len(nodes)
    if with_layers:
        from accelstudio.core.model.onnx_layers import weighted_nodes

        position = {id(node): i for i, node in enumerate(nodes)}
        progress(len(nodes) // 2, len(nodes))
        for found in weighted_nodes(model):
            i = position.get(id(found.node))
            if i is not None:
                layers[i] = found.name
    return OpGraph(names=tuple(names), op_types=tuple(n.op_type for n in nodes), layers=tuple(layers),
                   src=np.asarray(src, dtype=np.int64), dst=np.asarray(dst, dtype=np.int64),
                   constant=np.asarray(constant, dtype=bool))


def _unique_names(nodes: list, inputs: list[tuple], outputs: list[tuple], producer: dict[str, int],
                  stored: set[str], constant: list[bool]) -> list[str]:
    """Node names, made unique. An unnamed node is named after the weight it reads ('conv2_1/x1_w_0/Conv'),
    else placed in the scope of the node feeding it, under its output's name, so converted models that name
    only their tensors still group by the weights' paths."""
    names, seen = [], set()
    for i, node in enumerate(nodes):
        name = node.name or _derived_name(node.op_type, i, inputs[i], outputs[i], names, producer, stored, constant)
        if name in seen:
            name = f"{name}#{i}"
        seen.add(name)
        names.append(name)
    return names


def _derived_name(op_type: str, i: int, ins: tuple, outs: tuple, names: list[str],
                  producer: dict[str, int], stored: set[str], constant: list[bool]) -> str:
    output = next((o for o in outs if o), "") or f"{op_type}_{i}"
    if constant[i]:
        return output
    weight = next((v for v in ins if v and (v in stored or (v in producer and constant[producer[v]]))), None)
    if weight:
        return f"{weight.strip('/')}/{op_type}"
    feeder = next((producer[v] for v in ins if v in producer), None)
    if feeder is not None and "/" in names[feeder].strip("/"):
        return f"{names[feeder].strip('/').rsplit('/', 1)[0]}/{output.rsplit('/', 1)[-1]}"
    return output


def synthetic_transformer_graph(n_nodes: int, seed: int = 0) -> OpGraph:
    """A transformer-shaped graph of about `n_nodes` nodes named like torch's ONNX export
    ('/encoder/layer.3/attention/self/query/MatMul'), with residual edges: for benchmarks and tests."""
    rng = np.random.default_rng(seed)
    block = [("attention/self/query", ["MatMul", "Add"]), ("attention/self/key", ["MatMul", "Add"]),
             ("attention/self/value", ["MatMul", "Add"]), ("attention/self", ["Reshape", "Transpose", "MatMul",
                                                                              "Div", "Softmax", "MatMul"]),
             ("attention/output/dense", ["MatMul", "Add"]), ("attention/output/LayerNorm", ["LayerNormalization"]),
             ("intermediate/dense", ["MatMul", "Add"]), ("intermediate/act", ["Gelu"]),
             ("output/dense", ["MatMul", "Add"]), ("output/LayerNorm", ["LayerNormalization"])]
    per_layer = sum(len(ops) for _, ops in block)
    n_layers = max(1, (n_nodes - 4) // per_layer)
    names, ops, layers, src, dst = [], [], [], [], []

    def add(name: str, op: str, layer: str = "", inputs: tuple[int, ...] = ()) -> int:
        names.append(name)
        ops.append(op)
        layers.append(layer)
        for j in inputs:
            src.append(j)
            dst.append(len(names) - 1)
        return len(names) - 1

    prev = add("/embeddings/word_embeddings/Gather", "Gather", "embeddings.word_embeddings")
    prev = add("/embeddings/LayerNorm/LayerNormalization", "LayerNormalization", "embeddings.LayerNorm", (prev,))
    for k in range(n_layers):
        base = f"/encoder/layer.{k}"
        block_in, qkv = prev, []
        for scope, scope_ops in block:
            start = block_in if scope.startswith(("attention/self/", "attention/self")) and len(qkv) < 3 else prev
            node = start
            for op in scope_ops:
                layer = f"encoder.layer.{k}.{scope.replace('/', '.')}" if op in ("MatMul", "LayerNormalization") \
                    and scope != "attention/self" else ""
                extra = (block_in,) if op == "LayerNormalization" and rng.random() < 2 else ()
                node = add(f"{base}/{scope}/{op}_{len(names)}", op, layer, (node,) + extra)
            if scope.startswith("attention/self/"):
                qkv.append(node)
            if scope == "attention/self":
                src.extend(qkv[1:])
                dst.extend([len(names) - 1] * len(qkv[1:]))
            prev = node
    prev = add("/pooler/dense/Gemm", "Gemm", "pooler.dense", (prev,))
    add("/classifier/Gemm", "Gemm", "classifier", (prev,))
    return OpGraph(names=tuple(names), op_types=tuple(ops), layers=tuple(_unique_layers(layers)),
                   src=np.asarray(src, dtype=np.int64), dst=np.asarray(dst, dtype=np.int64))


def _unique_layers(layers: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for name in layers:
        if name and name in seen:
            name = ""
        seen.add(name)
        out.append(name)
    return out
