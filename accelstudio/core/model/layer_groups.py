"""Layers grouped for plotting a model with many layers: by block (the module path that holds them, or runs
of consecutive layers when names carry no path) or by operator type. Sizes add up; sparsity is the
parameter-weighted mean, so a group's bar says what share of its weights is zero."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

GROUPINGS = ("layer", "block", "type")
GROUPING_TITLES = {"layer": "per layer", "block": "by block", "type": "by op type"}
MAX_BLOCKS = 24  # blocks of consecutive layers when names carry no module path
MANY_LAYERS = 40  # above this many layers, plots start grouped by block


@dataclass(frozen=True)
class LayerGroup:
    """Some layers shown as one bar."""

    name: str
    layers: tuple[str, ...]
    params: int
    bytes: int
    sparsity: float  # 0-1, weighted by params
    predicted: float  # 0-1, weighted by params


def block_key(name: str, depth: int = 2) -> str:
    """The module path a layer sits in, `depth` parts deep ("layer1.0.conv1" -> "layer1.0"; "encoder.layers.3.
    linear1" -> "encoder.layers.3": numbered parts ride along with the part before them)."""
    parts = re.split(r"[./]", name)
    if len(parts) < 2:
        return ""
    kept: list[str] = []
    for part in parts[:-1]:
        if kept and part.isdigit():
            kept[-1] = f"{kept[-1]}.{part}"
            continue
        if len(kept) == depth:
            break
        kept.append(part)
    return ".".join(kept)


def _blocks(names: Sequence[str], max_blocks: int) -> list[tuple[str, list[int]]]:
    keys = [block_key(n) for n in names]
    if all(keys) and 1 < len(set(keys)) < len(names):
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        return list(groups.items())
    step = max(1, math.ceil(len(names) / max_blocks))  # no module path: runs of consecutive layers
    return [(f"{names[i]}…{names[min(i + step, len(names)) - 1]}" if step > 1 else names[i],
             list(range(i, min(i + step, len(names))))) for i in range(0, len(names), step)]


def group_layers(names: Sequence[str], op_types: Sequence[str], params: Sequence[int], sizes: Sequence[int],
                 sparsity: Sequence[float], predicted: Sequence[float], by: str,
                 max_blocks: int = MAX_BLOCKS) -> list[LayerGroup]:
    """Group the layers (in model order) `by` "layer", "block" or "type"; one LayerGroup per bar. Names without
    a module path make at most `max_blocks` blocks of consecutive layers."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; choose one of {', '.join(GROUPINGS)}")
    if by == "layer":
        members = [(n, [i]) for i, n in enumerate(names)]
    elif by == "type":
        groups: dict[str, list[int]] = {}
        for i, op in enumerate(op_types):
            groups.setdefault(op, []).append(i)
        members = [(f"{op} ×{len(idx)}", idx) for op, idx in groups.items()]
    else:
        members = _blocks(names, max(1, max_blocks))
    return [_group(name, idx, names, params, sizes, sparsity, predicted) for name, idx in members]


def _group(name, idx, names, params, sizes, sparsity, predicted) -> LayerGroup:
    weights = [max(int(params[i]), 0) for i in idx]
    total = sum(weights)

    def mean(values) -> float:
        if total == 0:
            return sum(values[i] for i in idx) / len(idx)
        return sum(values[i] * w for i, w in zip(idx, weights)) / total

    return LayerGroup(name, tuple(names[i] for i in idx), total, sum(int(sizes[i]) for i in idx),
                      mean(sparsity), mean(predicted))
