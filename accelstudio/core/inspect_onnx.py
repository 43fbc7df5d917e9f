"""Layer inspection for ONNX graphs: weighted nodes, their storage and FLOPs from inferred shapes.

Shapes come from onnx.shape_inference on a copy of the graph that holds the concrete input shapes and no
large tensor data (so models near the 2 GiB protobuf limit still infer). FLOPs follow FLOP_FORMULAS, one
entry per op type, with torch's convention (2 per multiply-accumulate, convolutions and matrix products
only); a node whose shapes could not be inferred counts 0 and is reported in the warnings.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from accelstudio.core.inspect import LayerStats, add_bytes, make_layer
from accelstudio.core.model import InputSpec
from accelstudio.core.onnx_layers import WeightedNode, constant_values, weighted_nodes

Shape = tuple  # tuple of int | None
ShapeOf = Callable[[str], Shape | None]

# op type -> (index of the scale input, index of the zero-point input, axis of per-channel parameters)
QUANT_PARAMS: dict[str, tuple[int | None, int | None, int]] = {
    "QLinearConv": (4, 5, 0), "QLinearMatMul": (4, 5, -1), "DynamicQuantizeMatMul": (2, 3, -1),
    "MatMulInteger": (None, 3, -1), "ConvInteger": (None, 3, 0), "MatMulNBits": (2, 3, 0),
}
FOUR_BIT_TYPES = {getattr(onnx.TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(onnx.TensorProto, n)}
SMALL_TENSOR = 64  # tensors up to this many elements keep their data for shape inference (Reshape targets)


def _prod(dims) -> int:
    return int(math.prod(int(d) for d in dims))


def _known(*shapes) -> bool:
    return all(s is not None and all(isinstance(d, int) and d >= 0 for d in s) for s in shapes)


def _conv_flops(node, shape_of: ShapeOf, w_idx: int = 1) -> int | None:
    out, w = shape_of(node.output[0]), shape_of(node.input[w_idx])
    if not _known(out, w):
        return None
    return 2 * _prod(out) * _prod(w[1:])


def _conv_transpose_flops(node, shape_of: ShapeOf) -> int | None:
    x, w = shape_of(node.input[0]), shape_of(node.input[1])
    if not _known(x, w):
        return None
    return 2 * x[0] * _prod(x[2:]) * _prod(w)


def _gemm_flops(node, shape_of: ShapeOf) -> int | None:
    a, b = shape_of(node.input[0]), shape_of(node.input[1])
    if not _known(a, b) or len(a) != 2 or len(b) != 2:
        return None
    attrs = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    m, k = (a[1], a[0]) if attrs.get("transA", 0) else a
    n = b[0] if attrs.get("transB", 0) else b[1]
    return 2 * m * k * n


def _matmul_flops(a_idx: int, b_idx: int):
    def count(node, shape_of: ShapeOf) -> int | None:
        a, b = shape_of(node.input[a_idx]), shape_of(node.input[b_idx])
        if not _known(a, b) or not a or not b:
            return None
        m, k = (1, a[0]) if len(a) == 1 else a[-2:]
        n = 1 if len(b) == 1 else b[-1]
        batch = np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
        return 2 * _prod(batch) * m * k * n

    return count


def _matmul_nbits_flops(node, shape_of: ShapeOf) -> int | None:
    a = shape_of(node.input[0])
    attrs = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    if not _known(a) or "K" not in attrs or "N" not in attrs:
        return None
    return 2 * _prod(a[:-1]) * attrs["K"] * attrs["N"]


FLOP_FORMULAS: dict[str, Callable[[onnx.NodeProto, ShapeOf], int | None]] = {
    "Conv": _conv_flops,
    "ConvInteger": _conv_flops,
    "QLinearConv": lambda node, shape_of: _conv_flops(node, shape_of, 3),
    "ConvTranspose": _conv_transpose_flops,
    "Gemm": _gemm_flops,
    "MatMul": _matmul_flops(0, 1),
    "MatMulInteger": _matmul_flops(0, 1),
    "DynamicQuantizeMatMul": _matmul_flops(0, 1),
    "QLinearMatMul": _matmul_flops(0, 3),
    "MatMulNBits": _matmul_nbits_flops,
    "Gather": lambda node, shape_of: 0,
}


def node_flops(node: onnx.NodeProto, shape_of: ShapeOf) -> int | None:
    """FLOPs of one node (0 for ops without a formula), or None when its shapes are unknown."""
    formula = FLOP_FORMULAS.get(node.op_type)
    if formula is None:
        return 0
    try:
        return formula(node, shape_of)
    except (ValueError, IndexError, TypeError):  # inconsistent shapes: unknown, never an error
        return None


def infer_shapes(model: onnx.ModelProto, inputs: tuple[InputSpec, ...]) -> tuple[dict[str, Shape], list[str]]:
    """Every value's shape at the concrete `inputs`, and warnings (conflicting input dims, failed inference)."""
    skeleton = _skeleton(model, {spec.name: spec.shape for spec in inputs})
    shapes: dict[str, Shape] = {t.name: tuple(t.dims) for t in model.graph.initializer}
    notes = [note for note in (_static_dim_conflicts(model, inputs),) if note]
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton, strict_mode=False, data_prop=True)
    except Exception as exc:  # a graph onnx cannot infer: FLOPs stay unknown
        inferred = skeleton
        notes.append(f"shape inference failed ({type(exc).__name__}); FLOPs not counted")
    graph = inferred.graph
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = _dims(info)
        if dims is not None:
            shapes.setdefault(info.name, dims)
    return shapes, notes


def _static_dim_conflicts(model: onnx.ModelProto, inputs: tuple[InputSpec, ...]) -> str | None:
    """A warning when a requested shape differs from a fixed dimension the graph declares."""
    declared = {info.name: _dims(info) for info in model.graph.input}
    for spec in inputs:
        dims = declared.get(spec.name)
        if dims is None or len(dims) != len(spec.shape):
            continue
        if any(d is not None and d > 0 and d != s for d, s in zip(dims, spec.shape)):
            shown = tuple("?" if d is None else d for d in dims)
            return (f"input '{spec.name}' is inspected at {tuple(spec.shape)} but the graph declares {shown}; "
                    "FLOPs follow the inspected shape")
    return None


def _dims(info: onnx.ValueInfoProto) -> Shape | None:
    tensor_type = info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)


def _skeleton(model: onnx.ModelProto, input_shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """A copy of `model` without large tensor data, its inputs set to `input_shapes`."""
    skeleton = onnx.ModelProto()
    skeleton.ir_version = model.ir_version
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    graph = skeleton.graph
    graph.name = model.graph.name
    graph.node.extend(model.graph.node)
    graph.output.extend(model.graph.output)
    graph.value_info.extend(model.graph.value_info)
    for init in model.graph.initializer:
        if _prod(init.dims) <= SMALL_TENSOR:
            graph.initializer.append(init)
        else:
            graph.initializer.add(name=init.name, dims=init.dims, data_type=init.data_type)
    for info in model.graph.input:
        copy = graph.input.add()
        copy.CopyFrom(info)
        if info.name in input_shapes and info.type.HasField("tensor_type"):
            dims = copy.type.tensor_type.shape.dim
            del dims[:]
            for d in input_shapes[info.name]:
                dims.add().dim_value = int(d)
    return skeleton


def inspect_onnx(model: onnx.ModelProto, inputs: tuple[InputSpec, ...]):
    """(layers, (total_params, total_bytes, total_flops), warnings) for an ONNX model at `inputs`."""
    shapes, notes = infer_shapes(model, inputs)
    shape_of = shapes.get
    total_flops, unknown = 0, 0
    for node in model.graph.node:
        flops = node_flops(node, shape_of)
        total_flops += flops or 0
        unknown += flops is None
    if unknown and not any(note.startswith("shape inference failed") for note in notes):
        notes.append(f"FLOPs of {unknown} node(s) not counted: their shapes could not be inferred")
    lookup = _ValueLookup(model)
    found = weighted_nodes(model)
    layers = [_layer_stats(w, lookup, shape_of) for w in found]
    packed = {w.weight_name: _prod(layer.weight_shape)
              for w, layer in zip(found, layers) if w.node.op_type == "MatMulNBits"}
    total_params, total_bytes = _totals(model, packed)
    return layers, (total_params, total_bytes, total_flops), notes


class _ValueLookup:
    """Constant values by name: initializers directly, folded values computed once when first needed."""

    def __init__(self, model: onnx.ModelProto):
        self._graph = model.graph
        self._inits = {t.name: t for t in model.graph.initializer}
        self._folded: dict[str, np.ndarray] | None = None
        self.producers = {out: node for node in model.graph.node for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def get(self, name: str | None) -> np.ndarray | None:
        if not name:
            return None
        if name in self._inits:
            return numpy_helper.to_array(self._inits[name])
        if self._folded is None:
            self._folded = constant_values(self._graph)
        return self._folded.get(name)


def _quant_inputs(w: WeightedNode, lookup: _ValueLookup) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    scale_idx, zp_idx, axis = QUANT_PARAMS.get(w.node.op_type, (None, None, 0))
    inputs = list(w.node.input)
    scale = lookup.get(inputs[scale_idx]) if scale_idx is not None and len(inputs) > scale_idx else None
    zero = lookup.get(inputs[zp_idx]) if zp_idx is not None and len(inputs) > zp_idx else None
    if scale is None and w.node.op_type in ("MatMulInteger", "ConvInteger") and w.weight_name.endswith("_quantized"):
        # onnxruntime's quantizer applies the weight scale in a later Mul; it names it <weight>_scale
        scale = lookup.get(w.weight_name[: -len("_quantized")] + "_scale")
    return scale, zero, axis


TRAILING_BIAS_OPS = {"MatMul", "MatMulInteger", "DynamicQuantizeMatMul", "MatMulNBits", "FusedMatMul"}


def bias_of(w: WeightedNode, lookup: _ValueLookup) -> tuple[str | None, np.ndarray | None]:
    """The layer's bias: the node's bias input, or for a matrix product the constant added right after it
    (through at most a Cast and a Mul, as quantizers and exporters of nn.Linear leave it)."""
    if w.bias_name:
        return w.bias_name, lookup.get(w.bias_name)
    if w.node.op_type not in TRAILING_BIAS_OPS:
        return None, None
    value = w.node.output[0]
    for _ in range(3):
        users = lookup.consumers.get(value, [])
        if len(users) != 1:
            return None, None
        user = users[0]
        if user.op_type == "Add":
            other = [i for i in user.input if i != value]
            bias = lookup.get(other[0]) if len(other) == 1 else None
            return (other[0], bias) if bias is not None and bias.ndim == 1 else (None, None)
        if user.op_type not in ("Cast", "Mul"):
            return None, None
        value = user.output[0]
    return None, None


def dequantized_weight(w: WeightedNode, lookup: _ValueLookup) -> np.ndarray:
    """The layer's weight as float32, undoing the node's own quantization parameters where it has them."""
    if w.node.op_type == "MatMulNBits":
        return _unpack_nbits(w, lookup)
    weight = w.weight
    if w.node.op_type not in QUANT_PARAMS:
        return weight.astype(np.float32, copy=False)
    scale, zero, axis = _quant_inputs(w, lookup)
    out = weight.astype(np.float32)
    if zero is not None:
        out = out - _along(zero.astype(np.float32), out.ndim, axis)
    if scale is not None:
        out = out * _along(scale.astype(np.float32), out.ndim, axis)
    return out


def _along(param: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    if param.size <= 1:
        return param.reshape(())
    shape = [1] * ndim
    shape[axis] = param.size
    return param.reshape(shape)


def _unpack_nbits(w: WeightedNode, lookup: _ValueLookup) -> np.ndarray:
    """MatMulNBits' packed (N, blocks, blob) weight as a float32 (K, N) matrix, like the MatMul it replaced."""
    attrs = {x.name: onnx.helper.get_attribute_value(x) for x in w.node.attribute}
    k, n, bits, block = attrs["K"], attrs["N"], attrs.get("bits", 4), attrs["block_size"]
    packed = w.weight.astype(np.uint8).reshape(n, -1)
    if bits == 4:
        q = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, -1)
    else:
        q = packed
    q = q[:, : (k + block - 1) // block * block].astype(np.float32).reshape(n, -1, block)
    scale, zero, _ = _quant_inputs(w, lookup)
    scale = scale.astype(np.float32).reshape(n, -1, 1) if scale is not None else np.ones((n, 1, 1), np.float32)
    if zero is None or zero.dtype != np.uint8 or bits != 4:
        zp = np.float32(2 ** (bits - 1)) if zero is None else zero.astype(np.float32).reshape(n, -1, 1)
    else:
        zp = np.stack([zero & 0x0F, zero >> 4], axis=-1).reshape(n, -1)[:, : q.shape[1]]
        zp = zp.astype(np.float32).reshape(n, -1, 1)
    return ((q - zp) * scale).reshape(n, -1)[:, :k].T.copy()


def _layer_stats(w: WeightedNode, lookup: _ValueLookup, shape_of: ShapeOf) -> LayerStats:
    weight = dequantized_weight(w, lookup)
    stored: dict[str, int] = {}
    add_bytes(stored, w.stored_dtype, w.stored_bytes)
    params = weight.size
    _, bias = bias_of(w, lookup)
    if bias is not None:
        params += bias.size
        add_bytes(stored, str(bias.dtype), bias.nbytes)
    for param in _qparam_arrays(w, lookup):
        add_bytes(stored, str(param.dtype), param.nbytes)
    flops = node_flops(w.node, shape_of) or 0
    zeros = int(np.count_nonzero(weight == 0))
    return make_layer(w.name, w.node.op_type, weight.shape, params, w.stored_dtype, stored, zeros, weight.size,
                      flops)


def _qparam_arrays(w: WeightedNode, lookup: _ValueLookup) -> list[np.ndarray]:
    """Scales and zero points of the layer's weight: node inputs or a DequantizeLinear feeding the weight."""
    scale, zero, _ = _quant_inputs(w, lookup)
    found = [a for a in (scale, zero) if a is not None]
    producers = lookup.producers
    name, depth = w.weight_name, 0
    while name in producers and depth < 16:
        node = producers[name]
        if node.op_type == "DequantizeLinear":
            found += [a for a in (lookup.get(i) for i in node.input[1:3]) if a is not None]
            break
        if not node.input:
            break
        name, depth = node.input[0], depth + 1
    return found


def _tensor_size(t: onnx.TensorProto) -> tuple[int, int]:
    """(elements, bytes) of a stored tensor from its header, without reading its data."""
    n = _prod(t.dims)
    if t.data_type in FOUR_BIT_TYPES:
        return n, (n + 1) // 2
    try:
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        itemsize = 0
    return n, n * itemsize


def _totals(model: onnx.ModelProto, packed: dict[str, int]) -> tuple[int, int]:
    """Elements and bytes of every stored tensor (initializers and Constant nodes) except int64 index data.

    A packed sub-byte weight (named in `packed`) counts its logical elements, not its stored bytes.
    """
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            tensors += [a.t for a in node.attribute if a.name == "value"]
    params = nbytes = 0
    for t in tensors:
        if t.data_type == onnx.TensorProto.INT64:
            continue
        n, b = _tensor_size(t)
        params += packed.get(t.name, n)
        nbytes += b
    return params, nbytes


def onnx_layer_weight(model: onnx.ModelProto, layer_name: str) -> np.ndarray | None:
    """The float32 weight of layer `layer_name` (dequantized), or None if the model has no such layer."""
    for w in weighted_nodes(model):
        if w.name == layer_name:
            return dequantized_weight(w, _ValueLookup(model))
    return None
