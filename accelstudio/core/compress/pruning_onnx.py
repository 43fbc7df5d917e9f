"""Pruning of ONNX graphs, in place (the caller passes a copy): zeros written into weight initializers.

The prunable layers are the Conv, ConvTranspose, Gemm and MatMul nodes whose float weight is stored directly
as an initializer (see onnx_layers.weighted_nodes for the shared layer names). The same numpy planner as for
torch is used, so a recipe zeroes the same weights in a model's torch and ONNX forms. For 2:4 the groups of 4
run along the input (reduction) dimension: axis 1.. of Conv and of Gemm with transB=1, axis 0 of Gemm with
transB=0 and of MatMul's right-hand matrix.

Structured pruning would need to rewrite the shapes of every node downstream; it is refused with an error
that says to prune the torch form instead.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from accelstudio.core.errors import CompressionError
from accelstudio.core.model.onnx_layers import weighted_nodes
from accelstudio.core.model.onnx_weights import materialize_weights
from accelstudio.core.progress import ProgressCallback, ProgressEvent, check_cancel
from accelstudio.core.compress.pruning_plan import (
    LayerReport, PrunableWeight, predicted_reports, requested_amounts, sparsity_report, zero_masks,
)
from accelstudio.core.recipe import PruneSpec

PRUNABLE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
STRUCTURED_MESSAGE = ("structured pruning of ONNX graphs is not supported: prune the torch model "
                      "(open the safetensors/.pt form) and export")


def k_axis(node: onnx.NodeProto, ndim: int) -> int | None:
    """PrunableWeight.k_axis for a node's weight: the reduction axis 2:4 groups along (None: all but the first)."""
    if node.op_type == "Conv":
        return None
    if node.op_type == "ConvTranspose":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return None if trans_b else 0
    return ndim - 2  # MatMul: (..., K, N)


def prunable_initializers(model: onnx.ModelProto) -> list[tuple[PrunableWeight, onnx.TensorProto, int]]:
    """(weight as float32, its initializer, bias size) for every prunable layer, in graph order.

    A weight shared by several nodes is listed once; weights that are not float initializers (quantized,
    computed by nodes) are left out.
    """
    inits = {t.name: t for t in model.graph.initializer}
    found, seen = [], set()
    for wn in weighted_nodes(model):
        init = inits.get(wn.weight_name)
        if wn.node.op_type not in PRUNABLE_OPS or init is None or wn.weight_name in seen:
            continue
        if not np.issubdtype(wn.weight.dtype, np.floating):
            continue
        seen.add(wn.weight_name)
        bias = inits.get(wn.bias_name) if wn.bias_name else None
        bias_size = int(np.prod(bias.dims)) if bias is not None else 0
        array = np.asarray(wn.weight, dtype=np.float32)
        found.append((PrunableWeight(wn.name, array, k_axis(wn.node, array.ndim)), init, bias_size))
    return found


def predict_onnx(model: onnx.ModelProto, spec: PruneSpec) -> tuple[list[LayerReport], list[str]]:
    """Per-layer sparsity that `prune_zeroing_onnx` would reach, computed without touching the model."""
    found = prunable_initializers(materialize_weights(model)[0])
    return predicted_reports([w for w, _, _ in found], spec, {w.name: b for w, _, b in found})


def prune_zeroing_onnx(model: onnx.ModelProto, spec: PruneSpec, progress: ProgressCallback | None = None,
                       cancel=None) -> tuple[list[LayerReport], list[str]]:
    """Apply l1-unstructured / random / 2:4 pruning to `model`'s initializers in place."""
    if spec.method == "l1-structured":
        raise CompressionError(STRUCTURED_MESSAGE)
    materialized, rewired = materialize_weights(model)
    if rewired:  # weights made by nodes (ConstantOfShape, Identity-shared) become initializers that can be zeroed
        model.CopyFrom(materialized)
    found = prunable_initializers(model)
    if not found:
        raise CompressionError("no Conv/Gemm/MatMul node reads a float weight (from an initializer or a constant "
                               "node): nothing to prune")
    weights = [w for w, _, _ in found]
    amounts = requested_amounts([w.name for w in weights], spec)
    masks, skipped = zero_masks(weights, spec)
    reports = []
    for i, (weight, init, bias_size) in enumerate(found):
        check_cancel(cancel)
        if weight.name in masks:
            stored = numpy_helper.to_array(init).copy()
            stored[masks[weight.name]] = 0
            init.CopyFrom(numpy_helper.from_array(stored, init.name))
            zeros = int((stored == 0).sum())
        else:
            zeros = int((weight.array == 0).sum())
        requested = 0.0 if weight.name in skipped else amounts[weight.name]
        reports.append(sparsity_report(weight.name, requested, zeros, weight.array.size, bias_size))
        if progress:
            progress(ProgressEvent("prune", (i + 1) / len(found), f"pruned {weight.name}"))
    return reports, skipped
