"""Models and data the lessons make from the bundled examples, written under AccelStudio's home.

The quantization lesson needs a layer with an outlier channel, as large language models have (a few channels
with weights tens of times larger than the rest). The bundled digits-cnn has none, so the lesson makes one
without changing what the network computes: fc1's output unit k is multiplied by OUTLIER_SCALE and fc2's weights
reading that unit are divided by it. ReLU is positively homogeneous (relu(c x) = c relu(x) for c > 0), so every
output, and the accuracy, stays the same up to float rounding; only the weights' ranges change. With one scale for
the whole tensor (per-tensor), a 4-bit grid must stretch to the outlier and almost every other weight of fc1
rounds to zero; a scale per output channel, or keeping fc1 in float, avoids it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUTLIER_SCALE = 32.0
OUTLIER_LAYER = "fc1"
OUTLIER_MODEL = "digits-cnn-outlier.safetensors"
TEST_DATA = "digits-test.npz"


def lessons_dir() -> Path:
    """<AccelStudio home>/lessons, where lessons keep the files they make."""
    from accelstudio.core.paths import data_dir

    path = data_dir() / "lessons"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_outlier_cnn(folder: Path | None = None) -> tuple[Path, Path, int]:
    """Write digits-cnn with one outlier channel in fc1 (see the module docstring) as safetensors, and the
    bundled digits test split as a labeled .npz (`x`, `labels`); returns (model, data, the outlier unit)."""
    import torch
    from safetensors.torch import save_file

    from accelstudio.core.model.loading import load_example
    from accelstudio.core.studies.transfer import digits_split

    folder = folder or lessons_dir()
    folder.mkdir(parents=True, exist_ok=True)
    module = load_example("digits-cnn", "torch").module
    state = {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}
    unit = int(torch.linalg.vector_norm(state["fc2.weight"], dim=0).argmax())  # a unit the classifier reads most
    state["fc1.weight"][unit] *= OUTLIER_SCALE
    state["fc1.bias"][unit] *= OUTLIER_SCALE
    state["fc2.weight"][:, unit] /= OUTLIER_SCALE
    model_path, data_path = folder / OUTLIER_MODEL, folder / TEST_DATA
    save_file(state, str(model_path))
    split = digits_split()
    np.savez(data_path, x=split["test_x"], labels=split["test_y"])
    return model_path, data_path, unit
