"""How much a variant's outputs lost, in points, on the screening set: the accuracy drop when the data has
labels, else top-1 disagreement with the unmodified model (class scores) or 100 x (1 - cosine) for other
outputs; with the KL divergence (class scores) to break ties between layers that lose the same points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelstudio.core.measure.evaluate import fidelity_metrics, nonfinite_rows

METRICS = {
    "accuracy": "accuracy drop against the unmodified model, in points",
    "top1": "top-1 disagreement with the unmodified model, in points (no labels)",
    "cosine": "100 x (1 - cosine similarity) to the unmodified model's outputs, in points (no labels; the outputs "
              "are not class scores)",
}


@dataclass(frozen=True)
class Reference:
    """The unmodified model's outputs on the screening set, the labels (or None), and the metric they imply."""

    outputs: np.ndarray
    labels: np.ndarray | None
    output_kind: str = "class_scores"  # evaluate.describe_outputs: "class_scores" or "embedding"

    @property
    def metric(self) -> str:
        if self.labels is not None:
            return "accuracy"
        return "top1" if self.output_kind == "class_scores" else "cosine"

    @property
    def accuracy(self) -> float | None:
        return None if self.labels is None else accuracy(self.outputs, self.labels)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy as a fraction; rows with NaN/Inf count as wrong."""
    rows = outputs.reshape(outputs.shape[0], -1)
    correct = (rows.argmax(axis=1) == labels) & ~nonfinite_rows(rows)
    return float(correct.mean())


def variant_cell(outputs: np.ndarray, ref: Reference) -> dict[str, Any]:
    """{"loss": points lost, "kl", "cosine", "top1_agreement", "accuracy" (labeled data only)}."""
    fid = fidelity_metrics(outputs, ref.outputs)
    cell: dict[str, Any] = {"kl": fid["kl_divergence"], "cosine": fid["cosine"],
                            "top1_agreement": fid["top1_agreement"]}
    metric = ref.metric
    if metric == "accuracy":
        cell["accuracy"] = accuracy(outputs, ref.labels)
        cell["loss"] = 100.0 * (ref.accuracy - cell["accuracy"])
    elif metric == "top1":
        cell["loss"] = 100.0 * (1.0 - (fid["top1_agreement"] if fid["top1_agreement"] is not None else 0.0))
    else:
        cell["loss"] = 100.0 * (1.0 - (fid["cosine"] if fid["cosine"] is not None else -1.0))
    return {k: (None if v is None else round(float(v), 6)) for k, v in cell.items()}


def recovered_cell(keep_float: dict[str, Any], all_quantized: dict[str, Any]) -> dict[str, Any]:
    """A "kept in float alone" cell as points recovered against quantizing every layer (positive: keeping this
    layer in float helps, so it is sensitive); its raw figures are kept under "raw"."""
    def gain(key: str) -> float | None:
        a, b = all_quantized.get(key), keep_float.get(key)
        return None if a is None or b is None else round(float(a) - float(b), 6)

    return {"loss": gain("loss"), "kl": gain("kl"), "raw": keep_float}
