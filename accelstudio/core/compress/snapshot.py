"""Data-only models: a `ModelData` (accelstudio.core.model.model_data) from a loaded model, and its snapshot
payload, the form in which a worker sends it.

A trusted TorchScript, torch.export or pickled-module file runs its own code while it loads, and a crash in that
code would end whichever process loads it. So the window has such files opened in a worker process (job kind
"inspect", accelstudio.worker), which sends back a snapshot payload in its result message; the window reads it
into a ModelData. Reading a snapshot runs no code from the model: JSON, and arrays rebuilt from raw float32
bytes. Models whose loading runs no code from the file stay ModelHandles in the window (the graph view and
the run checks use the live graph); the model_* functions below take either.

A snapshot payload (a JSON object) holds: format, name, backend, source_format, summary (summary_to_dict),
inputs [{name, shape, dtype}], num_classes, attention, layers {name: key}, prunable [{name, key, k_axis,
bias}], channels [ChannelLayer fields] or null, and arrays {key: {"shape": [int], "data": base64 of
little-endian float32}} (layer names can be any text; the keys a0, a1, ... cannot), each array stored once.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.model.inspect import UnknownLayerError, summary_to_dict
from accelstudio.core.model.handle import InputSpec, ModelHandle
from accelstudio.core.model.model_data import ModelData
from accelstudio.core.model.summary import LayerStats, ModelSummary
from accelstudio.core.progress import ProgressCallback, ProgressEvent
from accelstudio.core.compress.pruning_plan import ChannelLayer, LayerReport, PrunableWeight
from accelstudio.core.recipe import PruneSpec

SNAPSHOT_FORMAT = 2


class SnapshotError(AccelStudioError):
    """A snapshot payload is incomplete or not in the expected form."""

    category = "unreadable model snapshot"


# -- from a loaded model (in the process that loaded it) --------------------------------------------------------
def snapshot_model(ref: str, *, trust: bool, backend: str | None = None,
                   progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Open `ref` (stages "load", "inspect", "snapshot"), inspect it and return its snapshot payload."""
    from accelstudio.core.model.inspect import inspect_model
    from accelstudio.core.model.loading import open_model

    report = progress or (lambda _event: None)
    report(ProgressEvent("load", 0.0, f"opening {Path(ref).name}"))
    handle = open_model(ref, trust=trust, backend=backend)
    report(ProgressEvent("inspect", 0.0, "counting parameters and FLOPs"))
    summary = inspect_model(handle)
    report(ProgressEvent("snapshot", 0.0, "copying the weights"))
    return snapshot_payload(model_data(handle, summary))


def model_data(handle: ModelHandle, summary: ModelSummary) -> ModelData:
    """The data-only copy of an inspected model: its weights as read-only float32 arrays, each stored once."""
    from accelstudio.core.compress.apply import channel_layers, prunable_weights
    from accelstudio.core.compress.feasibility import has_attention
    from accelstudio.core.errors import CompressionError
    from accelstudio.core.model.inspect import layer_weights

    weights: dict[str, np.ndarray] = {}
    for layer in summary.layers:
        try:
            weights[layer.name] = _read_only(layer_weights(handle, layer.name))
        except UnknownLayerError:  # listed but without a readable weight: no histogram
            continue
    found, bias_sizes = prunable_weights(handle)
    prunable = tuple(PrunableWeight(w.name, _shared(weights.get(w.name), w.array), w.k_axis) for w in found)
    try:
        channels = tuple(channel_layers(handle))
    except CompressionError:
        channels = None
    return ModelData(name=handle.name, backend=handle.backend, source_format=handle.source_format,
                     summary=summary, weights=weights, prunable=prunable,
                     bias_sizes={str(k): int(v) for k, v in bias_sizes.items()}, channels=channels,
                     inputs=tuple(handle.inputs), attention=has_attention(handle), num_classes=handle.num_classes)


def _shared(stored: np.ndarray | None, array: np.ndarray) -> np.ndarray:
    """The stored layer weight when it holds the same values (one array, not two), else a read-only copy."""
    values = np.asarray(array, np.float32)
    if stored is not None and stored.shape == values.shape and np.array_equal(stored, values, equal_nan=True):
        return stored
    return _read_only(values)


def _read_only(array: np.ndarray) -> np.ndarray:
    copy = np.array(array, dtype=np.float32, copy=True, order="C")
    copy.setflags(write=False)
    return copy


# -- the payload ----------------------------------------------------------------------------------------------
def snapshot_payload(data: ModelData) -> dict[str, Any]:
    """A ModelData as a JSON-ready snapshot payload (each array once)."""
    arrays: dict[str, np.ndarray] = {}
    keys: dict[int, str] = {}

    def key_of(array: np.ndarray) -> str:
        if id(array) not in keys:
            keys[id(array)] = f"a{len(arrays)}"
            arrays[keys[id(array)]] = array
        return keys[id(array)]

    layers = {name: key_of(array) for name, array in data.weights.items()}
    prunable = [{"name": w.name, "key": key_of(w.array), "k_axis": w.k_axis,
                 "bias": int(data.bias_sizes.get(w.name, 0))} for w in data.prunable]
    return {"format": SNAPSHOT_FORMAT, "name": data.name, "backend": data.backend,
            "source_format": data.source_format, "summary": summary_to_dict(data.summary),
            "inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in data.inputs],
            "num_classes": data.num_classes, "attention": bool(data.attention), "layers": layers,
            "prunable": prunable, "channels": None if data.channels is None else [asdict(c) for c in data.channels],
            "arrays": {key: {"shape": list(a.shape), "data": base64.b64encode(a.astype("<f4").tobytes()).decode()}
                       for key, a in arrays.items()}}


# -- reading a payload (in the window's process) ---------------------------------------------------------------
def read_snapshot(payload: dict[str, Any]) -> ModelData:
    """The ModelData a snapshot payload describes; SnapshotError when it is incomplete or malformed."""
    try:
        if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f"not a model snapshot of format {SNAPSHOT_FORMAT}")
        arrays = {str(key): _array(entry) for key, entry in payload["arrays"].items()}
        return _snapshot_from(payload, arrays)
    except SnapshotError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise SnapshotError(f"model snapshot: {type(exc).__name__}: {exc}") from None


def _array(entry: dict[str, Any]) -> np.ndarray:
    """A read-only float32 array from its shape and base64 bytes (no pickle, no dtype from the sender)."""
    shape = tuple(int(d) for d in entry["shape"])
    array = np.frombuffer(base64.b64decode(entry["data"], validate=True), dtype="<f4").astype(np.float32)
    array = array.reshape(shape)
    array.setflags(write=False)
    return array


def _snapshot_from(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ModelData:
    prunable = tuple(PrunableWeight(str(p["name"]), arrays[p["key"]], None if p["k_axis"] is None
                                    else int(p["k_axis"])) for p in meta["prunable"])
    channels, classes = meta["channels"], meta.get("num_classes")
    return ModelData(
        name=str(meta["name"]), backend=str(meta["backend"]), source_format=str(meta["source_format"]),
        summary=summary_from_dict(meta["summary"]),
        weights={str(name): arrays[key] for name, key in meta["layers"].items()}, prunable=prunable,
        bias_sizes={str(p["name"]): int(p["bias"]) for p in meta["prunable"]},
        channels=None if channels is None else tuple(ChannelLayer(**c) for c in channels),
        inputs=_inputs(meta["inputs"]), attention=bool(meta["attention"]),
        num_classes=None if classes is None else int(classes),
    )


def _inputs(items: list[dict[str, Any]]) -> tuple[InputSpec, ...]:
    return tuple(InputSpec(str(i["name"]), tuple(None if d is None else int(d) for d in i["shape"]),
                           str(i.get("dtype", "float32"))) for i in items)


def summary_from_dict(data: dict[str, Any]) -> ModelSummary:
    """The ModelSummary that `summary_to_dict` described (input value ranges are not kept)."""
    layers = tuple(LayerStats(**{**d, "weight_shape": tuple(int(x) for x in d["weight_shape"]),
                                 "bytes_by_dtype": {str(k): int(v) for k, v in d["bytes_by_dtype"].items()}})
                   for d in data["layers"])
    inputs = tuple(InputSpec(str(i["name"]), tuple(None if d is None else int(d) for d in i["shape"]),
                             str(i.get("dtype", "float32"))) for i in data["inputs"])
    return ModelSummary(
        name=str(data["name"]), backend=str(data["backend"]), inputs=inputs, layers=layers,
        total_params=int(data["total_params"]), total_bytes=int(data["total_bytes"]),
        file_bytes=None if data["file_bytes"] is None else int(data["file_bytes"]),
        total_flops=int(data["total_flops"]), total_macs=int(data["total_macs"]),
        warnings=tuple(str(w) for w in data.get("warnings", ())),
        other_params=int(data.get("other_params", 0)), other_bytes=int(data.get("other_bytes", 0)),
    )


# -- using either a loaded model or its data ------------------------------------------------------------------
def model_layer_weights(model: ModelHandle | ModelData, name: str) -> np.ndarray:
    """The float32 weight of layer `name` of a loaded model or a ModelData (read-only for a ModelData)."""
    if isinstance(model, ModelData):
        return model.layer_weights(name)
    from accelstudio.core.model.inspect import layer_weights

    return layer_weights(model, name)


def model_prunable(model: ModelHandle | ModelData) -> list:
    """The prunable weights (PrunableWeight) of a loaded model or a ModelData."""
    if isinstance(model, ModelData):
        return list(model.prunable)
    from accelstudio.core.compress.apply import prunable_weights

    return prunable_weights(model)[0]


def model_predict_sparsity(model: ModelHandle | ModelData, spec: PruneSpec) -> list[LayerReport]:
    """`predict_sparsity` for a loaded model or a ModelData (the same planner, on the data's arrays)."""
    from accelstudio.core.compress.apply import predict_sparsity, predict_sparsity_arrays

    if isinstance(model, ModelData):
        return predict_sparsity_arrays(model.prunable, model.bias_sizes, spec, model.channels)
    return predict_sparsity(model, spec)
