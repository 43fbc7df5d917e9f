"""Predicted stored size of a model after a recipe, by the same rules the compression steps follow.

The rules are the quantization-mode table (accelstudio.core.quant_modes): for each target backend and mode,
which kinds of layer it stores in fewer bits (`QuantMode.stored_kinds`), and how many bytes a quantized weight
then takes with its scales and zero points (`quantized_weight_bytes`, from the table's bytes per weight).
Everything a mode leaves in float (convolutions under dynamic int8, embeddings under weight-only modes, excluded
layers) keeps its bytes, and the prediction says so in its notes. Structured pruning shrinks the layers by the
planner's reports; zeroing methods (unstructured, 2:4) leave the stored size as it is (dense storage) and only
lower the count of nonzero parameters.

The figure is compared with `inspect_model(...).total_bytes` of the models the compression steps really produce
(tests/core/test_size_prediction.py), so a rule that drifts from what a mode does fails a test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from accelstudio.core.quant_modes import QuantMode, modes_where, quant_mode
from accelstudio.core.recipe import Recipe

WEIGHT_ONLY_BLOCK = 32  # quant_onnx.WEIGHT_ONLY_BLOCK: MatMulNBits' block of input elements per scale

KIND_OF_OP = {
    "MatMul": "linear", "Gemm": "linear", "Linear": "linear", "NonDynamicallyQuantizableLinear": "linear",
    "Conv": "conv", "Conv1d": "conv", "Conv2d": "conv", "Conv3d": "conv",
    "Gather": "embedding", "Embedding": "embedding",
}
HALF_MODES = modes_where(half=True)  # every float tensor in 2 bytes
FLOAT32_BYTES = quant_mode("none").weight_bytes
# Static (calibrated) int8 on an attention model (quant_onnx_static.is_attention_model) keeps LayerNorm and
# embeddings in float and quantizes only MatMul/Gemm/Conv; these layer types in the table mark such a model.
ATTENTION_LAYER_OPS = frozenset({"LayerNormalization", "SkipLayerNormalization", "LayerNorm", "Gather", "Embedding"})


@dataclass(frozen=True)
class SizePrediction:
    """What a recipe is expected to leave: stored bytes, parameters left nonzero, and what stays as it was.

    `changes` is False when the recipe changes nothing (then there is no "after" to show). `float_layers` names
    the layers a quantization mode leaves in float; `notes` says it in words (never silent).
    """

    bytes: int
    nonzero_params: int
    changes: bool
    float_layers: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def predict_size(summary: Any, recipe: Recipe, reports: list | None = None, backend: str | None = None
                 ) -> SizePrediction:
    """Predict the stored size of `summary`'s model after `recipe` when run on `backend` ("onnx" or "torch";
    default: the summary's own). `reports` are the pruning planner's LayerReports (None: not known yet)."""
    backend = backend or summary.backend
    quant = recipe.quantize
    reports_by_name = {r.name: r for r in (reports or [])}
    structured = recipe.prune.method == "l1-structured"
    mode = quant_mode(quant.mode)
    kinds = mode.stored_kinds(backend)
    if mode.needs_calibration and any(layer.op_type in ATTENTION_LAYER_OPS for layer in summary.layers):
        kinds = kinds - {"embedding"}
    half = mode.half
    excluded = set(quant.exclude)
    total = float(summary.other_bytes) * (mode.weight_bytes / FLOAT32_BYTES if half else 1.0)
    float_layers = []
    for layer in summary.layers:
        report = reports_by_name.get(layer.name)
        kept = report.params_after / layer.params if (structured and report and layer.params) else 1.0
        if layer.name in excluded:
            total += layer.bytes * kept
        elif half:
            total += _half_bytes(layer) * kept
        elif KIND_OF_OP.get(layer.op_type) in kinds and layer.params:
            total += _quantized_layer_bytes(layer, quant, kept, backend)
        else:
            total += layer.bytes * kept
            if kinds and layer.bytes and not _is_low_precision(layer):
                float_layers.append(layer.name)
    nonzero = _nonzero(summary, reports_by_name)
    notes = _notes(summary, mode, backend, float_layers, excluded)
    if structured and recipe.prune.active and recipe.prune.scope == "global":
        notes += ("l1-structured (global): how many channels each layer loses is decided while pruning; this "
                  "estimate takes the same share from every layer",)
    return SizePrediction(bytes=int(round(total)), nonzero_params=nonzero, changes=not recipe.is_identity,
                          float_layers=tuple(float_layers), notes=notes)


def quantized_weight_bytes(mode: str, elements: int, channels: int, per_channel: bool, symmetric: bool,
                           backend: str) -> float:
    """Bytes of `elements` weights with `channels` output channels stored by `mode`, scales and zero points
    included. int8 modes: one scale and zero point per channel or per tensor. Weight-only on ONNX
    (MatMulNBits): a float32 scale, and for an asymmetric grid a zero point, per block of 32 inputs. Weight-only
    on torch: int8 with a float32 scale per channel (or tensor); int4 with a float16 scale per group of 32."""
    groups = channels if per_channel else 1
    row = quant_mode(mode)
    codes = elements * row.weight_bytes
    if row.weight_only:
        if backend == "torch" and row.bits == 8:
            return codes + groups * (4 if symmetric else 5)
        blocks = math.ceil(elements / WEIGHT_ONLY_BLOCK)
        scale_bytes = 2 if backend == "torch" else 4
        zero_points = 0.0 if symmetric else blocks * (1 if backend == "torch" else row.bits / 8)
        return codes + blocks * scale_bytes + zero_points
    # onnxruntime stores a float32 scale and an 8-bit zero point; torch a float64 scale and an int64 zero point
    per_group = 5 if backend == "onnx" else 16
    return codes + groups * per_group


def _quantized_layer_bytes(layer: Any, quant, kept: float, backend: str) -> float:
    weight = math.prod(layer.weight_shape) if layer.weight_shape else layer.params
    bias = max(layer.params - weight, 0)
    channels = _out_channels(layer)
    per_channel = quant.per_channel and KIND_OF_OP.get(layer.op_type) != "embedding"
    stored = quantized_weight_bytes(quant.mode, weight * kept, max(int(channels * kept), 1), per_channel,
                                    quant.symmetric, backend)
    return stored + bias * kept * 4  # biases stay float32 (int32 in QDQ graphs: the same 4 bytes)


def _out_channels(layer: Any) -> int:
    shape = layer.weight_shape
    if not shape:
        return 1
    return int(shape[-1]) if layer.op_type == "MatMul" else int(shape[0])


def _half_bytes(layer: Any) -> float:
    """A layer's bytes with every 32- or 64-bit float tensor in 16 bits."""
    total = 0.0
    for dtype, nbytes in layer.bytes_by_dtype.items():
        total += nbytes / 2 if dtype == "float32" else nbytes / 4 if dtype == "float64" else nbytes
    return total


def _is_low_precision(layer: Any) -> bool:
    return not any(d in layer.dtype for d in ("float32", "float64"))


def _nonzero(summary: Any, reports_by_name: dict) -> int:
    removed = sum(r.params_before - r.params_after for r in reports_by_name.values())
    return max(summary.total_params - removed, 0)


def _notes(summary: Any, mode: QuantMode, backend: str, float_layers: list[str], excluded: set[str]) -> tuple[str, ...]:
    notes = []
    if float_layers:
        by_name = {layer.name: layer for layer in summary.layers}
        mb = sum(by_name[n].bytes for n in float_layers) / 1e6
        kinds = sorted({by_name[n].op_type for n in float_layers})
        shown = ", ".join(float_layers[:4]) + (f" and {len(float_layers) - 4} more" if len(float_layers) > 4 else "")
        notes.append(f"{mode.name} on {backend} leaves {len(float_layers)} layer(s) in float "
                     f"({', '.join(kinds)}; {mb:.3f} MB): {shown}")
    if excluded:
        notes.append(f"kept in float by the recipe: {', '.join(sorted(excluded))}")
    if mode.simulated:
        notes.append(f"{mode.name} keeps float32 storage: the size does not change")
    return tuple(notes)


def unpruned_reports(summary: Any, method: str) -> list:
    """The pruning planner's answer for a recipe that prunes nothing, from the summary alone: every layer keeps
    its weights (zeroing methods report the zeros it already has). Spares a pass over every weight of a big
    model when the prune setting is 0."""
    from accelstudio.core.compress.pruning_plan import LayerReport

    if method == "l1-structured":
        return [LayerReport(layer.name, 0.0, 0.0, layer.params, layer.params) for layer in summary.layers]
    return [LayerReport(layer.name, 0.0, layer.sparsity, layer.params, layer.params - layer.zeros)
            for layer in summary.layers]
