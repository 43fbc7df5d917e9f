"""A folder of images with one sub-folder per class, decoded with Pillow into the model's input layout."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelstudio.core.data.dataset import IMAGE_SUFFIXES, Dataset, check_labels, subset_indices
from accelstudio.core.errors import DatasetError
from accelstudio.core.model.handle import InputSpec, ModelHandle


@dataclass(frozen=True)
class ImageLayout:
    """How decoded H x W x C images become the model's input: size, channels and axis order."""

    height: int | None
    width: int | None
    channels: int  # 1 (grayscale) or 3 (RGB)
    order: str  # "nchw", "nhwc", "nhw" or "flat"


def load_image_folder(folder: Path, handle: ModelHandle, max_samples: int | None = None) -> Dataset:
    """Read `folder`/<class>/<image> into a labeled Dataset; labels are the sorted class folders' indices.

    Images are converted to grayscale or RGB by the input's channel count, resized to its height and width,
    and scaled to the input's value range (or [0, 1]). Needs Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise DatasetError(folder, "reading a folder of images needs Pillow; install it with "
                                   "`pip install Pillow`, or save the images as a .npz file") from None
    if len(handle.inputs) != 1:
        raise DatasetError(folder, f"an image folder feeds one input, but the model has {len(handle.inputs)}")
    spec = handle.inputs[0]
    layout = image_layout(folder, spec)
    files, labels = list_images(folder)
    if max_samples is not None and len(files) > max_samples:
        idx = subset_indices(len(files), max_samples)
        files, labels = [files[i] for i in idx], labels[idx]
    if layout.height is None or layout.width is None:
        layout = _fill_size(files[0], layout, Image)
    batch = np.empty((len(files), layout.height, layout.width, layout.channels), dtype=np.float32)
    for i, file in enumerate(files):
        batch[i] = _decode(file, layout, Image)
    lo, hi = spec.value_range or (0.0, 1.0)
    batch = lo + (hi - lo) * (batch / 255.0)
    arr = _arrange(batch, layout).astype(np.dtype(spec.dtype), copy=False)
    labels = check_labels(folder, labels, len(files), handle.num_classes)
    return Dataset({spec.name: np.ascontiguousarray(arr)}, labels, str(folder), False, len(files))


def list_images(folder: Path) -> tuple[list[Path], np.ndarray]:
    """Image files under each class sub-folder (sorted) and their class indices."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(folder, "no class sub-folders; put each class's images in its own sub-folder")
    files: list[Path] = []
    labels: list[int] = []
    for index, cls in enumerate(classes):
        found = sorted(f for f in cls.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        files.extend(found)
        labels.extend([index] * len(found))
    if not files:
        raise DatasetError(folder, "the class sub-folders hold no images (.png, .jpg, .bmp, ...)")
    return files, np.asarray(labels, dtype=np.int64)


def image_layout(folder: Path, spec: InputSpec) -> ImageLayout:
    """Infer the image layout from the input shape: (N,C,H,W), (N,H,W,C), (N,H,W), or (N,D) with D a
    square number of grayscale pixels. C must be 1 or 3."""
    shape = spec.shape
    if len(shape) == 4 and shape[1] in (1, 3):
        return ImageLayout(shape[2], shape[3], shape[1], "nchw")
    if len(shape) == 4 and shape[3] in (1, 3):
        return ImageLayout(shape[1], shape[2], shape[3], "nhwc")
    if len(shape) == 3:
        return ImageLayout(shape[1], shape[2], 1, "nhw")
    if len(shape) == 2 and shape[1] is not None and math.isqrt(shape[1]) ** 2 == shape[1]:
        side = math.isqrt(shape[1])
        return ImageLayout(side, side, 1, "flat")
    raise DatasetError(folder, f"input '{spec.name}' with shape {shape} does not take images; an image "
                               "folder needs an input shaped (N,C,H,W), (N,H,W,C) or (N,H,W) with C 1 or 3")


def _fill_size(first: Path, layout: ImageLayout, image_module) -> ImageLayout:
    try:
        with image_module.open(first) as img:
            w, h = img.size
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the file's fault
        raise DatasetError(first, f"unreadable image ({exc})") from None
    return ImageLayout(layout.height or h, layout.width or w, layout.channels, layout.order)


def _decode(file: Path, layout: ImageLayout, image_module) -> np.ndarray:
    mode = "L" if layout.channels == 1 else "RGB"
    try:
        with image_module.open(file) as img:
            img = img.convert(mode)
            if img.size != (layout.width, layout.height):
                img = img.resize((layout.width, layout.height), image_module.BILINEAR)
            pixels = np.asarray(img, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any decoder failure (bomb, truncation, bad header) is the file's
        raise DatasetError(file, f"unreadable image ({exc}); fix or remove it") from None
    return pixels.reshape(layout.height, layout.width, layout.channels)


def _arrange(batch: np.ndarray, layout: ImageLayout) -> np.ndarray:
    if layout.order == "nchw":
        return batch.transpose(0, 3, 1, 2)
    if layout.order == "nhwc":
        return batch
    if layout.order == "nhw":
        return batch[..., 0]
    return batch.reshape(batch.shape[0], -1)
