"""Layer inspection for torch modules: weighted modules, their storage and FLOPs from FlopCounterMode.

A layer is any module that owns a parameter whose name ends in `weight` (Conv*, Linear, Embedding, norms,
MultiheadAttention's in_proj, ...) or a quantized module whose packed weight is read with `module.weight()`.
Pruning reparametrizations (`weight_orig` + mask, torch.nn.utils.parametrize) are read through the module's
effective weight, so zeros planted by pruning are counted.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from accelstudio.core.model.summary import LayerStats, add_bytes, make_layer
from accelstudio.core.model.handle import InputSpec


@dataclass(frozen=True)
class _TorchLayer:
    """A weighted module: its effective weight and bias tensors and the storage behind them.

    `params` and `bytes_by_dtype` count only the tensors no earlier layer owns (`shared_with` names the owner of
    a tied weight); `bytes_by_dtype` also holds a normalization's running statistics (stored, not parameters)."""

    name: str
    module: nn.Module
    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]
    params: int
    bytes_by_dtype: dict[str, int]
    quantized: bool  # packed torch.ao weights: FLOPs come from hooks (the counter cannot see their kernels)
    shared_with: str = ""
    dtype: str = ""  # storage type when the weight tensor is not it (weight-only int4 codes in uint8)


STATISTICS_BUFFERS = ("running_mean", "running_var")


def inspect_torch(module: nn.Module, inputs: tuple[InputSpec, ...]):
    """(layers, (total_params, total_bytes, total_flops, other_params, other_bytes), warnings) at `inputs`.

    Totals are the layers' sums plus the parameters of no weighted layer; a tied parameter counts once."""
    owners: dict[int, str] = {}
    layers = list(find_layers(module, owners))
    per_module, total_flops, notes = count_flops(module, inputs, layers)
    stats = [_layer_stats(layer, per_module.get(layer.name, 0)) for layer in layers]
    other_params, other_bytes = _unowned(module, owners)
    total_params = sum(layer.params for layer in stats) + other_params
    total_bytes = sum(layer.bytes for layer in stats) + other_bytes
    return stats, (total_params, total_bytes, total_flops, other_params, other_bytes), notes


def find_layers(module: nn.Module, owners: dict[int, str] | None = None):
    """Yield a _TorchLayer for every module with a weight, in module order; `owners` collects which layer
    owns each parameter (by identity), so a parameter shared by two modules counts in the first only."""
    owners = {} if owners is None else owners
    for name, mod in module.named_modules():
        if "parametrizations" in name.split("."):
            continue  # the originals behind a parametrized weight belong to the parent module
        layer = _layer_of(name, mod, owners)
        if layer is not None:
            yield layer


def _layer_of(name: str, mod: nn.Module, owners: dict[int, str] | None = None) -> _TorchLayer | None:
    owners = {} if owners is None else owners
    if _is_packed_quantized(mod):
        return _quantized_layer(name, mod)
    if _is_weight_only(mod):
        return _weight_only_layer(name, mod, owners)
    entries = _float_tensors(mod)
    weights = [(t, p) for key, t, p in entries if key.endswith("weight")]
    if not weights:
        return None
    biases = [(t, p) for key, t, p in entries if not key.endswith("weight")]
    first = weights[0][1][0] if weights[0][1] else None
    shared_with = owners.get(id(first), "") if first is not None else ""
    stored: dict[str, int] = {}
    params = 0
    for _, originals in weights + biases:
        for p in originals:
            if id(p) in owners:
                continue
            owners[id(p)] = name
            params += p.numel()
            add_bytes(stored, _dtype_name(p), p.numel() * p.element_size())
    for key in STATISTICS_BUFFERS:
        buffer = getattr(mod, key, None)
        if isinstance(buffer, torch.Tensor) and buffer.is_floating_point():
            add_bytes(stored, _dtype_name(buffer), buffer.numel() * buffer.element_size())
    return _TorchLayer(name, mod, tuple(t for t, _ in weights), tuple(t for t, _ in biases), params, stored,
                       False, shared_with)


def _is_weight_only(mod: nn.Module) -> bool:
    """AccelStudio's weight-only int8/int4 modules: integer codes in a `qweight` buffer, dequantized on the fly."""
    return isinstance(getattr(mod, "qweight", None), torch.Tensor) and callable(getattr(mod, "dequantized_weight", None))


def _weight_only_layer(name: str, mod: nn.Module, owners: dict[int, str]) -> _TorchLayer:
    stored: dict[str, int] = {}
    for key in ("qweight", "scale", "zero"):
        t = getattr(mod, key, None)
        if isinstance(t, torch.Tensor):
            add_bytes(stored, _dtype_name(t), t.numel() * t.element_size())
    weight = mod.dequantized_weight().detach()
    params = weight.numel()
    bias = getattr(mod, "bias", None)
    biases = ()
    if isinstance(bias, torch.Tensor):
        biases = (bias.detach(),)
        if id(bias) not in owners:
            owners[id(bias)] = name
            params += bias.numel()
            add_bytes(stored, _dtype_name(bias), bias.numel() * bias.element_size())
    dtype = f"int{mod.bits}" if getattr(mod, "bits", 8) == 4 else _dtype_name(mod.qweight)
    return _TorchLayer(name, mod, (weight,), biases, params, stored, False, dtype=dtype)


def _unowned(module: nn.Module, owners: dict[int, str]) -> tuple[int, int]:
    """(parameters, bytes) of the module's parameters that no weighted layer owns."""
    params = nbytes = 0
    for p in module.parameters():
        if id(p) not in owners:
            params += p.numel()
            nbytes += p.numel() * p.element_size()
    return params, nbytes


def _float_tensors(mod: nn.Module) -> list[tuple[str, torch.Tensor, list[torch.Tensor]]]:
    """(name, effective tensor, stored parameters) for the module's own parameters."""
    entries = []
    for pname, p in mod.named_parameters(recurse=False):
        base = pname[: -len("_orig")] if pname.endswith("_orig") else pname
        value = getattr(mod, base, None) if base != pname else p
        entries.append((base, value if isinstance(value, torch.Tensor) else p, [p]))
    parametrizations = getattr(mod, "parametrizations", None)
    if isinstance(parametrizations, nn.ModuleDict):
        for key, plist in parametrizations.items():
            try:
                value = getattr(mod, key)
            except Exception:  # a parametrization that fails to evaluate: show its original instead
                value = next(plist.parameters())
            entries.append((key, value, list(plist.parameters())))
    return entries


def _is_packed_quantized(mod: nn.Module) -> bool:
    weight = getattr(type(mod), "weight", None)
    return callable(weight) and not isinstance(getattr(mod, "_parameters", {}).get("weight"), torch.Tensor)


def _quantized_layer(name: str, mod: nn.Module) -> _TorchLayer | None:
    try:
        weight = mod.weight()
        bias = mod.bias() if callable(getattr(mod, "bias", None)) else None
    except Exception:  # packed params we cannot unpack: not shown as a layer
        return None
    if not isinstance(weight, torch.Tensor):
        return None
    stored: dict[str, int] = {}
    add_bytes(stored, _dtype_name(weight), weight.numel() * weight.element_size())
    if weight.is_quantized:
        _add_qparams(stored, weight)
    biases = (bias.detach(),) if isinstance(bias, torch.Tensor) else ()
    for b in biases:
        add_bytes(stored, _dtype_name(b), b.numel() * b.element_size())
    params = weight.numel() + sum(b.numel() for b in biases)
    return _TorchLayer(name, mod, (weight,), biases, params, stored, True)


def _add_qparams(stored: dict[str, int], weight: torch.Tensor) -> None:
    """Count a quantized weight's scales and zero points (per channel or per tensor)."""
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric,
                            torch.per_channel_affine_float_qparams):
        for t in (weight.q_per_channel_scales(), weight.q_per_channel_zero_points()):
            add_bytes(stored, _dtype_name(t), t.numel() * t.element_size())
    else:
        add_bytes(stored, "float64", 8)
        add_bytes(stored, "int64", 8)


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def _as_float(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    if t.is_quantized:
        t = t.dequantize()
    return t.to(torch.float32).cpu()


def _layer_stats(layer: _TorchLayer, flops: int) -> LayerStats:
    weights = [_as_float(w) for w in layer.weights]
    zeros = sum(int((w == 0).sum()) for w in weights)
    size = sum(w.numel() for w in weights)
    mod = layer.module
    op_type = getattr(mod, "original_name", None) or mod._get_name()
    return make_layer(layer.name, op_type, tuple(layer.weights[0].shape), layer.params,
                      layer.dtype or _dtype_name(layer.weights[0]), layer.bytes_by_dtype, zeros, size, flops,
                      layer.shared_with)


def count_flops(module: nn.Module, inputs: tuple[InputSpec, ...], layers: list[_TorchLayer]):
    """(flops per layer name, total flops, warnings) from one forward pass under FlopCounterMode.

    Quantized modules run kernels the counter does not know, so their FLOPs come from forward hooks
    using the same formulas (2 * output elements * input features per output).
    """
    from torch.utils.flop_counter import FlopCounterMode

    quantized = {layer.module: layer for layer in layers if layer.quantized}
    extra: dict[str, int] = {}
    hooks = [mod.register_forward_hook(_quantized_hook(layer, extra)) for mod, layer in quantized.items()
             if isinstance(mod, nn.Module)]
    counter = FlopCounterMode(display=False)
    # attention's fused inference kernel is invisible to the counter; the composite path runs mm/bmm
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        args = [_example_tensor(spec, _float_dtype(module)) for spec in inputs]
        torch.backends.mha.set_fastpath_enabled(False)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            with counter:
                module(*args)
    except Exception as exc:  # any model failure leaves FLOPs unknown, never the inspection
        return {}, 0, [f"FLOPs not counted: the forward pass at {_shapes(inputs)} failed: "
                       f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"]
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for hook in hooks:
            hook.remove()
    per_module = _per_module(counter, module)
    for name, flops in extra.items():
        per_module[name] = per_module.get(name, 0) + flops
    total = int(counter.get_total_flops()) + sum(extra.values())
    floor = _flops_floor(layers)
    if total < floor:  # fused kernels the counter cannot see (e.g. a traced attention fast path)
        return {}, 0, [f"FLOPs not counted: the counter saw {total:,} FLOPs, fewer than the {floor:,} that the "
                       "linear and convolution weights need at least once per call (fused kernels it cannot see)"]
    notes = []
    if total and layers and not any(per_module.get(layer.name) for layer in layers):
        notes.append("FLOPs per layer are not available for this module type (compiled or exported graphs "
                     "run without module calls); the total is counted")
    return per_module, total, notes


FLOOR_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d")


def _flops_floor(layers: list[_TorchLayer]) -> int:
    """A lower bound on a forward pass's FLOPs: every float weight of a linear or convolution layer takes part in
    at least one multiply-add per call."""
    return 2 * sum(w.numel() for layer in layers if not layer.quantized and not layer.shared_with
                   and getattr(layer.module, "original_name", type(layer.module).__name__) in FLOOR_TYPES
                   for w in layer.weights[:1])


def _per_module(counter, module: nn.Module) -> dict[str, int]:
    """FlopCounterMode's module paths ('Root.layer1.conv1') mapped to layer names ('layer1.conv1')."""
    root = type(module).__name__
    found: dict[str, int] = {}
    for path, ops in counter.get_flop_counts().items():
        if path == "Global":
            continue
        if path == root:
            name = ""
        elif path.startswith(root + "."):
            name = path[len(root) + 1:]
        else:
            continue
        found[name] = int(sum(ops.values()))
    return found


def _quantized_hook(layer: _TorchLayer, extra: dict[str, int]):
    weight_shape = tuple(layer.weights[0].shape)
    kind = layer.module._get_name()

    def hook(_mod, _args, output):
        if not isinstance(output, torch.Tensor) or len(weight_shape) < 2:
            return
        if "Linear" in kind or ("Conv" in kind and "Transpose" not in kind):
            per_output = int(np.prod(weight_shape[1:]))
            extra[layer.name] = extra.get(layer.name, 0) + 2 * output.numel() * per_output

    return hook


_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                 "float64": torch.float64, "int64": torch.int64, "int32": torch.int32, "bool": torch.bool,
                 "uint8": torch.uint8, "int8": torch.int8}


def _float_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype of the module's first floating-point parameter (half models take half inputs)."""
    for p in module.parameters():
        if p.dtype.is_floating_point:
            return p.dtype
    return None


def _example_tensor(spec: InputSpec, float_dtype: torch.dtype | None = None) -> torch.Tensor:
    dtype = _TORCH_DTYPES.get(spec.dtype, torch.float32)
    if dtype.is_floating_point:
        dtype = float_dtype or dtype
        low, high = spec.value_range or (0.0, 1.0)
        gen = torch.Generator().manual_seed(0)
        return (torch.rand(spec.shape, generator=gen) * (high - low) + low).to(dtype)
    return torch.zeros(spec.shape, dtype=dtype)


def _shapes(inputs: tuple[InputSpec, ...]) -> str:
    return ", ".join(f"{s.name}={tuple(s.shape)}" for s in inputs)


def torch_layer_weight(module: nn.Module, layer_name: str) -> np.ndarray | None:
    """The float32 weight of layer `layer_name` (several weights are flattened and joined), or None."""
    mod = dict(module.named_modules()).get(layer_name)
    layer = _layer_of(layer_name, mod) if mod is not None else None
    if layer is None:
        return None
    weights = [_as_float(w).numpy() for w in layer.weights]
    if len(weights) == 1:
        return weights[0]
    return np.concatenate([w.ravel() for w in weights])
