"""Shapes of every value of an ONNX graph at concrete input shapes, for counting FLOPs.

onnx.shape_inference runs on a copy of the graph that holds the concrete input shapes and no large tensor data
(so models near the 2 GiB protobuf limit still infer); where it leaves dimensions unknown (dynamic-axis
transformers exported from torch compute their Reshape targets from Shape/Gather/Concat), ONNX Runtime's
symbolic shape inference fills them in, run in memory only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection

import onnx

from accelstudio.core.model.handle import InputSpec

Shape = tuple  # tuple of int | None
SMALL_TENSOR = 64  # tensors up to this many elements keep their data for shape inference (Reshape targets)


def _prod(dims) -> int:
    return int(math.prod(int(d) for d in dims))


def _known(*shapes) -> bool:
    return all(s is not None and all(isinstance(d, int) and d >= 0 for d in s) for s in shapes)


def infer_shapes(model: onnx.ModelProto, inputs: tuple[InputSpec, ...],
                 ops_needing_shapes: Collection[str] = ()) -> tuple[dict[str, Shape], list[str]]:
    """Every value's shape at the concrete `inputs`, and warnings (conflicting input dims, failed inference).

    onnx's shape inference runs first; where it leaves dimensions unknown for an output of a node whose op type
    is in `ops_needing_shapes` (a Reshape whose target is computed
    from Shape/Gather/Concat, as torch exports of dynamic-axis transformers have), ONNX Runtime's symbolic shape
    inference fills them in.
    """
    skeleton = _skeleton(model, {spec.name: spec.shape for spec in inputs})
    shapes: dict[str, Shape] = {t.name: tuple(t.dims) for t in model.graph.initializer}
    notes = [note for note in (_static_dim_conflicts(model, inputs),) if note]
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton, strict_mode=False, data_prop=True)
    except Exception as exc:  # a graph onnx cannot infer: try the symbolic inference alone
        inferred = skeleton
        notes.append(f"onnx shape inference failed ({type(exc).__name__})")
    _collect_shapes(inferred.graph, shapes)
    if not all(_known(shapes.get(out)) for node in model.graph.node for out in node.output[:1]
               if node.op_type in ops_needing_shapes):
        symbolic = _symbolic_shapes(skeleton)
        if symbolic is not None:
            for name, dims in symbolic.items():
                if not _known(shapes.get(name)) and _known(dims):
                    shapes[name] = dims
    return shapes, notes


def _collect_shapes(graph: onnx.GraphProto, shapes: dict[str, Shape]) -> None:
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = _dims(info)
        if dims is not None and not _known(shapes.get(info.name)):
            shapes[info.name] = dims


def _as_graph_inputs(skeleton: onnx.ModelProto) -> onnx.ModelProto:
    """The skeleton with its data-less initializers turned into graph inputs of the same type and shape (the
    symbolic inference would read their missing data as values)."""
    out = onnx.ModelProto()
    out.CopyFrom(skeleton)
    graph = out.graph
    kept = [init for init in graph.initializer if _prod(init.dims) <= SMALL_TENSOR]
    stripped = [init for init in graph.initializer if _prod(init.dims) > SMALL_TENSOR]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    declared = {info.name for info in graph.input}
    for init in stripped:
        if init.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return out


def _symbolic_shapes(skeleton: onnx.ModelProto) -> dict[str, Shape] | None:
    """Shapes from onnxruntime.tools.symbolic_shape_infer, or None when it cannot run on this graph.

    Its `infer_shapes` entry point saves 'sym_shape_infer_temp.onnx' into the working folder when inference
    stays incomplete, so the same steps run here without that save; partial results are kept.
    """
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except ImportError:
        return None
    logger = logging.getLogger("onnxruntime.tools.symbolic_shape_infer")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its merge warnings are about symbols we fixed to concrete values
    try:
        engine = SymbolicShapeInference(int_max=2**31 - 1, auto_merge=True, guess_output_rank=False, verbose=0)
        engine._preprocess(_as_graph_inputs(skeleton))
        for _ in range(64):  # it loops until no new shapes appear; bound it all the same
            if not engine.run_:
                break
            engine._infer_impl()
        engine._update_output_from_vi()
        found: dict[str, Shape] = {}
        _collect_shapes(engine.out_mp_.graph, found)
        return found
    except Exception:  # symbolic inference is a best effort: unknown FLOPs are reported, never an error
        return None
    finally:
        logger.setLevel(level)


def _static_dim_conflicts(model: onnx.ModelProto, inputs: tuple[InputSpec, ...]) -> str | None:
    """A warning when a requested shape differs from a fixed dimension the graph declares."""
    declared = {info.name: _dims(info) for info in model.graph.input}
    for spec in inputs:
        dims = declared.get(spec.name)
        if dims is None or len(dims) != len(spec.shape):
            continue
        if any(d is not None and d > 0 and d != s for d, s in zip(dims, spec.shape)):
            shown = tuple("?" if d is None else d for d in dims)
            return (f"input '{spec.name}' is inspected at {tuple(spec.shape)} but the graph declares {shown}; "
                    "FLOPs follow the inspected shape")
    return None


def _dims(info: onnx.ValueInfoProto) -> Shape | None:
    tensor_type = info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)


def _skeleton(model: onnx.ModelProto, input_shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """A copy of `model` without large tensor data, its inputs set to `input_shapes`."""
    skeleton = onnx.ModelProto()
    skeleton.ir_version = model.ir_version
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    graph = skeleton.graph
    graph.name = model.graph.name
    graph.node.extend(model.graph.node)
    graph.output.extend(model.graph.output)
    graph.value_info.extend(model.graph.value_info)
    for init in model.graph.initializer:
        if _prod(init.dims) <= SMALL_TENSOR:
            graph.initializer.append(init)
        else:
            graph.initializer.add(name=init.name, dims=init.dims, data_type=init.data_type)
    for info in model.graph.input:
        copy = graph.input.add()
        copy.CopyFrom(info)
        if info.name in input_shapes and info.type.HasField("tensor_type"):
            dims = copy.type.tensor_type.shape.dim
            del dims[:]
            for d in input_shapes[info.name]:
                dims.add().dim_value = int(d)
    return skeleton
