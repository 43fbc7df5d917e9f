"""The bundled example models (resources/examples/<name>/) and where their files are."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DEFAULT_EXAMPLE = "digits-cnn"


def resources_dir() -> Path:
    """The installed resources folder (the top-level resources/ of the source tree)."""
    return Path(str(resources.files("accelstudio.resources")))


@dataclass(frozen=True)
class ExampleInfo:
    """A bundled example: its files and what meta.json says about it."""

    name: str
    title: str
    architecture: str
    description: str
    test_accuracy: float
    n_test: int
    folder: Path

    @property
    def weights_path(self) -> Path:
        return self.folder / "model.safetensors"

    @property
    def onnx_path(self) -> Path:
        return self.folder / "model.onnx"

    @property
    def data_path(self) -> Path:
        """Labeled test set: arrays `x` and `labels`."""
        return self.folder / "data.npz"

    @property
    def calib_path(self) -> Path:
        """Calibration inputs `x` drawn from the training split."""
        return self.folder / "calib.npz"


def list_examples() -> list[ExampleInfo]:
    """Every bundled example: the MLP, the CNNs, then the transformer."""
    root = resources_dir() / "examples"
    found = [_read(p.parent) for p in sorted(root.glob("*/meta.json"))]
    order = {"digits-mlp": 0, "digits-cnn": 1, "digits-resnet": 2, "digits-vit": 3}
    return sorted(found, key=lambda e: (order.get(e.name, 99), e.name))


def get_example(name: str) -> ExampleInfo:
    """The bundled example called `name`; KeyError lists the known names."""
    for info in list_examples():
        if info.name == name:
            return info
    known = ", ".join(e.name for e in list_examples())
    raise KeyError(f"unknown example '{name}'; bundled examples: {known}")


def _read(folder: Path) -> ExampleInfo:
    meta = json.loads((folder / "meta.json").read_text())
    return ExampleInfo(
        name=meta["name"], title=meta["title"], architecture=meta["architecture"],
        description=meta.get("description", ""), test_accuracy=float(meta["test_accuracy"]),
        n_test=int(meta["n_test"]), folder=folder,
    )
