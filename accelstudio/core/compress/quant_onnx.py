"""Quantization of ONNX models with onnxruntime.quantization (file based: it works in a temporary folder, with a
private temporary working directory, since ONNX Runtime's pre-processing writes into the working directory).

Modes: dynamic-int8 (ConvInteger / MatMulInteger), static-int8 (QDQ, calibrated; see quant_onnx_static),
fp16 (float16 initializers, float32 inputs and outputs), weight-int8/int4 (MatMulNBits on MatMul layers; Gemm
layers are first rewritten as MatMul + Add), sim (fake quantization). bf16 is refused: ONNX Runtime's CPU
provider has no bf16 kernels for Conv/Gemm/MatMul. Notes for the user are kept in the model's metadata_props
('accelstudio.quant_notes').
"""

from __future__ import annotations

import copy
import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from accelstudio.core.errors import CompressionError, RecipeError
from accelstudio.core.model.onnx_layers import weighted_nodes
from accelstudio.core.compress.quant_onnx_files import (
    named_copy, ort_quant_type, prepared_copy, private_working_directory, quiet_ort, load_result,
)
from accelstudio.core.compress.quant_sim import add_onnx_note, check_exclude, simulate_quantization_onnx
from accelstudio.core.quant_modes import quant_mode
from accelstudio.core.recipe import QuantSpec

# Convolutions are left out of dynamic quantization: ONNX Runtime's ConvInteger is several times slower than
# its fp32 convolution on common CPUs (measured 5-6x on digits-resnet), so static-int8 is the way to int8 convs.
DYNAMIC_OP_TYPES = ["MatMul", "Gemm", "Attention", "LSTM"]
WEIGHT_ONLY_BLOCK = 32


def quantize_onnx(model: onnx.ModelProto, spec: QuantSpec, calib: dict[str, np.ndarray] | None) -> onnx.ModelProto:
    """A quantized copy of `model` as `spec.mode` says; `model` is never modified.

    calib maps input names to calibration arrays (static-int8 only; a single array under any key serves a
    single-input model). Raises RecipeError for unknown excluded layers and CompressionError when this model or
    this runtime cannot be quantized that way (the message suggests an alternative).
    """
    excluded = check_exclude(spec.exclude, [layer.name for layer in weighted_nodes(model)])
    with private_working_directory():
        return _quantize(model, spec, excluded, calib)


def _quantize(model: onnx.ModelProto, spec: QuantSpec, excluded: set[str], calib) -> onnx.ModelProto:
    step = ONNX_STEPS.get(spec.mode)
    if step is None:
        raise RecipeError("quantize.mode", f"mode '{spec.mode}' is not available for ONNX models")
    return step(model, spec, excluded, calib)


def _refuse_bf16(model: onnx.ModelProto, spec: QuantSpec, excluded: set[str], calib) -> onnx.ModelProto:
    raise CompressionError("bf16: ONNX Runtime's CPU provider has no bf16 kernels for Conv, Gemm or MatMul, "
                           "so a bf16 graph cannot run here; choose fp16 for ONNX models or bf16 on the torch "
                           "backend")


def _static_int8(model: onnx.ModelProto, spec: QuantSpec, excluded: set[str], calib) -> onnx.ModelProto:
    from accelstudio.core.compress.quant_onnx_static import static_int8  # imports onnxruntime.quantization at once

    return static_int8(model, spec, excluded, calib)


# ------------------------------------------------------------------------------------------------ helpers

def _note_unquantized_convs(model: onnx.ModelProto, excluded: set[str], mode: str) -> None:
    convs = [layer.name for layer in weighted_nodes(model)
             if layer.node.op_type in ("Conv", "ConvTranspose") and layer.name not in excluded]
    if convs:
        why = ("ONNX Runtime's dynamic int8 convolution is slower than fp32 on CPUs; "
               if mode == "dynamic-int8" else "")
        add_onnx_note(model, f"{mode}: convolution layers stay float32 ({', '.join(convs)}); "
                             f"{why}use static-int8 to quantize them")


# ------------------------------------------------------------------------------------------------ int8

def _dynamic_int8(model: onnx.ModelProto, spec: QuantSpec, excluded: set[str]) -> onnx.ModelProto:
    """Weights stored as int8, activations quantized at run time (MatMulInteger); embedding tables (Gather on a
    stored matrix) are stored as 8-bit too and dequantized after the lookup, as ONNX Runtime's own default does,
    unless the recipe keeps that layer in float."""
    from onnxruntime.quantization import quantize_dynamic

    op_types = [*DYNAMIC_OP_TYPES, "Gather"]

    with tempfile.TemporaryDirectory(prefix="accelstudio-quant-") as tmp:
        # Gemm layers become MatMul (+ Add) here, keeping node and weight names, so that exclusions and layer
        # names survive; onnxruntime's own rewrite would rename both.
        src, skip, large = prepared_copy(model, Path(tmp), excluded, lambda m: gemm_to_matmul(m, set())[0])
        out = Path(tmp) / "quantized.onnx"
        try:
            with quiet_ort():
                quantize_dynamic(str(src), str(out), op_types_to_quantize=op_types,
                                 per_channel=spec.per_channel, weight_type=ort_quant_type(spec.weight_type),
                                 nodes_to_exclude=skip,
                                 use_external_data_format=large)
        except Exception as exc:
            raise CompressionError(f"ONNX Runtime dynamic int8 quantization failed on this model: "
                                   f"{type(exc).__name__}: {exc}") from None
        result = load_result(out)
    _note_unquantized_convs(result, excluded, spec.mode)
    return result


# ------------------------------------------------------------------------------------------------ fp16

def _fp16(model: onnx.ModelProto, excluded: set[str]) -> onnx.ModelProto:
    """float16 weights and compute; inputs and outputs stay float32 (Cast nodes at the edges)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    work, skip = named_copy(model, excluded)
    try:
        with quiet_ort():
            result = convert_float_to_float16(work, keep_io_types=True, node_block_list=skip or None)
    except Exception as exc:
        raise CompressionError(f"fp16 conversion failed on this model: {type(exc).__name__}: {exc}") from None
    return result


# ------------------------------------------------------------------------------------------ weight-only

def gemm_to_matmul(model: onnx.ModelProto, skip_nodes: set[str]) -> tuple[onnx.ModelProto, int]:
    """A copy where each Gemm with a constant 2-D weight (alpha=beta=1, transA=0) is MatMul (+ Add of the bias).

    The weight keeps its initializer name (stored as [in, out]) so layer names do not change. Returns the model
    and how many Gemm nodes were rewritten.
    """
    out = copy.deepcopy(model)
    inits = {init.name: init for init in out.graph.initializer}
    users: dict[str, int] = {v.name: 1 for v in (*out.graph.input, *out.graph.output)}  # a visible weight stays
    for node in out.graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1
    nodes, rewritten, transposed = [], 0, set()
    for node in out.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ok = (node.op_type == "Gemm" and node.name not in skip_nodes and len(node.input) >= 2
              and node.input[1] in inits and users.get(node.input[1]) == 1 and not attrs.get("transA", 0)
              and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
              and inits[node.input[1]].data_type == onnx.TensorProto.FLOAT and len(inits[node.input[1]].dims) == 2)
        if not ok:
            nodes.append(node)
            continue
        weight = inits[node.input[1]]
        if attrs.get("transB", 0):
            arr = numpy_helper.to_array(weight)
            weight.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr.T), weight.name))
            transposed.add(weight.name)
        has_bias = len(node.input) > 2 and node.input[2]
        mm_out = node.output[0] + "_matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], node.input[1]], [mm_out], name=node.name))
        if has_bias:
            nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]],
                                          name=node.name + "_bias"))
        rewritten += 1
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    stale = [vi for vi in out.graph.value_info if vi.name in transposed]
    for vi in stale:  # shapes recorded for weights now stored transposed
        out.graph.value_info.remove(vi)
    return out, rewritten


def _matmul_nbits_quantizer():
    """Import MatMulNBitsQuantizer without letting its module-level logging.basicConfig(INFO) configure the app."""
    with quiet_ort():
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    return MatMulNBitsQuantizer


def _weight_only(model: onnx.ModelProto, spec: QuantSpec, excluded: set[str]) -> onnx.ModelProto:
    """MatMulNBits (int4 or int8 blocks of 32 along the input dimension) on every non-excluded MatMul layer."""
    bits = quant_mode(spec.mode).bits
    named, skip_list = named_copy(model, excluded)
    skip = set(skip_list)
    work, _ = gemm_to_matmul(named, skip)
    quantizer_cls = _matmul_nbits_quantizer()
    logger = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        quantizer = quantizer_cls(work, bits=bits, block_size=WEIGHT_ONLY_BLOCK, is_symmetric=spec.symmetric,
                                  nodes_to_exclude=sorted(skip), op_types_to_quantize=("MatMul",))
        with quiet_ort():
            quantizer.process()
        result = quantizer.model.model
    except Exception as exc:
        raise CompressionError(f"ONNX Runtime weight-only int{bits} quantization failed on this model: "
                               f"{type(exc).__name__}: {exc}") from None
    finally:
        logger.setLevel(level)
    quantized = sum(1 for n in result.graph.node if n.op_type == "MatMulNBits")
    add_onnx_note(result, f"{spec.mode}: {quantized} MatMul/Gemm layer(s) store int{bits} weights in blocks of "
                          f"{WEIGHT_ONLY_BLOCK} (MatMulNBits)")
    _note_unquantized_convs(result, excluded, spec.mode)
    return result


# mode name -> step(model, spec, excluded layer names, calibration inputs); every mode of
# accelstudio.core.quant_modes has one (a test checks), its facts (bits, ...) read from the table
ONNX_STEPS = {
    "none": lambda model, spec, excluded, calib: copy.deepcopy(model),
    "sim": lambda model, spec, excluded, calib: simulate_quantization_onnx(model, spec),
    "bf16": _refuse_bf16,
    "fp16": lambda model, spec, excluded, calib: _fp16(model, excluded),
    "dynamic-int8": lambda model, spec, excluded, calib: _dynamic_int8(model, spec, excluded),
    "static-int8": _static_int8,
    "weight-int8": lambda model, spec, excluded, calib: _weight_only(model, spec, excluded),
}
ONNX_STEPS["weight-int4"] = ONNX_STEPS["weight-int8"]
