"""Safe ONNX loading: size check before parsing, external data confined to the model's folder, op checks.

Also the atomic ONNX writer (external data beside the file for models too big for one protobuf message).
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PureWindowsPath
from typing import Iterator

import onnx

from accelstudio.core.errors import (
    CorruptModelError, ExternalDataError, ModelTooLargeError, NotAModelError, UnsupportedModelError,
)
from accelstudio.core.model.loading_common import (
    MAX_SINGLE_ONNX_BYTES, atomic_temp_path, looks_like_onnx, read_head, save_bytes_atomic,
)
from accelstudio.core.model.handle import InputSpec, ModelHandle

EXTERNAL_DATA_THRESHOLD = int(1.5 * 1024**3)  # above this, save_onnx_atomic writes weights to '<name>.data'
KNOWN_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}
_STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}
_CHECK_IN_MEMORY_BYTES = 8 * 1024**2  # bigger models are checked in pieces (onnx_pieces)
_MIN_EXTERNAL_BYTES = 1024


def load_onnx(path: Path, size: int) -> ModelHandle:
    """Load an ONNX file safely; every failure is a typed error naming the file."""
    if size >= MAX_SINGLE_ONNX_BYTES:
        raise ModelTooLargeError(path, f"a single ONNX file must be under 2 GiB (this one is {size / 1024**3:.2f} "
                                       "GiB); save the weights as external data (onnx.save_model(..., "
                                       "save_as_external_data=True)) and open the small .onnx file")
    onnxish = looks_like_onnx(read_head(path, 64))
    model = _parse(path, onnxish)
    _require_graph(path, model, onnxish)
    external = [t for t in iter_tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL]
    plans = [_validate_external(path, t) for t in external]
    check_operators(path, model)
    _run_checker(path, model, by_path=bool(plans))  # before the weights are read: fast, and no second copy
    for tensor, target, offset, length in plans:
        _read_external(path, tensor, target, offset, length)
    meta = {"file_bytes": size, "ir_version": model.ir_version, "opset": _default_opset(model),
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
            "external_data_files": sorted({os.path.relpath(p[1], os.path.realpath(path.parent)) for p in plans})}
    return ModelHandle(backend="onnx", source_format="onnx", inputs=onnx_inputs(model.graph),
                       onnx_model=model, source=path, metadata=meta)


def _parse(path: Path, onnxish: bool) -> onnx.ModelProto:
    from accelstudio.core.model.onnx_pieces import parse_model_in_pieces

    try:  # tensor by tensor: a thread loading a big model leaves the GIL to the window between tensors
        return parse_model_in_pieces(path)
    except Exception:  # odd wire format, empty file...: protobuf's own parse decides and names the problem
        pass
    try:
        return onnx.load_model(str(path), load_external_data=False)
    except Exception as e:  # DecodeError, RuntimeError, ValueError...: all mean the bytes are not a model
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if onnxish:
            raise CorruptModelError(path, f"cannot be parsed as ONNX ({reason}); the file is truncated or "
                                          "damaged, export or download it again") from None
        raise NotAModelError(path, f"is not an ONNX model (protobuf parse failed: {reason})") from None


def _require_graph(path: Path, model: onnx.ModelProto, onnxish: bool) -> None:
    """Garbage can parse as an empty ModelProto: demand a version, a graph, a node and an output."""
    missing = []
    if model.ir_version <= 0:
        missing.append("an IR version")
    if not model.HasField("graph") or len(model.graph.node) == 0:
        missing.append("graph nodes")
    elif len(model.graph.output) == 0:
        missing.append("graph outputs")
    if missing:
        cls = CorruptModelError if onnxish else NotAModelError
        raise cls(path, f"does not hold a usable ONNX graph (no {', no '.join(missing)}); "
                        "export the model to ONNX again")


def iter_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto in the model: initializers, sparse ones, attribute tensors, subgraphs, functions."""
    yield from _graph_tensors(model.graph)
    for fn in model.functions:
        for node in fn.node:
            yield from _node_tensors(node)
    for info in model.training_info:
        yield from _graph_tensors(info.initialization)
        yield from _graph_tensors(info.algorithm)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        sparse = list(attr.sparse_tensors) + ([attr.sparse_tensor] if attr.HasField("sparse_tensor") else [])
        for s in sparse:
            yield s.values
            yield s.indices
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for g in attr.graphs:
            yield from _graph_tensors(g)


def iter_nodes(model: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    """Every node, including those in subgraphs (If/Loop/Scan bodies) and in local functions."""
    stack = [model.graph] + [g for info in model.training_info for g in (info.initialization, info.algorithm)]
    nodes = [n for fn in model.functions for n in fn.node]
    while stack:
        nodes.extend(stack.pop().node)
    while nodes:
        node = nodes.pop()
        yield node
        for attr in node.attribute:
            for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                nodes.extend(g.node)


def _expected_bytes(tensor: onnx.TensorProto) -> int | None:
    if tensor.data_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
        return None
    try:
        bits = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize * 8
    except Exception:
        return None
    if tensor.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4):
        bits = 4
    return (math.prod(tensor.dims) * bits + 7) // 8


def _validate_external(path: Path, tensor: onnx.TensorProto) -> tuple[onnx.TensorProto, str, int, int]:
    """Check one external-data reference; return (tensor, resolved file, offset, bytes to read)."""
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")

    def fail(why: str) -> ExternalDataError:
        return ExternalDataError(path, f"tensor '{tensor.name}' (location '{location}'): {why}")

    if not location:
        raise fail("no location is given; re-save the model with its external data")
    if os.path.isabs(location) or PureWindowsPath(location).is_absolute() or location[0] in "/\\" \
            or PureWindowsPath(location).drive:
        raise fail("absolute paths are not allowed; external data must sit beside the model")
    folder = os.path.realpath(path.absolute().parent)
    target = os.path.realpath(os.path.join(folder, location))
    if os.path.commonpath([folder, target]) != folder:
        raise fail(f"resolves to '{target}', outside the model's folder '{folder}'; keep data files beside the model")
    if not os.path.isfile(target):
        raise fail("the file does not exist; copy it next to the model")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise fail("offset/length are not integers; the model file is damaged") from None
    file_size = os.path.getsize(target)
    expected = _expected_bytes(tensor)
    if offset < 0 or (length is not None and length < 0):
        raise fail("negative offset or length; the model file is damaged")
    if length is None:
        length = file_size - offset if expected is None else expected
    if offset + length > file_size:
        raise fail(f"offset {offset} + length {length} runs past the end of the file ({file_size} bytes); "
                   "the data file is truncated or belongs to another model")
    if expected is not None and length != expected:
        raise fail(f"holds {length} bytes but the tensor's shape and type need {expected}")
    return tensor, target, offset, length


def _read_external(path: Path, tensor: onnx.TensorProto, target: str, offset: int, length: int) -> None:
    with open(target, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise ExternalDataError(path, f"tensor '{tensor.name}': could read only {len(data)} of {length} bytes")
    tensor.raw_data = data
    del tensor.external_data[:]
    tensor.data_location = onnx.TensorProto.DEFAULT


def _default_opset(model: onnx.ModelProto) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def check_operators(path: Path, model: onnx.ModelProto) -> None:
    """Reject opsets newer than this onnx knows, unknown standard ops and custom-domain ops."""
    newest = onnx.defs.onnx_opset_version()
    if model.ir_version > onnx.IR_VERSION:
        raise UnsupportedModelError(path, f"IR version {model.ir_version} is newer than supported "
                                          f"({onnx.IR_VERSION}); export with an older ONNX version")
    opset = _default_opset(model)
    if opset is not None and opset > newest:
        raise UnsupportedModelError(path, f"opset {opset} is newer than the newest supported ({newest}); "
                                          f"export with opset_version={newest} or lower")
    local = {(f.domain, f.name) for f in model.functions}
    custom: dict[str, set[str]] = {}
    unknown: set[str] = set()
    for node in iter_nodes(model):
        if (node.domain, node.op_type) in local:
            continue
        if node.domain not in KNOWN_DOMAINS:
            custom.setdefault(node.domain, set()).add(node.op_type)
        elif node.domain in _STANDARD_DOMAINS and not onnx.defs.has(node.op_type, _schema_domain(node.domain)):
            unknown.add(node.op_type)
    if custom:
        listed = "; ".join(f"{d}: {', '.join(sorted(ops)[:5])}" for d, ops in sorted(custom.items()))
        raise UnsupportedModelError(path, f"uses custom operators that no supported runtime provides ({listed}); "
                                          "export the model with standard ONNX operators only")
    if unknown:
        raise UnsupportedModelError(path, f"uses operators unknown to ONNX {onnx.__version__}: "
                                          f"{', '.join(sorted(unknown)[:8])}; export with standard operators")


def _schema_domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def _run_checker(path: Path, model: onnx.ModelProto, by_path: bool) -> None:
    """Validate the graph. Models with external data are checked by path (the checker then verifies the data
    files without reading the weights), the others in memory."""
    from accelstudio.core.model.onnx_pieces import check_model_in_pieces

    try:
        if by_path:
            onnx.checker.check_model(str(path))
        elif path.stat().st_size > _CHECK_IN_MEMORY_BYTES:  # the same checks, never holding the GIL for long
            check_model_in_pieces(model)
        else:
            onnx.checker.check_model(model)
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CorruptModelError(path, f"fails ONNX validation ({reason}); export the model again") from None


def onnx_inputs(graph: onnx.GraphProto) -> tuple[InputSpec, ...]:
    """Graph inputs that are not initializers, with dynamic dimensions as None and numpy dtype names."""
    initializers = {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    specs = []
    for value in graph.input:
        if value.name in initializers:
            continue
        ttype = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                      for d in ttype.shape.dim)
        specs.append(InputSpec(value.name, shape, _dtype_name(ttype.elem_type)))
    return tuple(specs)


def _dtype_name(elem_type: int) -> str:
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
    except Exception:
        return onnx.TensorProto.DataType.Name(elem_type).lower() if elem_type else "unknown"


def save_onnx_atomic(model: onnx.ModelProto, path: str | Path, *,
                     external_data_threshold: int = EXTERNAL_DATA_THRESHOLD) -> Path:
    """Write `model` to `path` atomically; above the threshold, weights go to '<name>.data' beside it.

    The caller's model is left as it was (tensors moved out for saving are put back).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        size = model.ByteSize()
    except Exception:
        size = external_data_threshold + 1
    if size <= external_data_threshold:
        return save_bytes_atomic(model.SerializeToString(), path)
    data_path = path.with_name(path.name + ".data")
    data_tmp = atomic_temp_path(data_path)
    try:
        proto_bytes = _serialize_with_external(model, data_tmp, data_path.name)
        os.replace(data_tmp, data_path)
    except BaseException:
        data_tmp.unlink(missing_ok=True)
        raise
    return save_bytes_atomic(proto_bytes, path)


def _serialize_with_external(model: onnx.ModelProto, data_tmp: Path, location: str) -> bytes:
    """Move large raw tensors into `data_tmp`, serialize, then put the tensors back from the file."""
    moved: list[tuple[onnx.TensorProto, int, int, bool]] = []
    try:
        with open(data_tmp, "wb") as f:
            for tensor in iter_tensors(model):
                if tensor.data_location == onnx.TensorProto.EXTERNAL or not tensor.HasField("raw_data"):
                    continue
                raw = tensor.raw_data
                if len(raw) < _MIN_EXTERNAL_BYTES:
                    continue
                offset = (f.tell() + 4095) // 4096 * 4096  # page-aligned so runtimes can mmap it
                f.seek(offset)
                f.write(raw)
                moved.append((tensor, offset, len(raw), tensor.HasField("data_location")))
                tensor.ClearField("raw_data")
                tensor.data_location = onnx.TensorProto.EXTERNAL
                for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(raw)))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = key, value
            f.flush()
            os.fsync(f.fileno())
        return model.SerializeToString()
    finally:
        with open(data_tmp, "rb") as f:
            for tensor, offset, length, had_location in moved:
                f.seek(offset)
                tensor.raw_data = f.read(length)
                del tensor.external_data[:]
                if had_location:
                    tensor.data_location = onnx.TensorProto.DEFAULT
                else:
                    tensor.ClearField("data_location")
