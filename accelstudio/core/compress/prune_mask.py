"""Which weights of one layer a pruning recipe removes: the mask W x M (M = 0 where a weight goes), the layer's
weight histogram split into kept and removed weights, and a small image of the mask for a heatmap.

Zeroing methods (l1-unstructured, random, 2:4) use the same planner as the pruners (pruning_plan.zero_masks), so
the removed count equals the zeros the pruned layer has after a run, weights that were zero already included.
For l1-structured the mask marks the output channels (rows) with the smallest L1 norm within the layer, at the
layer's requested amount: the rule the per-layer scope applies; with global ranking the split between layers is
only known after pruning, so the mask is then an estimate (`exact` False).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelstudio.core.compress.pruning_plan import PrunableWeight, requested_amounts, zero_masks
from accelstudio.core.recipe import PruneSpec

MAX_IMAGE_SIDE = 128


@dataclass(frozen=True, eq=False)
class LayerMask:
    """One layer's weights and the boolean mask of the weights the recipe removes (True = set to zero)."""

    layer: str
    weights: np.ndarray
    removed: np.ndarray
    method: str
    exact: bool

    @property
    def removed_count(self) -> int:
        return int(self.removed.sum())

    @property
    def kept_count(self) -> int:
        return int(self.removed.size - self.removed.sum())


def layer_mask(prunable: list[PrunableWeight], layer: str, spec: PruneSpec) -> LayerMask:
    """The mask of `layer` among the model's prunable weights (all of them: global ranking needs the others)."""
    by_name = {w.name: w for w in prunable}
    if layer not in by_name:
        known = ", ".join(by_name) or "(none)"
        raise KeyError(f"'{layer}' is not a prunable layer; prunable layers: {known}")
    weight = by_name[layer]
    array = np.asarray(weight.array, dtype=np.float32)
    already = array == 0
    if not spec.active:
        return LayerMask(layer, array, already, spec.method, True)
    if spec.method == "l1-structured":
        amount = requested_amounts(list(by_name), spec)[layer]
        exact = spec.scope == "layer" or layer in spec.overrides or amount == 0
        return LayerMask(layer, array, already | _channel_mask(array, amount), spec.method, exact)
    masks, _skipped = zero_masks(list(prunable), spec)
    removed = already | masks[layer] if layer in masks else already
    return LayerMask(layer, array, removed, spec.method, True)


def _channel_mask(array: np.ndarray, amount: float) -> np.ndarray:
    """Rows (output channels) with the smallest L1 norm, int(channels * amount) of them, as a full-size mask."""
    channels = array.shape[0] if array.ndim else 1
    k = int(channels * amount)
    mask = np.zeros(array.shape, dtype=bool)
    if k <= 0 or array.ndim == 0:
        return mask
    norms = np.abs(array.reshape(channels, -1)).sum(axis=1)
    mask[np.argsort(norms, kind="stable")[:k]] = True
    return mask


def split_histogram(mask: LayerMask, bins: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges, kept counts, removed counts) over the same bins of the layer's finite weights."""
    values = mask.weights.ravel()
    removed = mask.removed.ravel()
    finite = np.isfinite(values)
    values, removed = values[finite], removed[finite]
    if values.size == 0:
        edges = np.linspace(0.0, 1.0, bins + 1)
        return edges, np.zeros(bins, dtype=np.int64), np.zeros(bins, dtype=np.int64)
    edges = np.histogram_bin_edges(values, bins=bins)
    kept, _ = np.histogram(values[~removed], bins=edges)
    gone, _ = np.histogram(values[removed], bins=edges)
    return edges, kept, gone


def mask_image(mask: LayerMask, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """The mask as a 2-D image (rows: output channels; columns: the inputs, and kernel positions of a conv,
    flattened), each cell the share of removed weights; blocks are averaged so neither side exceeds `max_side`."""
    removed = mask.removed.astype(np.float32)
    rows = removed.reshape(removed.shape[0], -1) if removed.ndim >= 2 else removed.reshape(1, -1)
    return _shrink(_shrink(rows, max_side, axis=0), max_side, axis=1)


def _shrink(image: np.ndarray, max_side: int, axis: int) -> np.ndarray:
    n = image.shape[axis]
    if n <= max_side:
        return image
    edges = np.linspace(0, n, max_side + 1).astype(int)
    return np.add.reduceat(image, edges[:-1], axis=axis) / np.diff(edges).reshape(
        (-1, 1) if axis == 0 else (1, -1))
