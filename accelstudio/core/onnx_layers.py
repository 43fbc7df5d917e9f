"""Find the layers with weights in an ONNX graph and give them the same names as in torch.

A layer's name is its weight initializer's name without a trailing '.weight' (and without the suffixes that
quantizers add), so `fc1` names the same layer in a torch module and in its ONNX export; a weight that has no
such name (made by a Constant node, say) takes the node's name. Weights produced by nodes (Constant,
ConstantOfShape, Identity, Reshape, Transpose, Cast, Squeeze, Unsqueeze, DequantizeLinear of constants) are
resolved to arrays, so graphs that do not store weights as initializers are still described.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

# op type -> index of the weight input (and of the bias input, or None)
WEIGHT_INPUTS: dict[str, tuple[int, int | None]] = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (1, None), "Gather": (0, None),
    "LayerNormalization": (1, 2), "BatchNormalization": (1, 2), "InstanceNormalization": (1, 2),
    "ConvInteger": (1, None), "MatMulInteger": (1, None), "QLinearConv": (3, 8), "QLinearMatMul": (3, None),
    "MatMulNBits": (1, 5), "DynamicQuantizeMatMul": (1, 4), "Attention": (1, 2), "Embedding": (0, None),
}
NAME_SUFFIXES = (".weight", "_quantized", "_Transposed", "_DequantizeLinear_Output", "_Q4", "_Q8", "_fp16", "_scale")
FOLDABLE = {"Constant", "ConstantOfShape", "Identity", "Reshape", "Transpose", "Cast", "Squeeze", "Unsqueeze",
            "DequantizeLinear"}


@dataclass(frozen=True)
class WeightedNode:
    """A node with a weight: its layer name, the node, the weight's value name, array and (if any) bias name."""

    name: str
    node: onnx.NodeProto
    weight_name: str
    weight: np.ndarray
    bias_name: str | None
    stored_dtype: str  # dtype of the tensor as stored (int8 for a quantized weight behind DequantizeLinear)
    stored_bytes: int


def layer_name_from(value_name: str, node: onnx.NodeProto) -> str:
    """The layer name for a weight called `value_name` used by `node`."""
    name = value_name
    changed = True
    while changed:
        changed = False
        for suffix in NAME_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                changed = True
    if name.startswith("onnx::") or name == value_name and not _looks_like_param(value_name):
        return _torch_scope(node.name) or node.name or name
    return name


def _torch_scope(node_name: str) -> str | None:
    """'blocks.0.attn.q' for a node named '/blocks/blocks.0/attn/q/MatMul' by torch's ONNX exporter, which names
    the transposed copy of a Linear weight 'onnx::MatMul_123' when the Linear takes a 3-D input (a scope part
    may repeat its parent's qualified name, as children of nn.Sequential do)."""
    parts = node_name.split("/")
    if len(parts) < 3 or parts[0] != "" or not all(parts[1:-1]):
        return None
    name = ""
    for part in parts[1:-1]:
        name = part if not name or part.startswith(name + ".") else f"{name}.{part}"
    return name


def _looks_like_param(name: str) -> bool:
    return "." in name or name.endswith(("weight", "bias"))


def constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Every value in `graph` that is constant: initializers plus the outputs of foldable nodes on constants."""
    values: dict[str, np.ndarray] = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type not in FOLDABLE:
            continue
        inputs = [i for i in node.input if i]
        if not all(i in values for i in inputs):
            continue
        try:
            out = _fold(node, [values[i] for i in inputs])
        except Exception:  # an odd attribute combination: leave this value non-constant
            continue
        if out is not None:
            values[node.output[0]] = out
    return values


def _fold(node: onnx.NodeProto, args: list[np.ndarray]) -> np.ndarray | None:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    if op == "Constant":
        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])
        for key in ("value_float", "value_int"):
            if key in attrs:
                return np.array(attrs[key])
        for key in ("value_floats", "value_ints"):
            if key in attrs:
                return np.array(attrs[key])
        return None
    if op == "ConstantOfShape":
        fill = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
        shape = tuple(int(d) for d in args[0])
        if int(np.prod(shape, dtype=np.int64)) > 50_000_000:  # refuse to materialize a memory bomb
            return None
        return np.full(shape, fill.reshape(-1)[0], dtype=fill.dtype)
    if op == "Identity":
        return args[0]
    if op == "Reshape":
        shape = [int(d) for d in args[1]]
        shape = [args[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return args[0].reshape(shape)
    if op == "Transpose":
        return np.transpose(args[0], attrs.get("perm"))
    if op == "Cast":
        return args[0].astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))
    if op in ("Squeeze", "Unsqueeze"):
        axes = attrs.get("axes", list(args[1]) if len(args) > 1 else None)
        if op == "Squeeze":
            return np.squeeze(args[0], axis=tuple(axes) if axes is not None else None)
        out = args[0]
        for ax in sorted(int(a) for a in axes):
            out = np.expand_dims(out, ax)
        return out
    if op == "DequantizeLinear":
        x, scale = args[0].astype(np.float32), args[1].astype(np.float32)
        zero = args[2].astype(np.float32) if len(args) > 2 else np.zeros_like(scale)
        axis = attrs.get("axis", 1)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * x.ndim
            shape[axis] = scale.size
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return (x - zero) * scale
    return None


def _stored_source(name: str, graph_nodes: dict[str, onnx.NodeProto], initializers: dict[str, onnx.TensorProto]):
    """Follow a constant value back through Identity/DequantizeLinear/Reshape... to the tensor that stores it."""
    seen = 0
    while name not in initializers and name in graph_nodes and seen < 16:
        node = graph_nodes[name]
        if node.op_type not in FOLDABLE or node.op_type in ("Constant", "ConstantOfShape") or not node.input:
            break
        name = node.input[0]
        seen += 1
    return name


def weighted_nodes(model: onnx.ModelProto) -> list[WeightedNode]:
    """The nodes of `model`'s main graph that carry a constant weight, in graph order."""
    graph = model.graph
    values = constant_values(graph)
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {init.name: init for init in graph.initializer}
    found: list[WeightedNode] = []
    used_names: set[str] = set()
    for node in graph.node:
        spec = WEIGHT_INPUTS.get(node.op_type)
        if spec is None:
            continue
        w_idx, b_idx = spec
        if len(node.input) <= w_idx or node.input[w_idx] not in values:
            continue
        weight_name = node.input[w_idx]
        weight = values[weight_name]
        if weight.ndim == 0 or (node.op_type in ("MatMul", "Gather") and weight.ndim < 2):
            continue
        source = _stored_source(weight_name, producers, initializers)
        stored = initializers.get(source)
        if stored is not None:
            stored_arr = values[source]
            stored_dtype, stored_bytes = str(stored_arr.dtype), int(stored_arr.nbytes)
        else:
            stored_dtype, stored_bytes = str(weight.dtype), int(weight.nbytes)
        name = layer_name_from(source, node)
        if name in used_names:  # a weight shared by two nodes: keep names unique
            name = node.name or f"{name}#{len(found)}"
        used_names.add(name)
        bias = node.input[b_idx] if b_idx is not None and len(node.input) > b_idx and node.input[b_idx] else None
        found.append(WeightedNode(name, node, weight_name, weight, bias, stored_dtype, stored_bytes))
    return found
