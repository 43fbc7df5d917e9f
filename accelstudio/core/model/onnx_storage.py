"""Where an ONNX graph keeps its parameters, so that every stored tensor is counted once, by one owner.

A graph stores tensors as initializers, Constant nodes, or ConstantOfShape nodes on a constant shape (onnx's
ResNet-50 test graph makes all its weights that way). A layer's weight, bias, quantization scales and zero
points and normalization statistics are traced back to those stored tensors (through Identity, Transpose,
Cast, DequantizeLinear, ...); the first layer to reach a tensor owns it, a later layer sharing it counts it no
more. What no layer owns is the model's "other" storage, so that header totals are exactly the sum of the
layer rows plus that explicit remainder. int64 tensors (shapes, indices) are not parameters and count nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from accelstudio.core.model.onnx_layers import FOLDABLE, tensor_header_size

NOT_PARAMETERS = {"int64", "uint64", "bool", "object", "str"}
# inputs that hold quantization scales / zero points: stored bytes, but not parameters of the model
QPARAM_SLOTS: dict[str, tuple[int, ...]] = {
    "QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2), "MatMulInteger": (2, 3), "ConvInteger": (2, 3),
    "QLinearConv": (1, 2, 4, 5, 6, 7), "QLinearMatMul": (1, 2, 4, 5, 6, 7), "DynamicQuantizeMatMul": (2, 3),
    "MatMulNBits": (2, 3), "QLinearAdd": (1, 2, 4, 5, 6, 7), "QLinearMul": (1, 2, 4, 5, 6, 7),
    "QGemm": (1, 2, 4, 5, 7, 8), "QLinearGlobalAveragePool": (1, 2, 3, 4), "QLinearSigmoid": (1, 2, 3, 4),
    "QLinearLeakyRelu": (1, 2, 3, 4), "QLinearAveragePool": (1, 2, 3, 4),
}


@dataclass(frozen=True)
class StoredTensor:
    """One tensor the graph stores: its element count, bytes in memory and dtype name."""

    name: str
    elements: int
    nbytes: int
    dtype: str

    @property
    def is_parameter_data(self) -> bool:
        return self.dtype not in NOT_PARAMETERS


def stored_tensors(graph: onnx.GraphProto, folded: dict[str, np.ndarray]) -> dict[str, StoredTensor]:
    """Every tensor `graph` stores: initializers, Constant outputs and ConstantOfShape outputs that fold
    (`folded` holds the graph's constant values, as onnx_layers.constant_values gives them)."""
    found: dict[str, StoredTensor] = {}
    for init in graph.initializer:
        found[init.name] = StoredTensor(init.name, *tensor_header_size(init))
    for node in graph.node:
        if node.op_type not in ("Constant", "ConstantOfShape") or not node.output:
            continue
        name = node.output[0]
        tensor = next((a.t for a in node.attribute if node.op_type == "Constant" and a.name == "value"), None)
        if tensor is not None:
            found[name] = StoredTensor(name, *tensor_header_size(tensor))
        elif name in folded:
            value = folded[name]
            found[name] = StoredTensor(name, int(value.size), int(value.nbytes), value.dtype.name)
    return found


class StorageLedger:
    """Stored tensors of a graph, which layer owns each, and what stays unowned."""

    def __init__(self, graph: onnx.GraphProto, folded: dict[str, np.ndarray]):
        self.stored = stored_tensors(graph, folded)
        self._producers = {out: node for node in graph.node for out in node.output}
        self._consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for node in graph.node:
            for i, name in enumerate(node.input):
                self._consumers.setdefault(name, []).append((node, i))
        self._owner: dict[str, str] = {}
        self._leaves: dict[str, frozenset[str]] = {}

    def leaves(self, name: str | None) -> frozenset[str]:
        """The stored tensors a constant value is computed from (itself when stored)."""
        if not name:
            return frozenset()
        if name not in self._leaves:
            self._leaves[name] = frozenset()  # a cycle guard; graphs are acyclic, but never loop forever
            self._leaves[name] = self._trace(name)
        return self._leaves[name]

    def _trace(self, name: str) -> frozenset[str]:
        if name in self.stored:
            return frozenset({name})
        node = self._producers.get(name)
        if node is None or node.op_type not in FOLDABLE:
            return frozenset()
        found: set[str] = set()
        for source in node.input:
            found |= self.leaves(source)
        return frozenset(found)

    def owner(self, name: str) -> str | None:
        """The layer that owns stored tensor `name`, None while unowned."""
        return self._owner.get(name)

    def claim(self, layer: str, names) -> list[StoredTensor]:
        """Give the not yet owned parameter tensors among `names` to `layer`; returns those it got."""
        got = []
        for name in sorted(set(names)):
            tensor = self.stored.get(name)
            if tensor is None or name in self._owner or not tensor.is_parameter_data:
                continue
            self._owner[name] = layer
            got.append(tensor)
        return got

    def unowned(self) -> tuple[int, int]:
        """(parameters, bytes) of the stored tensors no layer owns; quantization scales and zero points of
        activations count in bytes only."""
        params = nbytes = 0
        for name, tensor in self.stored.items():
            if name in self._owner or not tensor.is_parameter_data:
                continue
            nbytes += tensor.nbytes
            if not self._only_qparam(name):
                params += tensor.elements
        return params, nbytes

    def _only_qparam(self, name: str) -> bool:
        uses = self._consumers.get(name, [])
        return bool(uses) and all(i in QPARAM_SLOTS.get(node.op_type, ()) for node, i in uses)
