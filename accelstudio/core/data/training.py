"""Labeled training data for recovery (fine-tuning after pruning): a user .npz, or the training split of the
bundled digits data for an example model (the test split in data.npz is kept for evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from accelstudio.core.data.datasets import load_dataset
from accelstudio.core.errors import CompressionError
from accelstudio.core.model.examples import resources_dir
from accelstudio.core.model.handle import ModelHandle

NO_DATA_MESSAGE = "fine-tuning needs labeled training data: pass --train-data FILE.npz"
SPLIT_FILE = Path("data") / "digits_split.npz"
PIXEL_MAX = 16.0  # scikit-learn digits: uint8 values 0..16


def resolve_training_data(handle: ModelHandle, train_data: dict[str, Any] | str | Path | None) -> dict[str, Any]:
    """`train_data` as given (a dict), loaded from a .npz path, or the bundled example's training split."""
    if isinstance(train_data, dict):
        return train_data
    return recovery_data(handle, train_data)


def recovery_data(handle: ModelHandle, path: str | Path | None = None) -> dict[str, Any]:
    """Labeled training data for recovery: {"inputs": {name: array}, "labels": array}.

    With `path`: a user .npz with arrays named after the model's inputs (or `x`) plus `labels`, validated by
    datasets.load_dataset. Without: the TRAINING split of the bundled digits data for an example model
    (the test split in data.npz is kept for evaluation). Anything else raises CompressionError.
    """
    if path is not None:
        ds = load_dataset(path, handle)
        if ds.labels is None:
            raise CompressionError(f"{path}: has no 'labels' array; {NO_DATA_MESSAGE}")
        return {"inputs": ds.inputs, "labels": ds.labels}
    if handle.example:
        return _example_training_split(handle)
    raise CompressionError(f"{handle.name}: {NO_DATA_MESSAGE}")


def _example_training_split(handle: ModelHandle) -> dict[str, Any]:
    path = resources_dir() / SPLIT_FILE
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["train_images"], npz["train_labels"]
    except (OSError, KeyError, ValueError) as exc:
        raise CompressionError(f"the bundled training split {path} cannot be read ({exc}); reinstall, or pass "
                               "--train-data FILE.npz") from None
    if len(handle.inputs) != 1:
        raise CompressionError(f"{handle.name}: {NO_DATA_MESSAGE}")
    spec = handle.inputs[0]
    x = images.astype(np.float32) / PIXEL_MAX
    shape = tuple(d if d is not None else -1 for d in spec.shape[1:])
    try:
        x = x.reshape(len(x), *shape)
    except ValueError:
        raise CompressionError(f"{handle.name}: the bundled digits cannot be shaped as input "
                               f"{spec.shape}; {NO_DATA_MESSAGE}") from None
    return {"inputs": {spec.name: np.ascontiguousarray(x)}, "labels": labels.astype(np.int64)}
