"""The file-based preparation ONNX Runtime's quantizers need, shared by the dynamic, weight-only and static int8
paths: a private working directory, quiet quantizers, a named and pre-processed copy written to a folder."""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

import onnx
from onnx.external_data_helper import load_external_data_for_model

from accelstudio.core.model.onnx_layers import weighted_nodes
from accelstudio.core.model.onnx_weights import materialize_weights

LARGE_MODEL_BYTES = 1_800_000_000  # protobuf's 2 GiB limit, with headroom


@contextlib.contextmanager
def private_working_directory():
    """Run the body with a fresh temporary folder as the working directory, removed afterwards.

    ONNX Runtime's symbolic shape inference (inside quant_pre_process) saves 'sym_shape_infer_temp.onnx' and its
    weights as a '<uuid>' external-data file into the working directory whenever it cannot infer every shape,
    and nothing may be written to the user's folder. The working directory belongs to the whole process: this
    runs in the worker process (or the single-threaded CLI), never on a GUI thread.
    """
    try:
        before = os.getcwd()
    except OSError:  # the working directory was deleted; there is nothing to go back to
        before = None
    with tempfile.TemporaryDirectory(prefix="accelstudio-cwd-") as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(before if before is not None else tempfile.gettempdir())


@contextlib.contextmanager
def quiet_ort():
    """Keep onnxruntime's quantizers from printing: its calibrators print progress to stdout, and its
    module-level logging.warning calls would install a stderr handler on the root logger."""
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeHandler(guard)


def _save(model: onnx.ModelProto, path: Path) -> bool:
    """Write `model` to `path` (weights as external data beside it when too big for one protobuf)."""
    large = model.ByteSize() > LARGE_MODEL_BYTES
    onnx.save(model, str(path), save_as_external_data=large, location=path.name + ".data" if large else None)
    if large:  # saving moved the weights out of `model`; read them back so it stays usable
        load_external_data_for_model(model, str(path.parent))
    return large


def _with_node_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy in which every node has a unique name (onnxruntime's quantizers exclude nodes by name)."""
    out = copy.deepcopy(model)
    taken = {node.name for node in out.graph.node if node.name}
    for i, node in enumerate(out.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)
    return out


def named_copy(model: onnx.ModelProto, excluded: set[str]) -> tuple[onnx.ModelProto, list[str]]:
    """A copy with named nodes and the node names of the excluded layers (matched by position, so the
    recipe's layer names keep meaning what they meant in `model`)."""
    named = _with_node_names(model)
    before, after = weighted_nodes(model), weighted_nodes(named)
    return named, [after[i].node.name for i, layer in enumerate(before) if layer.name in excluded]


def _weighted_node_names(model: onnx.ModelProto) -> list[str]:
    return [layer.node.name for layer in weighted_nodes(model)]


def prepared_copy(model: onnx.ModelProto, folder: Path, excluded: set[str],
              transform: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None) -> tuple[Path, list[str], bool]:
    """The model written to `folder` (nodes named), pre-processed (shape inference + basic optimization) when
    that works, then passed through `transform`; returns its path, the node names to exclude and whether weights
    are stored as external data.

    Pre-processing is skipped when it fails or when it renames or removes weighted nodes.
    """
    from onnxruntime.quantization import quant_pre_process

    named, skip = named_copy(model, excluded)
    named, _ = materialize_weights(named)  # node-made and Identity-shared weights are quantized too
    chosen = named
    raw = folder / "input.onnx"
    if not _save(named, raw):
        done = folder / "preprocessed.onnx"
        try:
            with quiet_ort():
                quant_pre_process(str(raw), str(done))
            processed = onnx.load(str(done))
            if _weighted_node_names(processed) == _weighted_node_names(named):
                chosen = processed
        except Exception:  # shape inference or the optimizer cannot handle this graph: quantize it as it is
            pass
    if transform is not None:
        chosen = transform(chosen)
    final = folder / "to_quantize.onnx"
    large = _save(chosen, final)
    return final, skip, large


def load_result(path: Path) -> onnx.ModelProto:
    """The quantized model written at `path`, read back whole."""
    return onnx.load(str(path))  # external data (if any) is read into memory while the folder still exists


def ort_quant_type(name: str):
    """ONNX Runtime's QuantType for a recipe's weight type name ('qint8' or 'quint8')."""
    from onnxruntime.quantization import QuantType

    return QuantType.QInt8 if name == "qint8" else QuantType.QUInt8
