"""Find the layers with weights in an ONNX graph and give them the same names as in torch.

A layer's name is its weight initializer's name without a trailing '.weight' (and without the suffixes that
quantizers add), so `fc1` names the same layer in a torch module and in its ONNX export; a weight that has no
such name (made by a Constant node, say) takes the node's name. Weights produced by nodes (Constant,
ConstantOfShape, Identity, Reshape, Transpose, Cast, Squeeze, Unsqueeze, DequantizeLinear of constants) are
resolved to arrays, so graphs that do not store weights as initializers are still described.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

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
FOUR_BIT_TYPES = {getattr(onnx.TensorProto, n): n.lower() for n in ("INT4", "UINT4", "FLOAT4E2M1")
                  if hasattr(onnx.TensorProto, n)}
MAX_FILLED_ELEMENTS = 2**28  # ConstantOfShape outputs up to this size are weights (a ResNet's fc is 2M)


@dataclass(frozen=True)
class WeightedNode:
    """A node with a weight: its layer name, the node, the weight's value name and (if any) bias name.

    `weight` (the array) is read from the graph's constant values when first asked for, so listing the layers
    of a big model, or reading one layer's weight, does not copy every tensor."""

    name: str
    node: onnx.NodeProto
    weight_name: str
    bias_name: str | None
    stored_dtype: str  # dtype of the tensor as stored (int8 for a quantized weight behind DequantizeLinear)
    stored_bytes: int
    values: "ConstantValues" = field(repr=False, compare=False, default=None)

    @property
    def weight(self) -> np.ndarray:
        return self.values[self.weight_name]


class ConstantValues(Mapping):
    """Every constant value of a graph by name: initializers (converted to arrays when first read, then kept)
    and the outputs of foldable nodes on constants (computed up front)."""

    def __init__(self, graph: onnx.GraphProto):
        self._initializers = {init.name: init for init in graph.initializer}
        self._arrays: dict[str, np.ndarray] = {}
        self._fold_nodes(graph)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = numpy_helper.to_array(self._initializers[name])  # KeyError when unknown
        return self._arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self._arrays or name in self._initializers

    def __iter__(self):
        return iter(set(self._initializers) | set(self._arrays))

    def __len__(self) -> int:
        return len(set(self._initializers) | set(self._arrays))

    def shape(self, name: str) -> tuple[int, ...]:
        """The value's shape, from the tensor header when it has not been read yet."""
        if name not in self._arrays and name in self._initializers:
            return tuple(int(d) for d in self._initializers[name].dims)
        return tuple(self[name].shape)

    def _fold_nodes(self, graph: onnx.GraphProto) -> None:
        for node in graph.node:
            if node.op_type not in FOLDABLE:
                continue
            inputs = [i for i in node.input if i]
            if not all(i in self for i in inputs):
                continue
            try:
                out = _fold(node, [self[i] for i in inputs])
            except Exception:  # an odd attribute combination: leave this value non-constant
                continue
            if out is not None:
                self._arrays[node.output[0]] = out


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


def constant_values(graph: onnx.GraphProto) -> ConstantValues:
    """Every value in `graph` that is constant: initializers plus the outputs of foldable nodes on constants."""
    return ConstantValues(graph)


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
        if int(np.prod(shape, dtype=np.int64)) > MAX_FILLED_ELEMENTS:  # a memory bomb is not a weight
            return None
        # a read-only broadcast view: a filled weight costs no memory until someone changes it
        return np.broadcast_to(fill.reshape(-1)[:1].reshape(()), shape)
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


def stored_source(name: str, graph_nodes: dict[str, onnx.NodeProto], initializers: dict[str, onnx.TensorProto]):
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
        ndim = len(values.shape(weight_name))
        if ndim == 0 or (node.op_type in ("MatMul", "Gather") and ndim < 2):
            continue
        source = stored_source(weight_name, producers, initializers)
        stored = initializers.get(source)
        if stored is not None:
            _, stored_bytes, stored_dtype = tensor_header_size(stored)
        else:
            weight = values[weight_name]
            stored_dtype, stored_bytes = str(weight.dtype), int(weight.nbytes)
        name = layer_name_from(source, node)
        if name in used_names:  # a weight shared by two nodes: keep names unique
            name = node.name or f"{name}#{len(found)}"
        used_names.add(name)
        bias = node.input[b_idx] if b_idx is not None and len(node.input) > b_idx and node.input[b_idx] else None
        found.append(WeightedNode(name, node, weight_name, bias, stored_dtype, stored_bytes, values))
    return found


def tensor_header_size(t: onnx.TensorProto) -> tuple[int, int, str]:
    """(elements, bytes, dtype name) of a TensorProto from its header, without reading its data."""
    n = int(math.prod(int(d) for d in t.dims))
    if t.data_type in FOUR_BIT_TYPES:
        return n, (n + 1) // 2, FOUR_BIT_TYPES[t.data_type]
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
    except (KeyError, TypeError, ValueError):
        return n, 0, "unknown"
    return n, n * dtype.itemsize, dtype.name
