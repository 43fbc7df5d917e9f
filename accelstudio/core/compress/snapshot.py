"""A data-only copy of an inspected model: all the window needs to show a model it must not load itself.

A trusted TorchScript, torch.export or pickled-module file runs its own code while it loads, and a crash in that
code would end whichever process loads it. So the window has such files opened in a separate process
(accelstudio.worker.inspect_child), which writes a snapshot folder; the window reads it back as a
`ModelSnapshot`: the ModelSummary (layer table, totals), a float32 weight array per layer (histograms,
quantization grids) and the prunable layers' weights and shapes (pruning predictions). Reading a snapshot runs
no code from the model: JSON, and arrays loaded with allow_pickle=False.

A snapshot folder (data_dir()/snapshots/<random name>/) holds:
    weights.npz     float32 arrays named a0, a1, ... (layer names can be any text; these keys cannot)
    snapshot.json   written last, so its presence means the snapshot is complete: format, name, backend,
                    source_format, summary (summary_to_dict), layers {name: key},
                    prunable [{name, key, k_axis, bias}], channels [ChannelLayer fields] or null
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import zipfile
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

SNAPSHOT_FORMAT = 1
META_FILE = "snapshot.json"
WEIGHTS_FILE = "weights.npz"
STALE_AFTER_S = 24 * 3600.0  # far beyond any load's timeout: older folders were left by an app that died


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


# -- folders ------------------------------------------------------------------------------------------------
def snapshots_dir() -> Path:
    """The folder that holds snapshot folders (created on demand)."""
    from accelstudio.core.paths import data_dir

    path = data_dir() / "snapshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_snapshot_folder() -> Path:
    """A fresh, empty snapshot folder with a random name."""
    folder = snapshots_dir() / uuid.uuid4().hex
    folder.mkdir()
    return folder


def remove_snapshot(folder: Path) -> None:
    """Delete a snapshot folder and everything in it (missing is fine)."""
    shutil.rmtree(folder, ignore_errors=True)


def remove_stale_snapshots(max_age_s: float = STALE_AFTER_S) -> int:
    """Delete snapshot folders not modified for `max_age_s` seconds (left by an app that died); their count."""
    now, removed = time.time(), 0
    for folder in snapshots_dir().iterdir():
        try:
            stale = folder.is_dir() and not folder.is_symlink() and now - folder.stat().st_mtime > max_age_s
        except OSError:
            continue
        if stale:
            remove_snapshot(folder)
            removed += 1
    return removed


# -- writing (in the process that loaded the model) -----------------------------------------------------------
def snapshot_model(ref: str, folder: Path, *, trust: bool, backend: str | None = None,
                   progress: ProgressCallback | None = None) -> ModelSummary:
    """Open `ref` (stages "load", "inspect", "snapshot"), inspect it and write its snapshot into `folder`."""
    from accelstudio.core.model.inspect import inspect_model
    from accelstudio.core.model.loading import open_model

    report = progress or (lambda _event: None)
    report(ProgressEvent("load", 0.0, f"opening {Path(ref).name}"))
    handle = open_model(ref, trust=trust, backend=backend)
    report(ProgressEvent("inspect", 0.0, "counting parameters and FLOPs"))
    summary = inspect_model(handle)
    report(ProgressEvent("snapshot", 0.0, "copying the weights"))
    write_snapshot(handle, summary, folder)
    return summary


def write_snapshot(handle: ModelHandle, summary: ModelSummary, folder: Path) -> None:
    """Write the snapshot of an inspected model into the (existing) `folder`."""
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
    meta = {"format": SNAPSHOT_FORMAT, "name": handle.name, "backend": handle.backend,
            "source_format": handle.source_format, "summary": summary_to_dict(summary), "layers": layers,
            "prunable": prunable, "channels": channels}
    _write_atomic(folder / WEIGHTS_FILE, lambda f: np.savez(f, **arrays))
    _write_atomic(folder / META_FILE, lambda f: f.write(json.dumps(meta).encode("utf-8")))


def _same_values(arrays: dict[str, np.ndarray], key: str | None, array: np.ndarray) -> bool:
    if key is None:
        return False
    stored = arrays[key]
    return stored.shape == array.shape and np.array_equal(stored, np.asarray(array, np.float32), equal_nan=True)


def _add(arrays: dict[str, np.ndarray], array: np.ndarray) -> str:
    key = f"a{len(arrays)}"
    arrays[key] = np.ascontiguousarray(array, dtype=np.float32)
    return key


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


# -- reading (in the window's process) ------------------------------------------------------------------------
def read_snapshot(folder: Path) -> ModelSnapshot:
    """Read a complete snapshot folder into memory (the folder can be deleted afterwards)."""
    try:
        meta = json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f"{folder}: not a snapshot of format {SNAPSHOT_FORMAT}")
        with np.load(Path(folder) / WEIGHTS_FILE, allow_pickle=False) as npz:
            arrays = {key: _read_only(npz[key]) for key in npz.files}
        return _snapshot_from(meta, arrays)
    except SnapshotError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"{folder}: {type(exc).__name__}: {exc}") from None


def _read_only(array: np.ndarray) -> np.ndarray:
    if array.dtype != np.float32:
        raise ValueError(f"weights of dtype {array.dtype}, expected float32")
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
