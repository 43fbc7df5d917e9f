"""A quick look at a data set before any run: how many samples it holds, whether it has labels, and whether it
fits the model's inputs. The window calls this off its GUI thread when the user picks a file.

A .npz is checked from its array headers first (no data read), then, when it is small enough, loaded and
validated with the same checks the pipeline uses (dtype, rank, fixed dims, NaN/Inf, labels), so a bad file is
named before the run. An image folder is counted by a directory walk. Errors are DatasetError naming the path.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelstudio.core.data.dataset import check_labels
from accelstudio.core.data.datasets import (LABELS_KEY, SINGLE_INPUT_KEY, _check_npz_signature, _read_npz,
                                       check_input_array, check_sample_counts)
from accelstudio.core.errors import DatasetError
from accelstudio.core.model.handle import InputSpec

FULL_CHECK_BYTES = 256 * 1024 * 1024  # larger files are checked from their headers only (the run checks all)


@dataclass(frozen=True)
class DataProbe:
    """What a data set holds: its path, kind ("npz" or "images"), sample count, labels, and the array shapes."""

    path: str
    kind: str
    samples: int
    labeled: bool
    shapes: dict[str, tuple[int, ...]]
    fully_checked: bool

    def describe(self) -> str:
        """e.g. 'data.npz · 360 samples · labeled'."""
        what = "images in class folders" if self.kind == "images" else ("labeled" if self.labeled else "no labels")
        return f"{Path(self.path).name} · {self.samples:,} samples · {what}"


def probe_data(path: str | Path, inputs: tuple[InputSpec, ...] = (), num_classes: int | None = None,
               need_labels: bool = False) -> DataProbe:
    """Count and check the data set at `path` against the model's `inputs` (empty: not checked against a
    model). `need_labels` refuses a file without labels (training data). Raises DatasetError."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(p, "data set not found; give a .npz file or a folder of class sub-folders")
    if p.is_dir():
        return _probe_folder(p, inputs)
    probe = _probe_npz_headers(p, inputs)
    if p.stat().st_size <= FULL_CHECK_BYTES:
        probe = _check_npz_fully(p, inputs, num_classes, probe)
    if need_labels and not probe.labeled:
        raise DatasetError(p, f"has no '{LABELS_KEY}' array; training needs one class index per sample "
                              "(numpy.savez(path, x=inputs, labels=labels))")
    return probe


def _probe_folder(folder: Path, inputs: tuple[InputSpec, ...]) -> DataProbe:
    from accelstudio.core.data.image_folder import list_images

    if len(inputs) > 1:
        raise DatasetError(folder, f"an image folder feeds one input, but the model has {len(inputs)}")
    files, labels = list_images(folder)
    return DataProbe(str(folder), "images", len(files), True, {}, False)


def _probe_npz_headers(path: Path, inputs: tuple[InputSpec, ...]) -> DataProbe:
    """Shapes from the .npy headers inside the archive, without reading the arrays."""
    _check_npz_signature(path)
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _order, _dtype = read_header(member)
                shapes[info.filename[:-4]] = tuple(int(d) for d in shape)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DatasetError(path, f"not a readable .npz file ({exc}); save arrays with numpy.savez") from None
    if not shapes:
        raise DatasetError(path, "holds no arrays; save arrays with numpy.savez(path, x=inputs, labels=labels)")
    counts = {}
    for spec in inputs:
        key = spec.name if spec.name in shapes else (SINGLE_INPUT_KEY if len(inputs) == 1 else None)
        if key not in shapes:
            found = ", ".join(sorted(shapes))
            raise DatasetError(path, f"missing input array '{spec.name}'; found {found}")
        counts[key] = shapes[key][0] if shapes[key] else 0
    if not counts:
        counts = {k: (v[0] if v else 0) for k, v in shapes.items() if k != LABELS_KEY}
    samples = max(counts.values()) if counts else 0
    return DataProbe(str(path), "npz", samples, LABELS_KEY in shapes, shapes, False)


def _check_npz_fully(path: Path, inputs: tuple[InputSpec, ...], num_classes: int | None,
                     probe: DataProbe) -> DataProbe:
    """Load the arrays and run the pipeline's own checks on each input and the labels."""
    if not inputs:
        return probe
    arrays = _read_npz(path)
    checked = {}
    for spec in inputs:
        key = spec.name if spec.name in arrays else SINGLE_INPUT_KEY
        checked[spec.name] = check_input_array(path, spec, arrays[key], key)
    samples = check_sample_counts(path, checked)
    if LABELS_KEY in arrays:
        check_labels(path, arrays[LABELS_KEY], samples, num_classes)
    return DataProbe(str(path), "npz", samples, LABELS_KEY in arrays, probe.shapes, True)
