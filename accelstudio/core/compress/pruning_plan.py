"""Backend-neutral pruning arithmetic: which layer gets which amount, and which weights become zero.

Both the torch and the ONNX pruners (and the fast slider prediction) hand numpy arrays to `zero_masks`, so
the same recipe zeroes the same weights in either form of a model.

Rules:
- "layer" scope: every layer loses round(amount * n) of its weights (the smallest |w|, or random ones).
- "global" scope: one ranking over the |w| of all layers without an override, so big layers with many
  small weights lose more; overridden layers are pruned on their own at their override amount.
- "random": the same counts, chosen at random with a fixed seed (a baseline that ignores magnitudes).
- "2:4": in every group of 4 consecutive weights along the input (reduction) dimension, the 2 smallest |w|
  become zero. Layers whose input size is not a multiple of 4 are left dense and reported as skipped.
- Excluded layers are left untouched. The final classifier is pruned like any other layer unless excluded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelstudio.core.errors import RecipeError
from accelstudio.core.recipe import PruneSpec

RANDOM_SEED = 0
UNSTRUCTURED_METHODS = ("l1-unstructured", "random", "2:4")


@dataclass(frozen=True)
class LayerReport:
    """Pruning result for one layer.

    `requested` and `achieved` are fractions: of weights set to zero (unstructured, random, 2:4) or of output
    channels removed (l1-structured). `params_before` counts weight and bias elements; `params_after` counts
    the elements that remain: nonzero weights plus bias for zeroing methods (the stored size is unchanged
    until the file is compressed), the smaller tensors' sizes for structured pruning.
    """

    name: str
    requested: float
    achieved: float
    params_before: int
    params_after: int


@dataclass(frozen=True)
class PrunableWeight:
    """A layer's weight as a float array. `k_axis` is the input (reduction) axis used by 2:4 grouping;
    None means every axis after the first one, flattened (Linear (out, in), Conv (out, in/g, kH, kW))."""

    name: str
    array: np.ndarray
    k_axis: int | None = None


@dataclass(frozen=True)
class ChannelLayer:
    """A layer as the structured (l1-structured) estimate sees it: its output channels (or features), its
    input channels (or features), and its weight and parameter (weight + bias) element counts."""

    name: str
    channels: int
    fan_in: int
    weights: int
    params: int


def check_layer_names(names: list[str], spec: PruneSpec) -> None:
    """Raise RecipeError if the recipe names a layer that the model does not have."""
    known = set(names)
    for field_name, listed in (("prune.exclude", list(spec.exclude)), ("prune.overrides", list(spec.overrides))):
        unknown = [n for n in listed if n not in known]
        if unknown:
            raise RecipeError(field_name, f"unknown layer(s) {', '.join(unknown)}; "
                                          f"layers in this model: {', '.join(names) or '(none)'}")


def requested_amounts(names: list[str], spec: PruneSpec) -> dict[str, float]:
    """The amount each layer is asked for: 0 when excluded, the override when given, else spec.amount."""
    check_layer_names(names, spec)
    amounts = {}
    for name in names:
        if name in spec.exclude:
            amount = 0.0
        elif name in spec.overrides:
            amount = float(spec.overrides[name])
        else:
            amount = float(spec.amount)
        amounts[name] = (0.5 if amount > 0 else 0.0) if spec.method == "2:4" else amount
    return amounts


def as_rows(array: np.ndarray, k_axis: int | None) -> np.ndarray:
    """A 2-D view (rows, K) with the reduction dimension last."""
    if k_axis is None:
        return array.reshape(array.shape[0], -1)
    moved = np.moveaxis(array, k_axis, -1)
    return moved.reshape(-1, array.shape[k_axis])


def from_rows(rows: np.ndarray, shape: tuple[int, ...], k_axis: int | None) -> np.ndarray:
    """Undo `as_rows` for an array of the original `shape`."""
    if k_axis is None:
        return rows.reshape(shape)
    moved_shape = tuple(np.moveaxis(np.empty(shape, dtype=np.bool_), k_axis, -1).shape)
    return np.moveaxis(rows.reshape(moved_shape), -1, k_axis)


def zero_masks(layers: list[PrunableWeight], spec: PruneSpec) -> tuple[dict[str, np.ndarray], list[str]]:
    """Boolean masks (True = set to zero) for every layer with a nonzero amount, and the layers skipped by 2:4.

    Counts are exact: a layer (or the global pool) loses round(amount * n) weights, ties broken by position.
    """
    amounts = requested_amounts([l.name for l in layers], spec)
    if spec.method == "2:4":
        return _two_four_masks(layers, amounts)
    masks: dict[str, np.ndarray] = {}
    pooled = [l for l in layers if spec.scope == "global" and l.name not in spec.overrides and amounts[l.name] > 0]
    single = [l for l in layers if l not in pooled and amounts[l.name] > 0]
    rng = np.random.default_rng(RANDOM_SEED)
    if pooled:
        flat = np.concatenate([np.abs(l.array, dtype=np.float32).ravel() for l in pooled])
        mask = _smallest(flat, spec.amount, spec.method, rng)
        offset = 0
        for layer in pooled:
            masks[layer.name] = mask[offset:offset + layer.array.size].reshape(layer.array.shape)
            offset += layer.array.size
    for layer in single:
        flat = np.abs(layer.array, dtype=np.float32).ravel()
        masks[layer.name] = _smallest(flat, amounts[layer.name], spec.method, rng).reshape(layer.array.shape)
    return masks, []


def _smallest(values: np.ndarray, amount: float, method: str, rng: np.random.Generator) -> np.ndarray:
    """Mask of the round(amount * n) entries to zero: the smallest values, or random ones for 'random'."""
    n = values.size
    k = min(n, int(round(amount * n)))
    mask = np.zeros(n, dtype=bool)
    if k == 0:
        return mask
    if method == "random":
        idx = rng.choice(n, size=k, replace=False)
    else:
        values = np.nan_to_num(values, nan=np.inf)
        idx = np.argpartition(values, k - 1)[:k] if k < n else np.arange(n)
    mask[idx] = True
    return mask


def _two_four_masks(layers: list[PrunableWeight], amounts: dict[str, float]):
    masks, skipped = {}, []
    for layer in layers:
        if amounts[layer.name] <= 0:
            continue
        rows = as_rows(np.abs(layer.array, dtype=np.float32), layer.k_axis)
        if rows.shape[1] % 4 != 0:
            skipped.append(layer.name)
            continue
        groups = rows.reshape(rows.shape[0], -1, 4)
        order = np.argsort(groups, axis=-1, kind="stable")[..., :2]
        mask = np.zeros(groups.shape, dtype=bool)
        np.put_along_axis(mask, order, True, axis=-1)
        masks[layer.name] = from_rows(mask.reshape(rows.shape), layer.array.shape, layer.k_axis)
    return masks, skipped


def predicted_reports(layers: list[PrunableWeight], spec: PruneSpec,
                      bias_sizes: dict[str, int]) -> tuple[list[LayerReport], list[str]]:
    """What `zero_masks` would achieve, per layer, without changing any weight."""
    amounts = requested_amounts([l.name for l in layers], spec)
    masks, skipped = zero_masks(layers, spec)
    reports = []
    for layer in layers:
        zeros = layer.array == 0
        if layer.name in masks:
            zeros = zeros | masks[layer.name]
        reports.append(sparsity_report(layer.name, 0.0 if layer.name in skipped else amounts[layer.name],
                                       int(zeros.sum()), layer.array.size, bias_sizes.get(layer.name, 0)))
    return reports, skipped


def sparsity_report(name: str, requested: float, zeros: int, size: int, bias: int) -> LayerReport:
    """A LayerReport for a zeroing method, from the zero count of a weight of `size` elements."""
    return LayerReport(name, float(requested), zeros / size if size else 0.0, size + bias, size - zeros + bias)


def predicted_structured(layers: list[ChannelLayer], spec: PruneSpec) -> list[LayerReport]:
    """An estimate of l1-structured pruning, per layer in module order: the share of output channels that would
    go (the last layer, normally the classifier, keeps its outputs) and the weights that would leave with them,
    the inputs of a layer shrinking with the layer before it (exact for sequential models)."""
    amounts = requested_amounts([layer.name for layer in layers], spec)
    if layers:
        amounts[layers[-1].name] = 0.0  # module order: the classifier is normally last; apply finds it exactly
    reports = []
    prev_channels, prev_frac = 0, 0.0
    for layer in layers:
        channels = layer.channels
        frac = int(channels * amounts[layer.name]) / channels if channels else 0.0
        fan_in = layer.fan_in
        in_frac = prev_frac if prev_channels and fan_in and fan_in % prev_channels == 0 else 0.0
        weights_after = int(round(layer.weights * (1 - frac) * (1 - in_frac)))
        bias_after = int(round((layer.params - layer.weights) * (1 - frac)))
        reports.append(LayerReport(layer.name, amounts[layer.name], frac, layer.params, weights_after + bias_after))
        prev_channels, prev_frac = channels, frac
    return reports
