"""Reading a sensitivity study's result: the ranking other studies and the GUI consume, and the per-layer
pruning amounts it supports.

The stored result (StudyRecord.result of kind "sensitivity") holds
    "ranking":  layer names, most sensitive first (screened layers only),
    "rows":     one per layer: {"layer", "kind", "params", "latency_share", "screened", "score", "tiebreak",
                "cells": {setting label: {"loss", "kl", ...} or None where the setting does not apply}},
    "metric":   {"name", "loss"} (what a cell's "loss" is, in points; higher is worse),
    "samples":  {"n", "source", "split", "labeled", ...}, "settings": [{"kind", "label", "amount"}], and notes.
"""

from __future__ import annotations

from typing import Any, Iterable

from accelstudio.core.studies.sensitivity_variants import PRUNE


def layer_score(cells: dict[str, Any]) -> tuple[float | None, float]:
    """(mean points lost over the settings that apply, mean KL over them for ties); None when nothing applied."""
    losses = [c["loss"] for c in cells.values() if c and c.get("loss") is not None]
    kls = [c["kl"] for c in cells.values() if c and c.get("kl") is not None]
    if not losses:
        return None, 0.0
    return sum(losses) / len(losses), (sum(kls) / len(kls) if kls else 0.0)


def rank_rows(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Screened layers by score, most sensitive first (KL breaks ties, then the name)."""
    scored = [r for r in rows if r.get("screened") and r.get("score") is not None]
    scored.sort(key=lambda r: (-r["score"], -(r.get("tiebreak") or 0.0), r["layer"]))
    return [r["layer"] for r in scored]


def _result(record: Any) -> dict[str, Any]:
    return dict(getattr(record, "result", record) or {})


def sensitivity_ranking(record: Any) -> list[str]:
    """The layer names of a stored sensitivity study (a StudyRecord or its result dict), most sensitive first;
    layers that were not screened are not in it."""
    result = _result(record)
    if "ranking" in result:
        return list(result["ranking"])
    return rank_rows(result.get("rows", []))


def most_sensitive(record: Any, k: int) -> list[str]:
    """The k most sensitive layers."""
    return sensitivity_ranking(record)[: max(int(k), 0)]


def amounts_under(record: Any, max_loss: float) -> dict[str, float]:
    """For each screened layer, the largest screened pruning amount whose loss stays at or under `max_loss`
    points (0.0 when even the smallest loses more). Layers not screened are left out."""
    result = _result(record)
    prune_labels = [(s["label"], float(s["amount"])) for s in result.get("settings", []) if s["kind"] == PRUNE]
    amounts: dict[str, float] = {}
    for row in result.get("rows", []):
        if not row.get("screened"):
            continue
        best = 0.0
        for label, amount in sorted(prune_labels, key=lambda p: p[1]):
            cell = (row.get("cells") or {}).get(label)
            if not cell or cell.get("loss") is None or cell["loss"] > max_loss:
                break
            best = amount
        amounts[row["layer"]] = best
    return amounts


def loss_matrix(record: Any) -> tuple[list[str], list[str], list[list[float]]]:
    """(layers most sensitive first, then the unscreened ones in model order; setting labels; points lost per
    layer and setting, NaN where a layer was not screened or a setting does not apply) for a heatmap."""
    result = _result(record)
    labels = [s["label"] for s in result.get("settings", [])]
    rows = {r["layer"]: r for r in result.get("rows", [])}
    ranked = [name for name in sensitivity_ranking(result) if name in rows]
    order = ranked + [name for name in rows if name not in set(ranked)]
    values = []
    for name in order:
        cells = rows[name].get("cells") or {}
        values.append([float(cells[label]["loss"]) if cells.get(label) and cells[label].get("loss") is not None
                       else float("nan") for label in labels])
    return order, labels, values
