"""Layer inspection: parameters, bytes, sparsity and FLOPs per layer, for torch and ONNX models alike.

Layer names are the shared ones (torch qualified module names; ONNX weight names without `.weight`), so a
layer listed here can be named in a recipe and found again in the other backend. FLOPs follow torch's
convention: a multiply-accumulate counts as two FLOPs, and only convolutions and matrix products are
counted (elementwise ops, pooling and normalization are left out in both backends).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.model.handle import InputSpec, ModelHandle
from accelstudio.core.model.summary import LayerStats, ModelSummary


class InputShapeError(AccelStudioError):
    """An input shape given by the user does not fit the model's inputs."""

    category = "invalid input shape"


class UnknownLayerError(AccelStudioError):
    """A layer name that the model does not have."""

    category = "unknown layer"


def inspect_model(handle: ModelHandle, input_shapes: dict[str, tuple[int, ...]] | None = None,
                  batch: int = 1) -> ModelSummary:
    """Describe every weighted layer of `handle` and total its parameters, bytes and FLOPs.

    `input_shapes` maps input names to full shapes; inputs not named there take their declared shape with
    dynamic dimensions set to `batch` (first dimension) or 1 (others).
    """
    inputs = resolve_inputs(handle, input_shapes, batch)
    if handle.backend == "torch":
        from accelstudio.core.model.inspect_torch import inspect_torch

        layers, totals, warnings = inspect_torch(handle.module, inputs)
    elif handle.backend == "onnx":
        from accelstudio.core.model.inspect_onnx import inspect_onnx

        layers, totals, warnings = inspect_onnx(handle.onnx_model, inputs)
    else:
        raise ValueError(f"unknown backend {handle.backend!r}")
    total_params, total_bytes, total_flops, other_params, other_bytes = totals
    return ModelSummary(
        name=handle.name, backend=handle.backend, inputs=inputs, layers=tuple(layers),
        total_params=int(total_params), total_bytes=int(total_bytes), file_bytes=model_file_bytes(handle),
        total_flops=int(total_flops), total_macs=int(total_flops) // 2, warnings=tuple(warnings),
        other_params=int(other_params), other_bytes=int(other_bytes),
    )


def resolve_inputs(handle: ModelHandle, input_shapes: dict[str, tuple[int, ...]] | None,
                   batch: int = 1) -> tuple[InputSpec, ...]:
    """The model's inputs with concrete shapes: the user's where given, else dynamic dims filled in."""
    if batch < 1:
        raise InputShapeError(f"batch must be at least 1, got {batch}")
    given = dict(input_shapes or {})
    known = {spec.name for spec in handle.inputs}
    unknown = sorted(set(given) - known)
    if unknown:
        raise InputShapeError(f"the model has no input named {', '.join(unknown)}; "
                              f"its inputs are: {', '.join(sorted(known)) or '(none)'}")
    resolved = []
    for spec in handle.inputs:
        if spec.name in given:
            shape = tuple(int(d) for d in given[spec.name])
            _check_shape(spec, shape)
        else:
            shape = spec.concrete_shape(batch)
        resolved.append(replace(spec, shape=shape))
    return tuple(resolved)


def _check_shape(spec: InputSpec, shape: tuple[int, ...]) -> None:
    if any(d < 1 for d in shape):
        raise InputShapeError(f"input '{spec.name}': every dimension must be at least 1, got {shape}")
    if spec.shape and len(shape) != len(spec.shape):
        raise InputShapeError(f"input '{spec.name}' has {len(spec.shape)} dimensions {_fmt(spec.shape)}, "
                              f"got {len(shape)}: {shape}")
    for i, (want, got) in enumerate(zip(spec.shape, shape)):
        if want is not None and i > 0 and want != got:
            raise InputShapeError(f"input '{spec.name}' needs {want} at dimension {i} "
                                  f"{_fmt(spec.shape)}, got {shape}")


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def model_file_bytes(handle: ModelHandle) -> int | None:
    """Size on disk of the model's source file plus any ONNX external data files; None when in memory."""
    source = handle.source
    if source is None and handle.example and handle.source_format == "example":
        source = _example_file(handle)
    if source is None:
        return None
    path = Path(source)
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        total = path.stat().st_size
    except OSError:
        return None
    if path.suffix.lower() == ".onnx":
        listed = handle.metadata.get("external_data_files")
        if listed is not None:  # the loader already found them: no second parse of a big file
            total += sum(_size_or_zero(path.parent / name) for name in listed)
        else:
            total += _external_data_bytes(path)
    return total


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def _example_file(handle: ModelHandle) -> Path | None:
    from accelstudio.core.model.examples import get_example

    try:
        info = get_example(handle.example)
    except KeyError:
        return None
    return info.onnx_path if handle.backend == "onnx" else info.weights_path


def _external_data_bytes(path: Path) -> int:
    """Bytes of the distinct external data files an ONNX file refers to (missing ones count 0)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # an unreadable file has no external data we can count
        return 0
    locations = set()
    for tensor in proto.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    locations.add(entry.value)
    total = 0
    for location in locations:
        file = path.parent / location
        if file.is_file():
            total += file.stat().st_size
    return total


def layer_weights(handle: ModelHandle, layer_name: str) -> np.ndarray:
    """A float32 copy of the weight of `layer_name` (dequantized if the layer is quantized)."""
    if handle.backend == "torch":
        from accelstudio.core.model.inspect_torch import torch_layer_weight

        weight = torch_layer_weight(handle.module, layer_name)
    else:
        from accelstudio.core.model.inspect_onnx import onnx_layer_weight

        weight = onnx_layer_weight(handle.onnx_model, layer_name)
    if weight is None:
        raise UnknownLayerError(f"model '{handle.name}' has no layer with weights named '{layer_name}'")
    return np.array(weight, dtype=np.float32, copy=True)


def weight_histogram(handle: ModelHandle, layer_name: str, bins: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """np.histogram of the finite weight values of `layer_name`: (counts, edges)."""
    return values_histogram(layer_weights(handle, layer_name), bins)


def values_histogram(values: np.ndarray, bins: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """np.histogram of the finite entries of an array of weights: (counts, edges); 0..1 edges when none."""
    values = np.asarray(values).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.zeros(bins, dtype=np.int64), np.linspace(0.0, 1.0, bins + 1)
    return np.histogram(values, bins=bins)


def summary_to_dict(summary: ModelSummary) -> dict[str, Any]:
    """A JSON-ready dict of `summary`: totals, inputs and a `layers` list."""
    return {
        "name": summary.name,
        "backend": summary.backend,
        "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in summary.inputs],
        "total_params": summary.total_params,
        "total_bytes": summary.total_bytes,
        "file_bytes": summary.file_bytes,
        "total_flops": summary.total_flops,
        "total_macs": summary.total_macs,
        "other_params": summary.other_params,
        "other_bytes": summary.other_bytes,
        "warnings": list(summary.warnings),
        "layers": [_layer_dict(layer) for layer in summary.layers],
    }


def _layer_dict(layer: LayerStats) -> dict[str, Any]:
    data = asdict(layer)
    data["weight_shape"] = list(layer.weight_shape)
    data["bytes_by_dtype"] = dict(layer.bytes_by_dtype)
    return data
