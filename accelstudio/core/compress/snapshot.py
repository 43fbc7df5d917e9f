"""A data-only copy of an inspected model: all the window needs to show a model it must not load itself.

A trusted TorchScript, torch.export or pickled-module file runs its own code while it loads, and a crash in that
code would end whichever process loads it. So the window has such files opened in a worker process (job kind
"inspect", accelstudio.worker), which sends back a snapshot payload in its result message; the window reads it
as a `ModelSnapshot`: the ModelSummary (layer table, totals), a float32 weight array per layer (histograms,
quantization grids) and the prunable layers' weights and shapes (pruning predictions). Reading a snapshot runs
no code from the model: JSON, and arrays rebuilt from raw float32 bytes.

A snapshot payload (a JSON object) holds: format, name, backend, source_format, summary (summary_to_dict),
layers {name: key}, prunable [{name, key, k_axis, bias}], channels [ChannelLayer fields] or null, and
arrays {key: {"shape": [int], "data": base64 of little-endian float32}} (layer names can be any text; the keys
a0, a1, ... cannot), each array stored once.
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
from accelstudio.core.model.summary import LayerStats, ModelSummary
from accelstudio.core.progress import ProgressCallback, ProgressEvent
from accelstudio.core.compress.pruning_plan import ChannelLayer, LayerReport, PrunableWeight
from accelstudio.core.recipe import PruneSpec

SNAPSHOT_FORMAT = 2


class SnapshotError(AccelStudioError):
    """A snapshot folder is missing, incomplete or not in the expected form."""

    category = "unreadable model snapshot"


@dataclass(frozen=True, eq=False)
class ModelSnapshot:
    """A model known only by data: its summary, each layer's weight (float32, read-only), and the prunable
    layers' weights, bias sizes and channel shapes (`channels` None: it cannot be pruned structurally)."""

    name: str
    backend: str
    source_format: str
    summary: ModelSummary
    weights: dict[str, np.ndarray]
    prunable: tuple[PrunableWeight, ...]
    bias_sizes: dict[str, int]
    channels: tuple[ChannelLayer, ...] | None


# -- writing (in the process that loaded the model) -----------------------------------------------------------
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
    return snapshot_payload(handle, summary)


def snapshot_payload(handle: ModelHandle, summary: ModelSummary) -> dict[str, Any]:
    """The snapshot of an inspected model as a JSON-ready payload."""
    from accelstudio.core.compress.apply import channel_layers, prunable_weights
    from accelstudio.core.errors import CompressionError
    from accelstudio.core.model.inspect import layer_weights

    arrays: dict[str, np.ndarray] = {}
    layers = {}
    for layer in summary.layers:
        try:
            layers[layer.name] = _add(arrays, layer_weights(handle, layer.name))
        except UnknownLayerError:  # listed but without a readable weight: no histogram, as when loaded in place
            continue
    weights, bias_sizes = prunable_weights(handle)
    prunable = []
    for w in weights:
        same = _same_values(arrays, layers.get(w.name), w.array)
        key = layers[w.name] if same else _add(arrays, w.array)
        prunable.append({"name": w.name, "key": key, "k_axis": w.k_axis, "bias": int(bias_sizes.get(w.name, 0))})
    try:
        channels = [asdict(c) for c in channel_layers(handle)]
    except CompressionError:
        channels = None
    return {"format": SNAPSHOT_FORMAT, "name": handle.name, "backend": handle.backend,
            "source_format": handle.source_format, "summary": summary_to_dict(summary), "layers": layers,
            "prunable": prunable, "channels": channels,
            "arrays": {key: {"shape": list(a.shape), "data": base64.b64encode(a.astype("<f4").tobytes()).decode()}
                       for key, a in arrays.items()}}


def _same_values(arrays: dict[str, np.ndarray], key: str | None, array: np.ndarray) -> bool:
    if key is None:
        return False
    stored = arrays[key]
    return stored.shape == array.shape and np.array_equal(stored, np.asarray(array, np.float32), equal_nan=True)


def _add(arrays: dict[str, np.ndarray], array: np.ndarray) -> str:
    key = f"a{len(arrays)}"
    arrays[key] = np.ascontiguousarray(array, dtype=np.float32)
    return key


# -- reading (in the window's process) ------------------------------------------------------------------------
def read_snapshot(payload: dict[str, Any]) -> ModelSnapshot:
    """The ModelSnapshot a snapshot payload describes; SnapshotError when it is incomplete or malformed."""
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


def _snapshot_from(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ModelSnapshot:
    prunable = tuple(PrunableWeight(str(p["name"]), arrays[p["key"]], None if p["k_axis"] is None
                                    else int(p["k_axis"])) for p in meta["prunable"])
    channels = meta["channels"]
    return ModelSnapshot(
        name=str(meta["name"]), backend=str(meta["backend"]), source_format=str(meta["source_format"]),
        summary=summary_from_dict(meta["summary"]),
        weights={str(name): arrays[key] for name, key in meta["layers"].items()}, prunable=prunable,
        bias_sizes={str(p["name"]): int(p["bias"]) for p in meta["prunable"]},
        channels=None if channels is None else tuple(ChannelLayer(**c) for c in channels),
    )


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


# -- using either a handle or a snapshot -------------------------------------------------------------------
def model_layer_weights(model: ModelHandle | ModelSnapshot, name: str) -> np.ndarray:
    """The float32 weight of layer `name` of a loaded model or a snapshot (read-only for a snapshot)."""
    if isinstance(model, ModelSnapshot):
        if name not in model.weights:
            raise UnknownLayerError(f"model '{model.name}' has no layer with weights named '{name}'")
        return model.weights[name]
    from accelstudio.core.model.inspect import layer_weights

    return layer_weights(model, name)


def model_predict_sparsity(model: ModelHandle | ModelSnapshot, spec: PruneSpec) -> list[LayerReport]:
    """`predict_sparsity` for a loaded model or a snapshot (the same planner, on the snapshot's arrays)."""
    from accelstudio.core.compress.apply import predict_sparsity, predict_sparsity_arrays

    if isinstance(model, ModelSnapshot):
        return predict_sparsity_arrays(model.prunable, model.bias_sizes, spec, model.channels)
    return predict_sparsity(model, spec)
