"""Pruning of torch modules, in place (the caller passes a copy).

Prunable layers are Linear and Conv1d/2d/3d (and transposed convolutions), named by their qualified module
name. Zeroing methods (l1-unstructured, random, 2:4; see pruning_plan) write zeros into the weights: no
pruning re-parametrization or mask buffers are left behind. The final classifier is pruned like any other
layer unless the recipe excludes it.

l1-structured removes whole output channels / neurons with torch_pruning: channels ranked by the L1 norm of
their weights, coupled layers (residual additions, the next layer's inputs) shrunk together by its dependency
graph. The final classifier's outputs and excluded layers' outputs are never removed, so the model keeps its
input and output shapes while its parameter count and FLOPs drop.
"""

from __future__ import annotations

import torch
from torch import nn

from accelstudio.core.errors import CompressionError
from accelstudio.core.progress import ProgressCallback, ProgressEvent, check_cancel
from accelstudio.core.compress.pruning_plan import (
    LayerReport, PrunableWeight, check_layer_names, predicted_reports, requested_amounts, sparsity_report,
    zero_masks,
)
from accelstudio.core.recipe import PruneSpec

LAYER_TYPES = (nn.Linear, nn.modules.conv._ConvNd)
SCRIPTED_LAYER_NAMES = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                        "ConvTranspose3d")


def prunable_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) for every Linear / Conv layer holding a float weight, in module order.

    TorchScript modules are matched by their original class name. When none is found (a graph module from
    torch.export keeps parameters but not layer classes), any submodule with a 2-5 dimensional `weight`
    parameter is taken.
    """
    found = [(n, m) for n, m in module.named_modules() if n and _is_layer(m) and _float_weight(m)]
    if not found:
        found = [(n, m) for n, m in module.named_modules()
                 if n and isinstance(getattr(m, "weight", None), torch.Tensor) and 2 <= m.weight.ndim <= 5
                 and _float_weight(m)]
    return found


def _is_layer(m: nn.Module) -> bool:
    if isinstance(m, LAYER_TYPES):
        return True
    return isinstance(m, torch.jit.ScriptModule) and getattr(m, "original_name", "") in SCRIPTED_LAYER_NAMES


def _float_weight(m: nn.Module) -> bool:
    w = getattr(m, "weight", None)
    return isinstance(w, torch.Tensor) and w.is_floating_point() and not w.is_quantized


def k_axis(m: nn.Module) -> int | None:
    """PrunableWeight.k_axis for a layer's weight: the reduction axis 2:4 groups along (None: all but the first)."""
    transposed = isinstance(m, nn.modules.conv._ConvTransposeNd) or "Transpose" in getattr(m, "original_name", "")
    return 0 if transposed else None


def _bias_size(m: nn.Module) -> int:
    b = getattr(m, "bias", None)
    return int(b.numel()) if isinstance(b, torch.Tensor) else 0


def _weights(layers: list[tuple[str, nn.Module]]) -> list[PrunableWeight]:
    # detach().numpy() shares memory with float32 weights: nothing is copied for the prediction
    return [PrunableWeight(n, m.weight.detach().cpu().float().numpy(), k_axis(m)) for n, m in layers]


def prunable_weights(module: nn.Module) -> tuple[list[PrunableWeight], dict[str, int]]:
    """The prunable layers' weights as float32 arrays (sharing memory with float32 weights) and bias sizes."""
    layers = prunable_layers(module)
    return _weights(layers), {n: _bias_size(m) for n, m in layers}


def predict_torch(module: nn.Module, spec: PruneSpec) -> tuple[list[LayerReport], list[str]]:
    """Per-layer sparsity that `prune_zeroing_torch` would reach, computed without touching the module."""
    weights, bias_sizes = prunable_weights(module)
    return predicted_reports(weights, spec, bias_sizes)


def prune_zeroing_torch(module: nn.Module, spec: PruneSpec, progress: ProgressCallback | None = None,
                        cancel=None) -> tuple[list[LayerReport], list[str]]:
    """Apply l1-unstructured / random / 2:4 pruning in place; returns the reports and the layers 2:4 skipped."""
    layers = prunable_layers(module)
    if not layers:
        raise CompressionError("no Linear or Conv layer with float weights found: nothing to prune")
    amounts = requested_amounts([n for n, _ in layers], spec)
    masks, skipped = zero_masks(_weights(layers), spec)
    reports = []
    for i, (name, layer) in enumerate(layers):
        check_cancel(cancel)
        weight = layer.weight
        if name in masks:
            with torch.no_grad():
                weight.masked_fill_(torch.from_numpy(masks[name]).to(weight.device), 0)
        zeros = int((weight == 0).sum())
        reports.append(sparsity_report(name, 0.0 if name in skipped else amounts[name], zeros, weight.numel(),
                                       _bias_size(layer)))
        if progress:
            progress(ProgressEvent("prune", (i + 1) / len(layers), f"pruned {name}"))
    return reports, skipped


def final_layer_name(module: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> str | None:
    """The prunable layer that ran last in a forward pass (the classifier); None if none ran."""
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda _m, _i, _o, n=n: order.append(n)) for n, m in prunable_layers(module)]
    try:
        with torch.no_grad():
            module(*example_inputs)
    except Exception as exc:
        raise CompressionError(f"the model does not run on its example input: {exc}") from None
    finally:
        for h in hooks:
            h.remove()
    return order[-1] if order else None


def prune_structured_torch(module: nn.Module, spec: PruneSpec, example_inputs: tuple[torch.Tensor, ...],
                           progress: ProgressCallback | None = None, cancel=None) -> list[LayerReport]:
    """Remove output channels with torch_pruning, in place. Reports the fraction of channels removed per layer."""
    if isinstance(module, torch.jit.ScriptModule):
        raise CompressionError("structured pruning needs a Python nn.Module; this is TorchScript. "
                               "Open the safetensors or state-dict form of the model instead")
    import torch_pruning as tp

    layers = [(n, m) for n, m in prunable_layers(module) if isinstance(m, LAYER_TYPES)]
    if not layers:
        raise CompressionError("no Linear or Conv layer found: structured pruning needs nn.Linear / nn.Conv layers")
    names = [n for n, _ in layers]
    check_layer_names(names, spec)
    amounts = requested_amounts(names, spec)
    classifier = final_layer_name(module, example_inputs)
    if classifier is not None:
        amounts[classifier] = 0.0
    before = {n: (out_channels(m), param_count(m)) for n, m in layers}
    with torch.no_grad():
        reference = module(*example_inputs)
    _run_torch_pruning(tp, module, layers, amounts, spec, example_inputs, progress, cancel)
    with torch.no_grad():
        try:
            out = module(*example_inputs)
        except Exception as exc:
            raise CompressionError(f"the model no longer runs after structured pruning: {exc}") from None
    if tuple(out.shape) != tuple(reference.shape):
        raise CompressionError(f"structured pruning changed the output shape {tuple(reference.shape)} -> "
                               f"{tuple(out.shape)}; exclude the layer that produces the output")
    return [LayerReport(n, amounts[n], 1.0 - out_channels(m) / before[n][0] if before[n][0] else 0.0,
                        before[n][1], param_count(m)) for n, m in layers]


def _run_torch_pruning(tp, module, layers, amounts, spec, example_inputs, progress, cancel) -> None:
    by_module = {m: n for n, m in layers}
    ignored = [m for n, m in layers if amounts[n] <= 0]
    ratio_dict = {m: amounts[n] for n, m in layers if n in spec.overrides and amounts[n] > 0}
    flags = {p: p.requires_grad for p in module.parameters()}
    for p in flags:
        p.requires_grad_(True)  # the dependency graph is traced through autograd
    try:
        with torch.enable_grad():
            try:
                pruner = tp.pruner.MetaPruner(
                    module, example_inputs, importance=tp.importance.MagnitudeImportance(p=1),
                    pruning_ratio=float(spec.amount), pruning_ratio_dict=ratio_dict or None,
                    global_pruning=spec.scope == "global", ignored_layers=ignored)
            except Exception as exc:
                raise CompressionError(f"structured pruning could not trace this model's graph: {exc}. "
                                       "Use l1-unstructured, or exclude the layers involved") from None
            groups = pruner.step(interactive=True)
            for i, group in enumerate(groups):
                check_cancel(cancel)
                root = by_module.get(group[0].dep.target.module, str(group[0].dep.target))
                try:
                    group.prune()
                except Exception as exc:
                    raise CompressionError(f"structured pruning failed at layer '{root}': {exc}. "
                                           f"Exclude '{root}' or use l1-unstructured") from None
                if progress:
                    progress(ProgressEvent("prune", min(1.0, (i + 1) / len(layers)), f"pruned channels of {root}"))
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)


def out_channels(m: nn.Module) -> int:
    """Output features of a Linear, output channels of a convolution."""
    if isinstance(m, nn.Linear):
        return m.out_features
    return m.out_channels


def param_count(m: nn.Module) -> int:
    """Weight plus bias elements of a layer."""
    return int(m.weight.numel()) + _bias_size(m)
