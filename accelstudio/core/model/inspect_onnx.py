"""Layer inspection for ONNX graphs: weighted nodes, their storage and FLOPs from inferred shapes.

Shapes come from onnx_shapes (onnx's shape inference, then ONNX Runtime's symbolic one where dims stay unknown).
Storage is counted by onnx_storage, each stored tensor once. FLOPs follow FLOP_FORMULAS, one
entry per op type, with torch's convention (2 per multiply-accumulate, convolutions and matrix products
only); a node whose shapes could not be inferred counts 0 and is reported in the warnings.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from accelstudio.core.model.summary import LayerStats, add_bytes, make_layer
from accelstudio.core.model.handle import InputSpec
from accelstudio.core.model.onnx_layers import WeightedNode, stored_source, constant_values, weighted_nodes
from accelstudio.core.model.onnx_shapes import infer_shapes
from accelstudio.core.model.onnx_storage import StorageLedger

Shape = tuple  # tuple of int | None
ShapeOf = Callable[[str], Shape | None]

# op type -> (index of the scale input, index of the zero-point input, axis of per-channel parameters)
QUANT_PARAMS: dict[str, tuple[int | None, int | None, int]] = {
    "QLinearConv": (4, 5, 0), "QLinearMatMul": (4, 5, -1), "DynamicQuantizeMatMul": (2, 3, -1),
    "MatMulInteger": (None, 3, -1), "ConvInteger": (None, 3, 0), "MatMulNBits": (2, 3, 0),
}


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


def inspect_onnx(model: onnx.ModelProto, inputs: tuple[InputSpec, ...]):
    """(layers, (total_params, total_bytes, total_flops, other_params, other_bytes), warnings) at `inputs`.

    Totals are the layers' sums plus the stored tensors no layer owns ("other"), see onnx_storage.
    """
    shapes, notes = infer_shapes(model, inputs, FLOP_FORMULAS)
    shape_of = shapes.get
    total_flops, unknown = 0, 0
    for node in model.graph.node:
        flops = node_flops(node, shape_of)
        total_flops += flops or 0
        unknown += flops is None
    if unknown:
        notes.append(f"FLOPs of {unknown} node(s) not counted: their shapes could not be inferred")
    lookup = _ValueLookup(model)
    ledger = StorageLedger(model.graph, lookup.folded())
    layers = [_layer_stats(w, lookup, shape_of, ledger) for w in weighted_nodes(model)]
    other_params, other_bytes = ledger.unowned()
    total_params = sum(layer.params for layer in layers) + other_params
    total_bytes = sum(layer.bytes for layer in layers) + other_bytes
    return layers, (total_params, total_bytes, total_flops, other_params, other_bytes), notes


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
        return self.folded().get(name)

    def folded(self) -> dict[str, np.ndarray]:
        """Every constant value of the graph (computed once)."""
        if self._folded is None:
            self._folded = constant_values(self._graph)
        return self._folded


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
    dq = _dequantize_after(w, lookup)
    if dq is not None:  # an int8 embedding table: its DequantizeLinear holds the scale and zero point
        return _dequantize_table(weight, dq, lookup)
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


def _layer_stats(w: WeightedNode, lookup: _ValueLookup, shape_of: ShapeOf, ledger: StorageLedger) -> LayerStats:
    """One layer's row. Its params are the weight's and bias' elements, its bytes everything it stores (with
    scales, zero points, normalization statistics); a tensor an earlier layer owns counts there only."""
    weight = dequantized_weight(w, lookup)
    primary = stored_source(w.weight_name, lookup.producers, ledger.stored)
    shared_with = ledger.owner(primary) or ""
    bias_name, bias = bias_of(w, lookup)
    bias_shared = bias_name is not None and any(ledger.owner(n) for n in ledger.leaves(bias_name))
    params = (0 if shared_with else weight.size) + (bias.size if bias is not None and not bias_shared else 0)
    names = set(ledger.leaves(w.weight_name)) | ledger.leaves(bias_name)
    for name in _qparam_names(w, lookup) + _statistics_names(w):
        names |= ledger.leaves(name)
    stored: dict[str, int] = {}
    for tensor in ledger.claim(w.name, names):
        add_bytes(stored, tensor.dtype, tensor.nbytes)
    flops = node_flops(w.node, shape_of) or 0
    return make_layer(w.name, w.node.op_type, weight.shape, params, w.stored_dtype, stored, count_zeros(weight),
                      weight.size, flops, shared_with=shared_with)


def count_zeros(weight: np.ndarray) -> int:
    """Exact zeros of a weight; a filled (broadcast) one is all or nothing, without expanding it."""
    if weight.size and not any(weight.strides):
        return int(weight.size) if weight.flat[0] == 0 else 0
    return int(np.count_nonzero(weight == 0))


def _statistics_names(w: WeightedNode) -> list[str]:
    """BatchNormalization's running mean and variance: stored by the layer, not parameters of it."""
    return list(w.node.input[3:5]) if w.node.op_type == "BatchNormalization" else []


def _qparam_names(w: WeightedNode, lookup: _ValueLookup) -> list[str]:
    """Names of the weight's scales and zero points: node inputs, onnxruntime's '<weight>_scale', or the
    DequantizeLinear right after a quantized Gather (an int8 embedding table)."""
    scale_idx, zp_idx, _ = QUANT_PARAMS.get(w.node.op_type, (None, None, 0))
    inputs = list(w.node.input)
    names = [inputs[i] for i in (scale_idx, zp_idx) if i is not None and len(inputs) > i and inputs[i]]
    if w.node.op_type in ("MatMulInteger", "ConvInteger") and w.weight_name.endswith("_quantized"):
        names.append(w.weight_name[: -len("_quantized")] + "_scale")
    dq = _dequantize_after(w, lookup)
    if dq is not None:
        names += [i for i in dq.input[1:3] if i]
    return names


def _dequantize_table(table: np.ndarray, dq: onnx.NodeProto, lookup: _ValueLookup) -> np.ndarray:
    """(table - zero point) * scale with the DequantizeLinear's parameters (per tensor or along its axis)."""
    attrs = {x.name: onnx.helper.get_attribute_value(x) for x in dq.attribute}
    axis = attrs.get("axis", 1)
    scale = lookup.get(dq.input[1])
    zero = lookup.get(dq.input[2]) if len(dq.input) > 2 else None
    out = table.astype(np.float32)
    if zero is not None:
        out = out - _along(zero.astype(np.float32), out.ndim, axis)
    return out * _along(scale.astype(np.float32), out.ndim, axis) if scale is not None else out


def _dequantize_after(w: WeightedNode, lookup: _ValueLookup) -> onnx.NodeProto | None:
    """The DequantizeLinear that reads a Gather's output when the gathered table is stored as integers."""
    if w.node.op_type != "Gather" or w.weight.dtype not in (np.int8, np.uint8):
        return None
    users = lookup.consumers.get(w.node.output[0], [])
    return users[0] if len(users) == 1 and users[0].op_type == "DequantizeLinear" else None


def onnx_layer_weight(model: onnx.ModelProto, layer_name: str) -> np.ndarray | None:
    """The float32 weight of layer `layer_name` (dequantized), or None if the model has no such layer."""
    for w in weighted_nodes(model):
        if w.name == layer_name:
            return dequantized_weight(w, _ValueLookup(model))
    return None
