"""Quantization of torch modules: dynamic and static int8 (torch.ao), fp16/bf16, weight-only int8/int4, simulation.

Every function returns a new module and leaves its input untouched. Layer names (qualified module names) are kept,
so a quantized module's layers line up with the original's. Lines the user should read (layers left in float,
overflow, ...) are kept in the returned module's `_accelstudio_notes` list.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from accelstudio.core.errors import CompressionError, RecipeError
from accelstudio.core.compress.quant_sim import (add_torch_note, check_exclude, simulate_quantization_torch,
                                        torch_layer_names)
from accelstudio.core.compress.quant_weight_only import weight_only_layer
from accelstudio.core.quant_modes import quant_mode
from accelstudio.core.recipe import QuantSpec

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
CALIB_BATCH = 32


@contextlib.contextmanager
def _quiet_torch_ao():
    """torch.ao.quantization still works in this torch but warns on every call that it is deprecated."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao.*")
        yield


def quantize_torch(module: nn.Module, spec: QuantSpec, calib: dict[str, np.ndarray] | None,
                   example_inputs: tuple[torch.Tensor, ...]) -> nn.Module:
    """A quantized copy of `module` as `spec.mode` says; `module` is never modified.

    calib holds calibration inputs (static-int8 only); example_inputs are used to trace and to check the result
    runs. Raises RecipeError for settings this backend cannot honour and CompressionError when the model cannot
    be quantized this way (the message suggests the alternative).
    """
    excluded = check_exclude(spec.exclude, torch_layer_names(module))
    step = TORCH_STEPS.get(spec.mode)
    if step is None:
        raise RecipeError("quantize.mode", f"mode '{spec.mode}' is not available for torch models")
    return step(module, spec, excluded, calib, example_inputs)


def _require_qint8_weights(spec: QuantSpec) -> None:
    if spec.weight_type != "qint8":
        raise RecipeError("quantize.weight_type",
                          f"torch {spec.mode} stores weights as qint8 only; choose weight_type 'qint8' "
                          "or use the ONNX Runtime backend for quint8 weights")


def _conv_note(model: nn.Module, excluded: set[str], mode: str) -> None:
    convs = [n for n, m in model.named_modules() if isinstance(m, CONV_TYPES) and n not in excluded]
    if convs:
        add_torch_note(model, f"{mode}: convolution layers stay float32 in torch ({', '.join(convs)}); "
                              "use static-int8 or the ONNX Runtime backend (ConvInteger) to quantize them")


# ------------------------------------------------------------------------------------------------ dynamic

def _dynamic_int8(module: nn.Module, spec: QuantSpec, excluded: set[str]) -> nn.Module:
    """nn.Linear layers to DynamicQuantizedLinear (int8 weights, activations quantized per call)."""
    _require_qint8_weights(spec)
    import torch.ao.quantization as tq

    with _quiet_torch_ao():
        qconfig = tq.per_channel_dynamic_qconfig if spec.per_channel else tq.default_dynamic_qconfig
        targets = {n: qconfig for n, m in module.named_modules() if isinstance(m, nn.Linear) and n not in excluded}
        model = copy.deepcopy(module)
        if targets:
            model = tq.quantize_dynamic(model, targets, dtype=torch.qint8, inplace=False)
    if not targets:
        add_torch_note(model, "dynamic-int8: no nn.Linear layer to quantize; the model is unchanged")
    _conv_note(model, excluded, "dynamic-int8")
    return model


# ------------------------------------------------------------------------------------------------- static

def _calibration_batches(calib: dict[str, np.ndarray] | None, samples: int) -> list[torch.Tensor]:
    if not calib:
        raise CompressionError("static int8 needs calibration data: give calibration inputs (for the examples "
                               "their calib.npz) or choose dynamic-int8")
    arr = calib["x"] if "x" in calib else next(iter(calib.values()))
    arr = np.asarray(arr, dtype=np.float32)[:samples]
    if arr.shape[0] == 0:
        raise CompressionError("static int8 needs calibration data: the calibration array is empty")
    return [torch.from_numpy(arr[i:i + CALIB_BATCH]) for i in range(0, arr.shape[0], CALIB_BATCH)]


def _percentile_observer():
    """An activation observer that tracks the 0.01st and 99.99th percentiles instead of min and max."""
    from torch.ao.quantization.observer import MinMaxObserver

    class PercentileObserver(MinMaxObserver):
        """MinMaxObserver whose range is the widest per-batch 0.01st..99.99th percentile seen."""

        def forward(self, x_orig):
            if x_orig.numel() == 0:
                return x_orig
            x = x_orig.detach().float().flatten()
            if x.numel() > 1 << 24:  # torch.quantile's input limit: subsample evenly
                x = x[:: x.numel() // (1 << 23) + 1]
            lo, hi = torch.quantile(x, torch.tensor([1e-4, 1 - 1e-4], dtype=x.dtype))
            self.min_val.copy_(torch.minimum(self.min_val, lo))
            self.max_val.copy_(torch.maximum(self.max_val, hi))
            return x_orig

    return PercentileObserver


# Module types that mark an attention model: static int8 there quantizes only Linear and Conv layers, as the
# ONNX path does; quantizing LayerNorm, softmax, GELU, residual adds and embeddings loses too much.
ATTENTION_MODULES = (nn.LayerNorm, nn.GELU, nn.Embedding, nn.EmbeddingBag, nn.MultiheadAttention)
WEIGHTED_TYPES = (nn.Linear,) + CONV_TYPES[:3]


def is_attention_module(module: nn.Module) -> bool:
    """Whether `module` holds attention-model parts (LayerNorm, GELU, embeddings, multi-head attention)."""
    return any(isinstance(m, ATTENTION_MODULES) for m in module.modules())


def _static_qconfig_mapping(spec: QuantSpec, excluded: set[str], attention: bool):
    import torch.ao.quantization as tq
    from torch.ao.quantization import observer as obs

    engine = torch.backends.quantized.engine
    engine = engine if engine in ("x86", "fbgemm", "qnnpack", "onednn") else "x86"
    reduce_range = engine in ("x86", "fbgemm")  # avoids int16 overflow in AVX2 kernels (no VNNI)
    activation = {
        "minmax": obs.MinMaxObserver.with_args(reduce_range=reduce_range),
        "entropy": obs.HistogramObserver.with_args(reduce_range=reduce_range),
        "percentile": _percentile_observer().with_args(reduce_range=reduce_range),
    }[spec.calibration]
    per_channel = spec.per_channel or attention
    weight = obs.default_per_channel_weight_observer if per_channel else obs.default_weight_observer
    qconfig = tq.QConfig(activation=activation, weight=weight)
    if attention:
        mapping = tq.QConfigMapping()
        for kind in WEIGHTED_TYPES:
            mapping = mapping.set_object_type(kind, qconfig)
    else:
        mapping = tq.get_default_qconfig_mapping(engine).set_global(qconfig)
    for name in excluded:
        mapping = mapping.set_module_name(name, None)
    return mapping


def _static_int8(module: nn.Module, spec: QuantSpec, excluded: set[str], calib, example_inputs) -> nn.Module:
    """FX graph mode post-training static quantization, calibrated on `spec.calib_samples` inputs."""
    _require_qint8_weights(spec)
    batches = _calibration_batches(calib, spec.calib_samples)
    from torch.ao.quantization import quantize_fx

    attention = is_attention_module(module)
    with _quiet_torch_ao():
        mapping = _static_qconfig_mapping(spec, excluded, attention)
        model = copy.deepcopy(module).eval()
        try:
            prepared = quantize_fx.prepare_fx(model, mapping, example_inputs)
        except Exception as exc:
            raise CompressionError(
                f"torch FX static quantization cannot trace this model ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); export it to ONNX and use the ONNX Runtime "
                "backend for static int8, or choose dynamic-int8") from None
        with torch.no_grad():
            for batch in batches:
                try:
                    prepared(batch)
                except Exception as exc:
                    raise CompressionError(f"calibration data of shape {tuple(batch.shape)} does not fit the "
                                           f"model: {type(exc).__name__}: {exc}") from None
        converted = quantize_fx.convert_fx(prepared)
        _check_runs(converted, example_inputs, "static-int8")
    if spec.calibration == "entropy":
        add_torch_note(converted, "static-int8: torch calibrates 'entropy' with its histogram observer "
                                  "(minimizes quantization error of the histogram)")
    if attention:
        add_torch_note(converted, "static-int8 (attention model): only Linear and Conv layers quantized, with "
                                  "per-channel weights; LayerNorm, softmax, GELU, residual adds and embeddings "
                                  "stay float32 (quantizing them destroys attention models)")
    return converted


def _check_runs(model: nn.Module, example_inputs, mode: str) -> Any:
    try:
        with torch.no_grad():
            return model(*example_inputs)
    except Exception as exc:
        raise CompressionError(f"the {mode} model does not run on this CPU with torch {torch.__version__}: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                               "try the ONNX Runtime backend") from None


# ------------------------------------------------------------------------------------------ fp16 / bf16

def _cast_tree(value: Any, dtype: torch.dtype) -> Any:
    """`value` with every floating-point tensor in it (also inside tuples, lists, dicts) cast to `dtype`."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        cast = [_cast_tree(v, dtype) for v in value]
        return type(value)(cast) if not hasattr(value, "_fields") else type(value)(*cast)
    if isinstance(value, dict):
        return {k: _cast_tree(v, dtype) for k, v in value.items()}
    return value


def _cast_inputs_hook(dtype: torch.dtype, module: nn.Module, args: tuple, kwargs: dict):
    return _cast_tree(args, dtype), _cast_tree(kwargs, dtype)


def _cast_output_hook(dtype: torch.dtype, module: nn.Module, args: tuple, output: Any):
    return _cast_tree(output, dtype)


def _low_precision(module: nn.Module, dtype: torch.dtype, excluded: set[str], example_inputs) -> nn.Module:
    """Parameters in fp16/bf16 except excluded layers; hooks cast at the model's edges and around excluded layers.

    Hooks (rather than a wrapper module) keep the state_dict keys and layer names of the original model.
    """
    label = "fp16" if dtype == torch.float16 else "bf16"
    model = copy.deepcopy(module)
    for name, sub in model.named_modules():
        if any(name == e or name.startswith(e + ".") for e in excluded):
            continue
        for pname, param in sub.named_parameters(recurse=False):
            if param.is_floating_point():
                param.data = param.data.to(dtype)
        for bname, buf in list(sub.named_buffers(recurse=False)):
            if buf is not None and buf.is_floating_point():
                sub._buffers[bname] = buf.to(dtype)
    model.register_forward_pre_hook(functools.partial(_cast_inputs_hook, dtype), with_kwargs=True)
    model.register_forward_hook(functools.partial(_cast_output_hook, torch.float32))
    for name in excluded:
        sub = model.get_submodule(name)
        sub.register_forward_pre_hook(functools.partial(_cast_inputs_hook, torch.float32), with_kwargs=True)
        sub.register_forward_hook(functools.partial(_cast_output_hook, dtype))
    try:
        with torch.no_grad():
            out = model(*example_inputs)
    except (RuntimeError, NotImplementedError) as exc:
        alt = "bf16 or the ONNX Runtime fp16 path" if label == "fp16" else "fp16 or dynamic-int8"
        raise CompressionError(f"{label} inference is not supported on this CPU for an operator of this model "
                               f"(torch {torch.__version__}: {str(exc).splitlines()[0]}); try {alt}") from None
    flat = [t for t in _flatten(out) if t.is_floating_point()]
    if any(not torch.isfinite(t).all() for t in flat):
        add_torch_note(model, f"{label}: the outputs for the example input contain inf/NaN (overflow); "
                              "exclude the overflowing layers or use bf16")
    add_torch_note(model, f"{label}: weights and compute in {label}; inputs and outputs stay float32"
                   + (f"; float32 layers: {', '.join(sorted(excluded))}" if excluded else ""))
    return model


def _flatten(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    return []


# -------------------------------------------------------------------------------------------- weight-only

def _weight_only(module: nn.Module, spec: QuantSpec, excluded: set[str]) -> nn.Module:
    """Linear and Conv2d layers replaced by WeightOnlyLinear / WeightOnlyConv2d (int8 per channel, int4 grouped)."""
    bits = quant_mode(spec.mode).bits
    model = copy.deepcopy(module)
    skipped = []
    replaced = 0
    for name, sub in list(model.named_modules()):
        if not name or name in excluded or not isinstance(sub, (nn.Linear,) + CONV_TYPES):
            continue
        new = weight_only_layer(sub, bits, spec.per_channel, spec.symmetric)
        if new is None:
            skipped.append(name)
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
        replaced += 1
    if skipped:
        add_torch_note(model, f"{spec.mode}: layers kept float32 (only Linear and zero-padded Conv2d are "
                              f"supported): {', '.join(skipped)}")
    add_torch_note(model, f"{spec.mode}: {replaced} layer(s) store int{bits} weights, dequantized in forward "
                          "(smaller in memory, not faster)")
    return model


HALF_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
# mode name -> step(module, spec, excluded layer names, calibration inputs, example inputs); every mode of
# accelstudio.core.quant_modes has one (a test checks), its facts (bits, half, ...) read from the table
TORCH_STEPS = {
    "none": lambda module, spec, excluded, calib, inputs: copy.deepcopy(module),
    "sim": lambda module, spec, excluded, calib, inputs: simulate_quantization_torch(module, spec),
    "dynamic-int8": lambda module, spec, excluded, calib, inputs: _dynamic_int8(module, spec, excluded),
    "static-int8": _static_int8,
    "fp16": lambda module, spec, excluded, calib, inputs: _low_precision(module, HALF_DTYPES[spec.mode], excluded,
                                                                         inputs),
    "weight-int8": lambda module, spec, excluded, calib, inputs: _weight_only(module, spec, excluded),
}
TORCH_STEPS["bf16"] = TORCH_STEPS["fp16"]
TORCH_STEPS["weight-int4"] = TORCH_STEPS["weight-int8"]
