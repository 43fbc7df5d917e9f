"""Static int8 (QDQ) quantization of ONNX models with ONNX Runtime, calibrated on the user's inputs.

CNN-like graphs get ONNX Runtime's full QDQ coverage (int8 chains through Conv, Relu, Add, pooling). Attention
models (LayerNorm, GELU, embedding gathers, activation x activation MatMuls) get int8 only on the inputs and
weights of MatMul/Gemm/Conv, with per-channel weights; LayerNorm, Softmax, residual Adds, GELU and embedding
gathers stay float32, since quantizing them destroys such models.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from onnxruntime.quantization import CalibrationDataReader

from accelstudio.core.errors import CompressionError
from accelstudio.core.compress.quant_onnx_files import load_result, ort_quant_type, prepared_copy, quiet_ort
from accelstudio.core.compress.quant_sim import add_onnx_note
from accelstudio.core.recipe import QuantSpec

STATIC_BATCH = 16


class _CalibReader(CalibrationDataReader):
    """Feeds calibration batches to onnxruntime's calibrator."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self._feeds = feeds
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch, or None when all have been given."""
        if self._next >= len(self._feeds):
            return None
        self._next += 1
        return self._feeds[self._next - 1]

    def rewind(self) -> None:
        """Start again from the first batch (calibrators that pass over the data twice call this)."""
        self._next = 0


def _calibration_feeds(model: onnx.ModelProto, calib, samples: int) -> list[dict[str, np.ndarray]]:
    """Batches of calibration inputs keyed by the model's input names."""
    if not calib:
        raise CompressionError("static int8 needs calibration data: give calibration inputs (for the examples "
                               "their calib.npz) or choose dynamic-int8")
    init_names = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init_names]
    arrays = {}
    for inp in inputs:
        if inp.name in calib:
            arrays[inp.name] = calib[inp.name]
        elif len(inputs) == 1 and len(calib) == 1:
            arrays[inp.name] = next(iter(calib.values()))
        else:
            raise CompressionError(f"calibration data has no array for model input '{inp.name}' "
                                   f"(it has: {', '.join(calib)}); name the arrays after the model's inputs")
    n = min(min(len(a) for a in arrays.values()), samples)
    dims = {inp.name: inp.type.tensor_type.shape.dim for inp in inputs}
    fixed = {d[0].dim_value for d in dims.values() if len(d) and d[0].HasField("dim_value") and d[0].dim_value > 0}
    batch = min(fixed) if fixed else STATIC_BATCH
    feeds = []
    for start in range(0, n - batch + 1 if fixed else n, batch):
        feed = {}
        for inp in inputs:
            dtype = helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
            feed[inp.name] = np.ascontiguousarray(np.asarray(arrays[inp.name][start:start + batch], dtype=dtype))
        feeds.append(feed)
    if not feeds:
        raise CompressionError(f"static int8 needs at least {batch} calibration samples; got {n}")
    return feeds


def static_int8(model: onnx.ModelProto, spec: QuantSpec, excluded: set[str], calib) -> onnx.ModelProto:
    """QDQ static quantization: activation ranges from calibration (MinMax, Entropy or Percentile).

    On attention models only the inputs and weights of MatMul (with a constant weight), Gemm and Conv are
    quantized, with per-channel weights: LayerNorm, Softmax, residual Adds, GELU and embedding gathers stay float.
    Other graphs (CNNs) get ONNX Runtime's full QDQ coverage, which keeps their int8 chains unbroken.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    feeds = _calibration_feeds(model, calib, spec.calib_samples)
    plan = _static_plan(model, spec)
    if plan.per_channel:
        model, plan = _opset_for_per_channel(model, plan)
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[spec.calibration]
    with tempfile.TemporaryDirectory(prefix="accelstudio-quant-") as tmp:
        src, skip, large = prepared_copy(model, Path(tmp), excluded)
        skip = list(skip) + _output_activations(onnx.load(str(src), load_external_data=False))
        out = Path(tmp) / "quantized.onnx"
        try:
            with quiet_ort():
                # uint8 activations with int8 weights is the recommended pairing for x86 CPUs
                quantize_static(str(src), str(out), _CalibReader(feeds), quant_format=QuantFormat.QDQ,
                                op_types_to_quantize=plan.op_types, per_channel=plan.per_channel,
                                activation_type=QuantType.QUInt8, weight_type=ort_quant_type(spec.weight_type),
                                calibrate_method=method, nodes_to_exclude=skip, use_external_data_format=large,
                                extra_options=plan.extra_options)
        except Exception as exc:
            raise CompressionError(f"ONNX Runtime static int8 quantization failed on this model (check that the "
                                   f"calibration data fits its inputs): {type(exc).__name__}: {exc}") from None
        result = load_result(out)
    if plan.op_types is not None:
        _float_readers_read_float(result, set(plan.op_types))
    for note in plan.notes + _calibration_notes(feeds):
        add_onnx_note(result, note)
    return result


OUTPUT_ACTIVATIONS = ("Softmax", "LogSoftmax", "Sigmoid")
SHAPE_ONLY_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity")


def _output_activations(model: onnx.ModelProto) -> list[str]:
    """Nodes that make a graph output from a softmax or sigmoid (with the reshapes between them and the output).
    Their 8-bit output would round every probability to a step of 1/255 (a uniform softmax over 1000 classes
    becomes all zeros), and they hold no weight to quantize, so they stay float: the outputs keep their precision."""
    producers = {out: node for node in model.graph.node for out in node.output}
    found: list[str] = []
    for output in model.graph.output:
        chain, node = [], producers.get(output.name)
        while node is not None and node.op_type in SHAPE_ONLY_OPS and node.input:
            chain.append(node.name)
            node = producers.get(node.input[0])
        if node is not None and node.op_type in OUTPUT_ACTIVATIONS:
            found += chain + [node.name]
    return found


PER_CHANNEL_OPSET = 13  # DequantizeLinear's `axis` (per-channel scales) exists from opset 13 on


def _opset_for_per_channel(model: onnx.ModelProto, plan: "_StaticPlan") -> tuple[onnx.ModelProto, "_StaticPlan"]:
    """Per-channel QDQ needs opset 13; ONNX Runtime's quantizer lifts older graphs only to 11 and then writes an
    invalid model (onnx's ResNet-50 test graph is opset 9). Convert with onnx's version converter, or fall back
    to per-tensor weights with a note when the converter cannot."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), PER_CHANNEL_OPSET)
    if version >= PER_CHANNEL_OPSET:
        return model, plan
    from dataclasses import replace

    from onnx import version_converter

    try:
        return version_converter.convert_version(model, PER_CHANNEL_OPSET), replace(
            plan, notes=plan.notes + [f"the graph was converted from opset {version} to {PER_CHANNEL_OPSET} for "
                                      "per-channel int8 weights"])
    except Exception as exc:  # the converter does not know every old op
        return model, replace(plan, per_channel=False, notes=plan.notes + [
            f"per-tensor int8 weights: per-channel needs opset {PER_CHANNEL_OPSET} and this opset-{version} graph "
            f"could not be converted ({type(exc).__name__})"])


# Ops that mark an attention model. Quantizing everything ONNX Runtime can (LayerNorm, Softmax, residual Adds,
# GELU, the embedding table) collapsed a sentence-embedding transformer to cosine 0.39 against float32. A Softmax
# alone is no marker: classification CNNs end with one.
ATTENTION_MARKERS = frozenset({"LayerNormalization", "SkipLayerNormalization", "Erf", "Gelu", "FastGelu",
                               "BiasGelu", "Attention", "MultiHeadAttention", "EmbedLayerNormalization"})
ATTENTION_STATIC_OPS = ("MatMul", "Gemm", "Conv")
FEW_CALIB_SAMPLES = 64


@dataclass(frozen=True)
class _StaticPlan:
    """How quantize_static is called for one model, and the notes that say so to the user."""

    op_types: list[str] | None
    per_channel: bool
    extra_options: dict
    notes: list[str]


def _embedding_gathers(model: onnx.ModelProto) -> list[str]:
    """Gather nodes that look up rows of a float initializer (token or position embedding tables)."""
    floats = {i.name for i in model.graph.initializer
              if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16) and len(i.dims) >= 2}
    return [n.name or n.output[0] for n in model.graph.node if n.op_type == "Gather" and n.input[0] in floats]


def _constant_names(model: onnx.ModelProto) -> set[str]:
    """Initializers and every tensor computed from constants only (Constant, ConstantOfShape, ...)."""
    consts = {i.name for i in model.graph.initializer}
    for node in model.graph.node:  # nodes are stored in topological order
        if all(name in consts for name in node.input if name):
            consts.update(node.output)
    return consts


def _activation_matmuls(model: onnx.ModelProto) -> list[str]:
    """MatMul nodes that multiply two computed tensors (attention scores and context), not a weight."""
    consts = _constant_names(model)
    return [n.name or n.output[0] for n in model.graph.node
            if n.op_type == "MatMul" and not any(name in consts for name in n.input)]


def is_attention_model(model: onnx.ModelProto) -> bool:
    """Whether the graph holds attention-model parts (LayerNorm, GELU, embedding gathers, activation x activation
    MatMuls) that static int8 must keep in float."""
    ops = {n.op_type for n in model.graph.node}
    return bool(ops & ATTENTION_MARKERS) or bool(_embedding_gathers(model)) or bool(_activation_matmuls(model))


def _static_plan(model: onnx.ModelProto, spec: QuantSpec) -> _StaticPlan:
    extra = {"WeightSymmetric": spec.symmetric}
    if not is_attention_model(model):
        return _StaticPlan(None, spec.per_channel, extra, [])
    ops = {n.op_type for n in model.graph.node}
    kept = (ops & (ATTENTION_MARKERS | {"Softmax", "Add"})) | ({"Gather"} if _embedding_gathers(model) else set())
    kept = sorted(kept)
    extra.update({
        "MatMulConstBOnly": True,  # attention's activation x activation matmuls (scores, context) stay float
        "ActivationSymmetric": False,  # post-GELU and post-LayerNorm activations are far from symmetric
        # outputs stay float (int8 in, float out: MatMulIntegerToFloat); quantizing them rounds the bias Adds,
        # the attention scores and the residual stream
        "OpTypesToExcludeOutputQuantization": list(ATTENTION_STATIC_OPS),
        "DedicatedQDQPair": True,  # one Q/DQ pair per quantized reader of a tensor
    })
    notes = [f"static-int8 (attention model): inputs and weights of {', '.join(ATTENTION_STATIC_OPS)} layers "
             f"quantized with per-channel weights; {', '.join(kept)} and activation x activation MatMuls stay "
             "float32 (quantizing them destroys attention models)"]
    if not spec.per_channel:
        notes.append("static-int8: per-channel weights used on this attention model although the recipe asks "
                     "per-tensor (per-tensor int8 weights lose too much on attention projections)")
    return _StaticPlan(list(ATTENTION_STATIC_OPS), True, extra, notes)


def _float_readers_read_float(model: onnx.ModelProto, quantized_ops: set[str]) -> None:
    """Rewire nodes that are not quantized (a post-norm layer's residual Add reading the LayerNorm output that a
    MatMul also reads) from the DequantizeLinear output back to the float tensor. ONNX Runtime gives such a
    tensor one shared Q/DQ pair when only one of its readers is quantized, which would round the residual."""
    producers = {out: node for node in model.graph.node for out in node.output}
    outputs = {o.name for o in model.graph.output}
    float_of = {}
    for node in model.graph.node:
        q = producers.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if q is not None and q.op_type == "QuantizeLinear" and node.output[0] not in outputs:
            float_of[node.output[0]] = q.input[0]
    for node in model.graph.node:
        if node.op_type in quantized_ops or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for i, name in enumerate(node.input):
            if name in float_of:
                node.input[i] = float_of[name]
    _drop_unread_qdq(model)


def _names_read(graph: onnx.GraphProto) -> set[str]:
    """Every value name read by a node of `graph` or of its subgraphs (If/Loop/Scan bodies), or output by it."""
    read = {o.name for o in graph.output}
    for node in graph.node:
        read.update(node.input)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                read |= _names_read(sub)
    return read


def _drop_unread_qdq(model: onnx.ModelProto) -> None:
    """Remove DequantizeLinear, then QuantizeLinear nodes nobody reads any more, and their scales and zero
    points."""
    freed: set[str] = set()
    for op in ("DequantizeLinear", "QuantizeLinear"):
        read = _names_read(model.graph)
        for node in [n for n in model.graph.node if n.op_type == op and n.output[0] not in read]:
            freed.update(node.input[1:])
            model.graph.node.remove(node)
    read = _names_read(model.graph) | {i.name for i in model.graph.input}
    for init in [i for i in model.graph.initializer if i.name in freed and i.name not in read]:
        model.graph.initializer.remove(init)


def _calibration_notes(feeds: list[dict[str, np.ndarray]]) -> list[str]:
    n = sum(len(next(iter(f.values()))) for f in feeds)
    if n >= FEW_CALIB_SAMPLES:
        return []
    return [f"static-int8: calibrated on only {n} samples; activation ranges from so few inputs may clip "
            f"typical data (give {FEW_CALIB_SAMPLES} or more calibration samples)"]
