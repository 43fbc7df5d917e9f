"""Parse an ONNX file one tensor at a time, so that a thread parsing a big model never holds the GIL for long.

protobuf parses a message in one C call that holds Python's GIL: for a 100 MB model that is a tenth of a second
or more in which no other thread (the window's) runs; allocating one 100 MB buffer for the file's bytes costs as
much again. Here the file is memory-mapped, its top-level records are walked in the protobuf wire format, and
the graph is parsed without its initializers, which are then parsed one by one into it (each holds the GIL only
for its own few megabytes). The result is the same ModelProto onnx.load gives.
Anything unexpected in the wire format raises ValueError; callers then fall back to onnx.load.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import onnx

MODEL_GRAPH_FIELD = 7  # ModelProto.graph
GRAPH_INITIALIZER_FIELD = 5  # GraphProto.initializer
LENGTH_DELIMITED = 2


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or invalid varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def records(buf, start: int, end: int):
    """(field number, wire type, record start, value start, record end) of each record in buf[start:end]."""
    pos = start
    while pos < end:
        record = pos
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
            value = pos
        elif wire == 1:
            value, pos = pos, pos + 8
        elif wire == LENGTH_DELIMITED:
            length, value = _varint(buf, pos)
            pos = value + length
        elif wire == 5:
            value, pos = pos, pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > end or field == 0:
            raise ValueError("record runs past the end of its message")
        yield field, wire, record, value, pos


def parse_model_in_pieces(path: Path) -> onnx.ModelProto:
    """The ONNX model in `path` (external data not loaded), parsed tensor by tensor."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            return _parse(view)
        finally:
            view.release()


def _parse(view: memoryview) -> onnx.ModelProto:
    shell, graphs = bytearray(), []
    for field, wire, record, value, end in records(view, 0, len(view)):
        if field == MODEL_GRAPH_FIELD and wire == LENGTH_DELIMITED:
            graphs.append((value, end))
        else:
            shell += view[record:end]
    model = onnx.ModelProto.FromString(bytes(shell))
    for start, end in graphs:  # protobuf merges repeated occurrences of a message field
        _merge_graph(model.graph, view, start, end)
    return model


def _merge_graph(graph: onnx.GraphProto, view: memoryview, start: int, end: int) -> None:
    rest, tensors = bytearray(), []
    for field, wire, record, value, stop in records(view, start, end):
        if field == GRAPH_INITIALIZER_FIELD and wire == LENGTH_DELIMITED:
            tensors.append((value, stop))
        else:
            rest += view[record:stop]
    graph.MergeFromString(bytes(rest))
    for value, stop in tensors:
        graph.initializer.add().MergeFromString(view[value:stop].tobytes())


def check_model_in_pieces(model: onnx.ModelProto) -> None:
    """onnx.checker on `model`, one initializer at a time and then the graph with empty stand-ins for them.

    Checking the whole model in memory serializes it and checks it in one GIL-holding call (a third of a second
    for 100 MB); the same checks run here in pieces. Raises onnx.checker.ValidationError like check_model."""
    for tensor in model.graph.initializer:
        onnx.checker.check_tensor(tensor)
    shell = onnx.ModelProto()
    _copy_fields(model, shell, skip="graph")
    _copy_fields(model.graph, shell.graph, skip="initializer")
    for tensor in model.graph.initializer:
        shell.graph.initializer.add(name=tensor.name, data_type=tensor.data_type, dims=[0])
    onnx.checker.check_model(shell)


def _copy_fields(source, target, skip: str) -> None:
    """Copy every set field of protobuf message `source` into `target` except `skip`."""
    for field, value in source.ListFields():
        if field.name == skip:
            continue
        slot = getattr(target, field.name)
        if hasattr(slot, "extend"):
            slot.extend(value)
        elif hasattr(slot, "CopyFrom"):
            slot.CopyFrom(value)
        else:
            setattr(target, field.name, value)
