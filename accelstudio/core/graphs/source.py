"""The operator graph of any loaded model: ONNX graphs as they are, torch modules through the same in-memory
ONNX export the onnxruntime runs use (core/compress/export.py), so node names carry the module paths."""

from __future__ import annotations

from typing import Any

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.model.graph_extract import op_graph_from_onnx
from accelstudio.core.model.graph_groups import OpGraph, Progress


class GraphUnavailableError(AccelStudioError):
    """The model has no operator graph the app can show (the message says why and what to do)."""


def op_graph_for_handle(handle: Any, progress: Progress | None = None) -> OpGraph:
    """The graph of a loaded model: ONNX directly, torch through its ONNX export. GraphUnavailableError for a
    model known only by data (opened in a separate process) or one torch cannot export."""
    backend = getattr(handle, "backend", None)
    if getattr(handle, "onnx_model", None) is not None:
        return op_graph_from_onnx(handle.onnx_model, progress=progress)
    if backend == "torch" and getattr(handle, "module", None) is not None:
        from accelstudio.core.compress.export import to_onnx_handle

        try:
            exported = to_onnx_handle(handle)
        except AccelStudioError as exc:
            raise GraphUnavailableError(f"{handle.name}: no graph to show: {exc}") from None
        return op_graph_from_onnx(exported.onnx_model, progress=progress)
    name = getattr(handle, "name", "model")
    raise GraphUnavailableError(f"{name}: this model was opened in a separate process and only its layers came "
                                "back, so there is no graph to draw; the layer table lists its layers")
