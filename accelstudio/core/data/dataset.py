"""The data set value every loader returns, the fixed-seed subset and the class-label check they share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelstudio.core.errors import DatasetError

SUBSET_SEED = 0
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}


@dataclass(frozen=True)
class Dataset:
    """Model inputs by input name (first axis = samples), optional integer labels, and where they came from."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    source: str
    synthesized: bool
    num_samples: int

    def slice(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """The inputs of samples [start, stop)."""
        return {name: arr[start:stop] for name, arr in self.inputs.items()}

    def take(self, n: int) -> "Dataset":
        """The first `n` samples as a new Dataset."""
        n = min(n, self.num_samples)
        labels = None if self.labels is None else self.labels[:n]
        return Dataset(self.slice(0, n), labels, self.source, self.synthesized, n)


def subset(ds: Dataset, max_samples: int | None) -> Dataset:
    """At most `max_samples` samples, chosen with a fixed seed and kept in their original order."""
    if max_samples is None or ds.num_samples <= max_samples:
        return ds
    if max_samples < 1:
        raise ValueError("max_samples must be at least 1")
    idx = subset_indices(ds.num_samples, max_samples)
    inputs = {k: v[idx] for k, v in ds.inputs.items()}
    labels = None if ds.labels is None else ds.labels[idx]
    return Dataset(inputs, labels, ds.source, ds.synthesized, len(idx))


def subset_indices(n: int, k: int) -> np.ndarray:
    """Sorted indices of a fixed-seed random subset of k out of n samples."""
    rng = np.random.default_rng(SUBSET_SEED)
    return np.sort(rng.choice(n, size=k, replace=False))


def check_labels(path: Path | None, labels: np.ndarray, num: int, num_classes: int | None) -> np.ndarray:
    """Validate class labels: one integer per sample, in [0, num_classes) when the class count is known."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DatasetError(path, f"'labels' has shape {labels.shape}; expected one class index per sample")
    if labels.dtype.kind not in "iuf" or (labels.dtype.kind == "f" and not _integral(labels)):
        raise DatasetError(path, f"'labels' must be integer class indices, got dtype {labels.dtype}"
                                 + (" with fractional or non-finite values" if labels.dtype.kind == "f" else ""))
    if labels.shape[0] != num:
        raise DatasetError(path, f"'labels' has {labels.shape[0]} entries but the inputs have {num} samples")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise DatasetError(path, f"'labels' contains negative class index {int(labels.min())}")
    if num_classes is not None and labels.size and labels.max() >= num_classes:
        raise DatasetError(path, f"'labels' contains class {int(labels.max())}, but the model has "
                                 f"{num_classes} classes (0-{num_classes - 1})")
    return labels


def _integral(arr: np.ndarray) -> bool:
    return bool(np.isfinite(arr).all() and np.array_equal(arr, np.round(arr)))
