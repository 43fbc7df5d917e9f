"""Simulated (fake) quantization and the helpers every quantization backend shares.

Fake quantization rounds each weight to one of the levels a `bits`-wide integer grid can hold and stores the
result back in float32, so any bit width from 2 to 8 can be tried on any runtime and its effect on accuracy seen
without integer kernels. Symmetric grids use the codes [-2^(b-1)+1, 2^(b-1)-1] times a scale (zero is exact and
the grid is balanced); asymmetric grids use [0, 2^b-1] with a zero point so that the range [min, max] (widened to
include 0) is covered.
"""

from __future__ import annotations

import copy
import json
from typing import Iterable

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from accelstudio.core.errors import RecipeError
from accelstudio.core.model.onnx_layers import weighted_nodes
from accelstudio.core.quant_modes import integer_range
from accelstudio.core.recipe import QuantSpec

NOTES_ATTR = "_accelstudio_notes"
NOTES_METADATA_KEY = "accelstudio.quant_notes"
TORCH_WEIGHTED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
                        nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
ONNX_WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


# ---------------------------------------------------------------------------------------------------- the grid

def quantize_rows(rows: np.ndarray, bits: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantize each row of a 2-D array on its own grid: (integer codes as float64, scale, zero point), (R,1) each."""
    qmin, qmax = integer_range(bits, symmetric)
    rows = np.asarray(rows, dtype=np.float64)
    if symmetric:
        scale = np.abs(rows).max(axis=1, keepdims=True) / qmax
        scale = np.where(scale > 0, scale, 1.0)
        zero = np.zeros_like(scale)
    else:
        lo = np.minimum(rows.min(axis=1, keepdims=True), 0.0)
        hi = np.maximum(rows.max(axis=1, keepdims=True), 0.0)
        scale = (hi - lo) / (qmax - qmin)
        scale = np.where(scale > 0, scale, 1.0)
        zero = np.clip(np.round(qmin - lo / scale), qmin, qmax)
    codes = np.clip(np.round(rows / scale) + zero, qmin, qmax)
    return codes, scale, zero


def _as_rows(w: np.ndarray, per_channel: bool, axis: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """`w` as 2-D rows (one per channel along `axis`, or one row for the whole tensor) and the moved shape."""
    moved = np.moveaxis(w, axis, 0) if w.ndim > 0 else w.reshape(1)
    rows = moved.reshape(moved.shape[0], -1) if per_channel and moved.ndim > 0 else moved.reshape(1, -1)
    return rows, moved.shape


def fake_quantize_tensor(w: np.ndarray | torch.Tensor, bits: int, per_channel: bool, symmetric: bool,
                         axis: int = 0) -> np.ndarray | torch.Tensor:
    """`w` rounded to a `bits`-wide integer grid (per channel along `axis`, or per tensor), kept in float32.

    Returns the same kind of object it was given (a numpy array or a torch tensor on the same device).
    """
    is_torch = isinstance(w, torch.Tensor)
    arr = w.detach().cpu().numpy() if is_torch else np.asarray(w)
    if arr.size == 0:
        return w.clone() if is_torch else arr.astype(np.float32)
    axis = axis % arr.ndim if arr.ndim else 0
    rows, moved_shape = _as_rows(arr, per_channel, axis)
    codes, scale, zero = quantize_rows(rows, bits, symmetric)
    out = ((codes - zero) * scale).astype(np.float32).reshape(moved_shape)
    out = np.moveaxis(out, 0, axis) if arr.ndim > 0 else out.reshape(arr.shape)
    if is_torch:
        return torch.from_numpy(np.ascontiguousarray(out)).to(device=w.device)
    return out


def quantization_grid(w: np.ndarray | torch.Tensor, bits: int, per_channel: bool, symmetric: bool,
                      axis: int = 0) -> np.ndarray:
    """The float values of the grid levels `w` would be rounded to, ascending (for drawing over a histogram).

    Per tensor: the tensor's grid. Per channel: the grid of the channel (along `axis`) with the widest range.
    """
    arr = w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else np.asarray(w)
    qmin, qmax = integer_range(bits, symmetric)
    if arr.size == 0:
        return np.zeros(0, dtype=np.float32)
    rows, _ = _as_rows(arr, per_channel, axis % arr.ndim if arr.ndim else 0)
    rows = rows.astype(np.float64)
    spread = rows.max(axis=1) - rows.min(axis=1)
    if symmetric:
        spread = np.abs(rows).max(axis=1)
    widest = rows[int(np.argmax(spread))][None, :]
    _, scale, zero = quantize_rows(widest, bits, symmetric)
    levels = (np.arange(qmin, qmax + 1, dtype=np.float64) - zero[0, 0]) * scale[0, 0]
    return levels.astype(np.float32)


# ------------------------------------------------------------------------------------------- shared helpers

def check_exclude(exclude: Iterable[str], known: Iterable[str]) -> set[str]:
    """The excluded layer names as a set; RecipeError('quantize.exclude') lists the real names if one is unknown."""
    known = list(known)
    excluded = set(exclude)
    unknown = sorted(excluded - set(known))
    if unknown:
        raise RecipeError("quantize.exclude",
                          f"unknown layer(s) {unknown}; this model's layers are: {', '.join(known) or '(none)'}")
    return excluded


def torch_layer_names(module: nn.Module) -> list[str]:
    """Qualified names of the submodules that own a weight parameter (the layer names recipes use)."""
    return [name for name, sub in module.named_modules()
            if name and isinstance(getattr(sub, "weight", None), torch.Tensor)
            and "weight" in dict(sub.named_parameters(recurse=False))]


def add_torch_note(module: nn.Module, note: str) -> None:
    """Record a line the pipeline shows the user about what quantization did (or could not do)."""
    notes = list(getattr(module, NOTES_ATTR, []))
    if note not in notes:
        notes.append(note)
    setattr(module, NOTES_ATTR, notes)


def add_onnx_note(model: onnx.ModelProto, note: str) -> None:
    """Record a note in the model's metadata_props (key 'accelstudio.quant_notes', a JSON list)."""
    notes = quantization_notes(model)
    if note in notes:
        return
    notes.append(note)
    for prop in model.metadata_props:
        if prop.key == NOTES_METADATA_KEY:
            prop.value = json.dumps(notes)
            return
    model.metadata_props.add(key=NOTES_METADATA_KEY, value=json.dumps(notes))


def quantization_notes(model: nn.Module | onnx.ModelProto) -> list[str]:
    """The notes quantization left on a torch module or an ONNX model (empty when there are none)."""
    if isinstance(model, onnx.ModelProto):
        for prop in model.metadata_props:
            if prop.key == NOTES_METADATA_KEY:
                try:
                    return list(json.loads(prop.value))
                except ValueError:
                    return [prop.value]
        return []
    return list(getattr(model, NOTES_ATTR, []))


# ----------------------------------------------------------------------------------------------- simulation

def torch_out_axis(sub: nn.Module) -> int:
    """The output-channel axis of a layer's weight (1 for transposed convolutions, else 0)."""
    return 1 if isinstance(sub, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0


def simulate_quantization_torch(module: nn.Module, spec: QuantSpec) -> nn.Module:
    """A copy of `module` whose Linear/Conv weights are fake-quantized to `spec.bits`, except excluded layers."""
    excluded = check_exclude(spec.exclude, torch_layer_names(module))
    model = copy.deepcopy(module)
    count = 0
    with torch.no_grad():
        for name, sub in model.named_modules():
            if name in excluded or not isinstance(sub, TORCH_WEIGHTED_TYPES):
                continue
            sub.weight.copy_(fake_quantize_tensor(sub.weight.float(), spec.bits, spec.per_channel,
                                                  spec.symmetric, axis=torch_out_axis(sub)).to(sub.weight.dtype))
            count += 1
    add_torch_note(model, f"simulated {spec.bits}-bit weights on {count} layer(s); storage stays float32")
    return model


def onnx_out_axis(node: onnx.NodeProto, ndim: int) -> int:
    """The output-channel axis of a node's weight initializer."""
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if node.op_type == "MatMul":
        return ndim - 1
    return 0


def simulate_quantization_onnx(model: onnx.ModelProto, spec: QuantSpec) -> onnx.ModelProto:
    """A copy of `model` whose Conv/Gemm/MatMul weight initializers are fake-quantized, except excluded layers."""
    layers = weighted_nodes(model)
    excluded = check_exclude(spec.exclude, [layer.name for layer in layers])
    out = copy.deepcopy(model)
    inits = {init.name: init for init in out.graph.initializer}
    done: set[str] = set()
    skipped = []
    for layer in layers:
        if layer.name in excluded or layer.node.op_type not in ONNX_WEIGHTED_OPS or layer.weight_name in done:
            continue
        init = inits.get(layer.weight_name)
        if init is None or init.data_type != onnx.TensorProto.FLOAT:
            skipped.append(layer.name)
            continue
        arr = numpy_helper.to_array(init)
        fake = fake_quantize_tensor(arr, spec.bits, spec.per_channel, spec.symmetric,
                                    axis=onnx_out_axis(layer.node, arr.ndim))
        init.CopyFrom(numpy_helper.from_array(fake, init.name))
        done.add(layer.weight_name)
    add_onnx_note(out, f"simulated {spec.bits}-bit weights on {len(done)} layer(s); storage stays float32")
    if skipped:
        add_onnx_note(out, f"not simulated (weight is not a float32 initializer): {', '.join(skipped)}")
    return out
