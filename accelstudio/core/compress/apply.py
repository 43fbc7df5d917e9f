"""Apply a recipe to a model: prune, recover accuracy (fine-tune / distill), then quantize, on a deep copy;
report per-layer sparsity and warnings.

The input handle's model is never changed. Pruning runs on the handle's own backend (structured pruning only
on torch modules); quantization goes to quant_torch.quantize_torch or quant_onnx.quantize_onnx.
`predict_sparsity` gives the same per-layer numbers without copying or changing anything, fast enough to
follow a slider.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from accelstudio.core.errors import CompressionError
from accelstudio.core.compress.export import example_inputs
from accelstudio.core.measure.hardware import HardwareWarning, hardware_warnings
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.progress import ProgressCallback, ProgressEvent, check_cancel
from accelstudio.core.compress.pruning_plan import (
    ChannelLayer, LayerReport, PrunableWeight, predicted_reports, predicted_structured,
)
from accelstudio.core.recipe import PruneSpec, Recipe
from accelstudio.core.quant_modes import modes_where

__all__ = ["CompressionResult", "LayerReport", "HardwareWarning", "apply_recipe", "predict_sparsity"]

CALIBRATED_MODES = modes_where(needs_calibration=True)


@dataclass(frozen=True)
class CompressionResult:
    """The compressed model (a new handle with no source file), per-layer pruning reports (empty when the
    recipe does not prune), warnings (hardware advice and notes from the pruners and quantizers), the recipe."""

    handle: ModelHandle
    layers: tuple[LayerReport, ...]
    warnings: tuple[HardwareWarning, ...]
    recipe: Recipe


def apply_recipe(handle: ModelHandle, recipe: Recipe, calib: dict[str, np.ndarray] | None = None,
                 progress: ProgressCallback | None = None, cancel=None,
                 train_data: dict | str | Path | None = None) -> CompressionResult:
    """Prune, recover, then quantize a deep copy of `handle`'s model as `recipe` says.

    `calib` maps input names to calibration arrays (static-int8); when None and the model is a bundled
    example, the example's calibration set is used. `train_data` is recovery's labeled training data: a dict
    {"inputs": {name: array}, "labels": array} or a .npz path; None uses a bundled example's training split
    (a user model then raises CompressionError). Recovery trains the pruned copy with the original model as
    distillation teacher, and needs a torch model. Progress stages are "prune", "recover" and "quantize";
    `cancel` is checked between layers and batches. Raises RecipeError (unknown layer names, ...),
    CompressionError, DatasetError, JobCancelled.
    """
    recipe.validate()
    check_cancel(cancel)
    recovery_set = _recovery_data(handle, recipe, train_data)  # fails before any slow work
    model = _copy_model(handle)
    reports: list[LayerReport] = []
    notes: list[HardwareWarning] = []
    structured = False
    if recipe.prune.active:
        if progress:
            progress(ProgressEvent("prune", 0.0, f"pruning: {recipe.prune.method}"))
        reports, skipped = _prune(handle, model, recipe.prune, progress, cancel)
        structured = recipe.prune.method == "l1-structured"
        if skipped:
            notes.append(_two_four_note(skipped))
    elif recipe.prune.exclude or recipe.prune.overrides:
        _check_prune_names(handle, recipe.prune)  # a typo is reported even while the amount is 0
    if recovery_set is not None:
        from accelstudio.core.compress.recovery import recover_model, zeroing_reports

        check_cancel(cancel)
        outcome = recover_model(model, handle.module, recipe.recovery, recovery_set, progress, cancel,
                                normalize=structured)
        if reports and not structured:
            reports = zeroing_reports(model, reports)  # recomputed: training must not have changed them
        notes.append(_recovery_note(recipe, outcome))
    if recipe.quantize.active:
        check_cancel(cancel)
        if progress:
            progress(ProgressEvent("quantize", 0.0, f"quantizing: {recipe.describe()}"))
        model = _quantize(handle, model, recipe, calib)
        notes.extend(_quant_notes(model))
        check_cancel(cancel)
        if progress:
            progress(ProgressEvent("quantize", 1.0, "quantized"))
    metadata = dict(handle.metadata, recipe=recipe.to_dict(), structured_pruned=structured
                    or bool(handle.metadata.get("structured_pruned")))
    if handle.source is not None:
        metadata["derived_from"] = str(handle.source)  # export refuses to overwrite the original
    metadata.pop("file_bytes", None)  # the result lives in memory until exported
    kwargs = {"module": model} if handle.backend == "torch" else {"onnx_model": model}
    fmt = handle.source_format if handle.source_format != "example" else (
        "safetensors" if handle.backend == "torch" else "onnx")
    result = handle.with_model(**kwargs, source=None, source_format=fmt, metadata=metadata)
    warnings = hardware_warnings(recipe, handle.backend) + notes
    return CompressionResult(result, tuple(reports), tuple(warnings), recipe)


def predict_sparsity(handle: ModelHandle, prune_spec: PruneSpec) -> list[LayerReport]:
    """Per-layer sparsity that pruning with `prune_spec` would reach, without copying or changing the model.

    Exact for l1-unstructured, random and 2:4 (the same planner as `apply_recipe`). For l1-structured it is
    an estimate: each layer's share of output channels that would go (the classifier and excluded layers
    keep theirs; the global split between layers is only known after pruning) and the weights that would
    leave with them.
    """
    if prune_spec.method == "l1-structured":
        return predict_sparsity_arrays((), {}, prune_spec, channel_layers(handle))
    weights, bias_sizes = prunable_weights(handle)
    return predict_sparsity_arrays(weights, bias_sizes, prune_spec)


def predict_sparsity_arrays(weights: Sequence[PrunableWeight], bias_sizes: Mapping[str, int],
                            prune_spec: PruneSpec, channels: Sequence[ChannelLayer] | None = None,
                            ) -> list[LayerReport]:
    """`predict_sparsity` from data alone: the prunable layers' weights (as `prunable_weights` gives them) and
    bias sizes, plus their `channel_layers` for l1-structured (None: the model cannot be pruned structurally).
    Used for models known only by a data-only snapshot (accelstudio.core.compress.snapshot)."""
    if prune_spec.method == "l1-structured":
        if channels is None:
            from accelstudio.core.compress.pruning_onnx import STRUCTURED_MESSAGE

            raise CompressionError(STRUCTURED_MESSAGE)
        return predicted_structured(list(channels), prune_spec)
    return predicted_reports(list(weights), prune_spec, dict(bias_sizes))[0]


def prunable_weights(handle: ModelHandle) -> tuple[list[PrunableWeight], dict[str, int]]:
    """Every prunable layer's weight as a float array (model order) and each layer's bias size."""
    if handle.backend == "torch":
        from accelstudio.core.compress.pruning_torch import prunable_weights as torch_weights

        return torch_weights(handle.module)
    from accelstudio.core.compress.pruning_onnx import prunable_initializers

    found = prunable_initializers(handle.onnx_model)
    return [w for w, _, _ in found], {w.name: b for w, _, b in found}


def channel_layers(handle: ModelHandle) -> list[ChannelLayer]:
    """The Linear/Conv layers of a torch model as the l1-structured estimate sees them (module order).
    Raises CompressionError for ONNX models, which cannot be pruned structurally."""
    if handle.backend != "torch":
        from accelstudio.core.compress.pruning_onnx import STRUCTURED_MESSAGE

        raise CompressionError(STRUCTURED_MESSAGE)
    from accelstudio.core.compress.pruning_torch import LAYER_TYPES, out_channels, param_count, prunable_layers

    return [ChannelLayer(name, out_channels(layer), getattr(layer, "in_features", getattr(layer, "in_channels", 0)),
                         int(layer.weight.numel()), param_count(layer))
            for name, layer in prunable_layers(handle.module) if isinstance(layer, LAYER_TYPES)]


def _copy_model(handle: ModelHandle):
    model = handle.module if handle.backend == "torch" else handle.onnx_model
    if model is None:
        raise CompressionError(f"{handle.name}: the handle holds no {handle.backend} model")
    try:
        return copy.deepcopy(model)
    except Exception as exc:
        raise CompressionError(f"{handle.name}: the model cannot be copied for compression ({exc}); "
                               "open its safetensors/state-dict or ONNX form instead") from None


def _check_prune_names(handle: ModelHandle, spec: PruneSpec) -> None:
    from accelstudio.core.compress.pruning_plan import check_layer_names

    if handle.backend == "torch":
        from accelstudio.core.compress.pruning_torch import prunable_layers

        names = [n for n, _ in prunable_layers(handle.module)]
    else:
        from accelstudio.core.compress.pruning_onnx import prunable_initializers

        names = [w.name for w, _, _ in prunable_initializers(handle.onnx_model)]
    check_layer_names(names, spec)


def _prune(handle: ModelHandle, model, spec: PruneSpec, progress, cancel) -> tuple[list[LayerReport], list[str]]:
    if handle.backend == "onnx":
        from accelstudio.core.compress.pruning_onnx import prune_zeroing_onnx

        return prune_zeroing_onnx(model, spec, progress, cancel)
    from accelstudio.core.compress.pruning_torch import prune_structured_torch, prune_zeroing_torch

    if spec.method == "l1-structured":
        return prune_structured_torch(model, spec, example_inputs(handle), progress, cancel), []
    return prune_zeroing_torch(model, spec, progress, cancel)


def _quantize(handle: ModelHandle, model, recipe: Recipe, calib: dict[str, np.ndarray] | None):
    spec = recipe.quantize
    calib = _calibration(handle, spec, calib)
    try:
        if handle.backend == "torch":
            from accelstudio.core.compress import quant_torch as quant
        else:
            from accelstudio.core.compress import quant_onnx as quant
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("accelstudio.core.compress.quant_"):
            raise
        raise CompressionError(f"quantization of {handle.backend} models is not available in this build") from None
    if handle.backend == "torch":
        return quant.quantize_torch(model, spec, calib, example_inputs(handle, calib=calib))
    return quant.quantize_onnx(model, spec, calib)


def _calibration(handle: ModelHandle, spec, calib: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
    if calib is not None:
        return {name: np.asarray(arr)[: spec.calib_samples] for name, arr in calib.items()}
    if spec.mode not in CALIBRATED_MODES:
        return None
    if handle.example:
        from accelstudio.core.data.datasets import calibration_inputs

        return calibration_inputs(handle, None, spec.calib_samples)
    raise CompressionError(f"{handle.name}: {spec.mode} needs calibration data (a few hundred typical inputs); "
                           "pass a .npz with one array per input (CLI: --calib FILE.npz)")


def _recovery_data(handle: ModelHandle, recipe: Recipe, train_data) -> dict | None:
    if not recipe.recovery.active:
        return None
    from accelstudio.core.compress.recovery import TORCH_ONLY_MESSAGE
    from accelstudio.core.data.training import resolve_training_data

    if handle.backend != "torch":
        raise CompressionError(f"{handle.name}: {TORCH_ONLY_MESSAGE}")
    return resolve_training_data(handle, train_data)


def _recovery_note(recipe: Recipe, outcome) -> HardwareWarning:
    advice = ("accuracy is measured on the evaluation set, never on the training data; more epochs or "
              "distillation may recover more")
    return HardwareWarning("recovery", outcome.summary(recipe.recovery.method), advice, "recovery")


def _two_four_note(skipped: list[str]) -> HardwareWarning:
    return HardwareWarning(
        "2:4-skipped",
        f"left dense by 2:4 because their input size is not a multiple of 4: {', '.join(skipped)}",
        "exclude these layers to make it explicit, or use l1-unstructured for them", "prune")


def _quant_notes(model) -> list[HardwareWarning]:
    try:
        from accelstudio.core.compress.quant_sim import quantization_notes
    except ImportError:
        return []
    return [HardwareWarning("quantization-note", note, "", "quantize") for note in quantization_notes(model)]
