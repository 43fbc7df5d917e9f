"""The weights a sensitivity study feeds a layer with: pruned alone at an amount, or rounded to a quantization
mode's grid, computed with numpy from the layer's own weight (no model is rebuilt).

Pruning uses the pruners' planner (pruning_plan.zero_masks, the layer on its own: the rule a per-layer
override follows), so "layer X at 50%" zeroes the weights a run with that override zeroes. l1-structured zeroes
the output channels with the smallest L1 norm (prune_mask's rule): the channels a structured run removes from
that layer, without the shrinking of the layers that read them. Quantization is weight-only fake quantization
(quant_sim's integer grid, or a float16 / bfloat16 round trip for the half modes): activations stay float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelstudio.core.compress.pruning_plan import PrunableWeight, zero_masks
from accelstudio.core.compress.quant_sim import fake_quantize_tensor
from accelstudio.core.quant_modes import quant_mode
from accelstudio.core.recipe import PruneSpec

PRUNE = "prune"
QUANT_ALONE = "quantized alone"
KEEP_FLOAT = "kept in float alone"


@dataclass(frozen=True, eq=False)
class ScreenedLayer:
    """A layer a study can screen: its name (the layer table's), kind ("conv" or "linear"), weight (float32, the
    array the runtime computes with), the input axis 2:4 groups along (PrunableWeight.k_axis) and the output
    channel axis (per-channel scales, structured rows)."""

    name: str
    kind: str
    weight: np.ndarray = field(repr=False)
    k_axis: int | None
    out_axis: int

    @property
    def params(self) -> int:
        return int(self.weight.size)


@dataclass(frozen=True)
class Setting:
    """One column of the study: what is done to each layer. `kind` PRUNE (with `amount`), QUANT_ALONE or
    KEEP_FLOAT; `label` is the column's heading."""

    kind: str
    label: str
    amount: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "amount": self.amount}


def study_settings(prune_method: str, amounts: tuple[float, ...], quantize: dict[str, Any] | None) -> list[Setting]:
    """The columns: each pruning amount, then quantized alone and kept in float alone."""
    settings = [Setting(PRUNE, f"prune {a:.0%}", float(a)) for a in amounts] if prune_method else []
    if quantize:
        settings += [Setting(QUANT_ALONE, f"{quant_label(quantize)} alone"),
                     Setting(KEEP_FLOAT, "float alone")]
    return settings


def quant_label(quantize: dict[str, Any]) -> str:
    mode = quant_mode(str(quantize.get("mode")))
    return f"sim-{int(quantize.get('bits', 8))}" if mode.simulated else mode.name


def pruned_weight(layer: ScreenedLayer, amount: float, method: str) -> np.ndarray:
    """`layer`'s weight with `amount` of it pruned by `method`, the layer alone."""
    w = np.asarray(layer.weight, dtype=np.float32)
    if method == "l1-structured":
        moved = np.moveaxis(w, layer.out_axis, 0)
        k = int(moved.shape[0] * amount)
        norms = np.abs(moved.reshape(moved.shape[0], -1)).sum(axis=1)
        out = moved.copy()
        out[np.argsort(norms, kind="stable")[:k]] = 0
        return np.ascontiguousarray(np.moveaxis(out, 0, layer.out_axis))
    spec = PruneSpec(amount=float(amount), method=method, scope="layer")
    masks, _ = zero_masks([PrunableWeight(layer.name, w, layer.k_axis)], spec)
    if layer.name not in masks:  # 2:4 on a layer whose input size is not a multiple of 4: left dense
        return w
    return np.where(masks[layer.name], np.float32(0), w)


def quantized_weight(layer: ScreenedLayer, quantize: dict[str, Any]) -> np.ndarray:
    """`layer`'s weight rounded as the quantization mode stores it (weight only), back in float32."""
    mode = quant_mode(str(quantize.get("mode")))
    w = np.ascontiguousarray(layer.weight, dtype=np.float32)
    if mode.half:
        if mode.name == "bf16":  # round to nearest even on the upper 16 bits
            bits = w.view(np.uint32).astype(np.uint64)
            rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16).astype(np.uint32)
            return rounded.view(np.float32)
        return w.astype(np.float16).astype(np.float32)
    bits = int(quantize.get("bits", 8)) if mode.simulated else int(mode.bits or 8)
    per_channel = bool(quantize.get("per_channel", False)) and mode.per_channel_allowed
    symmetric = bool(quantize.get("symmetric", True)) if mode.symmetric_allowed else True
    if mode.name == "weight-int4":  # one scale per block of 32 inputs, as the int4 quantizers store it
        return _blockwise(w, layer, bits, symmetric)
    return np.asarray(fake_quantize_tensor(w, bits, per_channel, symmetric, axis=layer.out_axis))


def _blockwise(w: np.ndarray, layer: ScreenedLayer, bits: int, symmetric: bool, block: int = 32) -> np.ndarray:
    moved = np.moveaxis(w, layer.out_axis, 0)
    rows = moved.reshape(moved.shape[0], -1)
    k = rows.shape[1]
    pad = (-k) % block
    padded = np.pad(rows, ((0, 0), (0, pad))).reshape(-1, block)
    fake = np.asarray(fake_quantize_tensor(padded, bits, True, symmetric, axis=0))
    out = fake.reshape(rows.shape[0], k + pad)[:, :k].reshape(moved.shape)
    return np.ascontiguousarray(np.moveaxis(out, 0, layer.out_axis))


def quantized_kinds(quantize: dict[str, Any], backend: str) -> frozenset[str]:
    """The kinds of layer ("conv", "linear") the mode stores in low precision on `backend`; every kind for the
    half and simulated modes."""
    mode = quant_mode(str(quantize.get("mode")))
    if mode.half or mode.simulated:
        return frozenset({"conv", "linear"})
    return frozenset(mode.stored_kinds(backend)) & {"conv", "linear"}
