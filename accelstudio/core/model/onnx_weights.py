"""Weights that a graph makes with nodes, turned into initializers before ONNX Runtime's quantizers see it.

ONNX Runtime quantizes a MatMul, Gemm, Conv or Gather only when its weight is an initializer. Real graphs often
hand weights over through nodes: the legacy torch exporter shares identical weights through Identity nodes (two
layers that start from the same values), and some graphs build weights with Constant or ConstantOfShape nodes
(onnx's ResNet-50 test graph does). Left as they are, those layers silently stay float32 and the produced model
keeps its fp32 weights beside the int8 ones. Here an Identity of a stored tensor is bypassed (so a shared weight
stays shared and is quantized once), and other node-made weights become initializers of their folded value.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from accelstudio.core.model.onnx_layers import FOLDABLE, WEIGHT_INPUTS, constant_values


def materialize_weights(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of `model` whose weighted nodes read their weights (and biases) from initializers, with the nodes
    that only fed them removed; returns it and how many weight inputs were rewired or folded."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    initializers = {init.name for init in graph.initializer}
    producers = {name: node for node in graph.node for name in node.output}
    values = None
    changed = 0
    fed: set[str] = set()
    for node in graph.node:
        spec = WEIGHT_INPUTS.get(node.op_type)
        if spec is None:
            continue
        for idx in (i for i in spec if i is not None and i < len(node.input)):
            name = node.input[idx]
            if not name or name in initializers or name not in producers:
                continue
            source = _identity_source(name, producers)
            if source in initializers:
                node.input[idx] = source
                changed += 1
                continue
            values = values if values is not None else constant_values(graph)
            if name in values and producers[name].op_type in FOLDABLE and len(producers[name].output) == 1:
                graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(values[name]), name))
                initializers.add(name)
                fed.update(producers[name].input)
                graph.node.remove(producers.pop(name))
                changed += 1
    if changed:
        _drop_dead_foldable_nodes(graph, fed)
    _constant_initializers(out)
    return out, changed


def _constant_initializers(model: onnx.ModelProto) -> None:
    """Before IR version 4 every initializer was also a graph input, which makes it an overridable default
    rather than a constant: the quantizers' new tensors (scales, zero points, int8 weights) are then invalid,
    and ONNX Runtime cannot fold weights. Such graphs move to IR 4 with their weights as constants."""
    if model.ir_version >= 4:
        return
    stored = {init.name for init in model.graph.initializer}
    for inp in [i for i in model.graph.input if i.name in stored]:
        model.graph.input.remove(inp)
    model.ir_version = 4


def _identity_source(name: str, producers: dict[str, onnx.NodeProto]) -> str:
    seen = 0
    while name in producers and producers[name].op_type == "Identity" and seen < 16:
        name = producers[name].input[0]
        seen += 1
    return name


def _drop_dead_foldable_nodes(graph: onnx.GraphProto, fed: set[str]) -> None:
    """Remove side-effect-free constant nodes whose outputs nothing reads any more (repeat until none), then
    the initializers among `fed` (inputs of removed nodes, e.g. ConstantOfShape's shape) that nothing reads."""
    outputs = {o.name for o in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if n.op_type in FOLDABLE and not any(o in read for o in n.output)]
        if not dead:
            break
        for node in dead:
            fed.update(node.input)
            graph.node.remove(node)
    unread = fed - read
    for init in [i for i in graph.initializer if i.name in unread]:
        graph.initializer.remove(init)
    for inp in [i for i in graph.input if i.name in unread]:
        graph.input.remove(inp)
