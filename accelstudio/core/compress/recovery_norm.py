"""Transient BatchNorm for recovery training, folded back into the convolutions afterwards.

Networks trained with BatchNorm are usually shipped with it folded into their convolutions. Removing
channels from such a network shifts every later activation, and without normalization its plain
convolutions train slowly and diverge at useful learning rates (the digits-resnet with half its channels
removed reaches 66% after 3 epochs of plain fine-tuning; with this, 98%). So recovery puts a fresh
BatchNorm after each convolution that has a bias, through forward hooks (the module's structure and state
dict never change), trains, measures the final statistics on the training data, and merges them into the
convolution's weight and bias. Zero weights stay zero (each output channel is only rescaled).
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from accelstudio.core.progress import check_cancel

NORMS = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}


class TransientNorm:
    """BatchNorm layers hooked after the biased convolutions of `module` (none for other layer types;
    convolutions without bias are normally followed by a real BatchNorm already). `module` None: nothing."""

    def __init__(self, module: nn.Module | None):
        self.pairs: list[tuple[nn.Module, nn.Module]] = []
        self._hooks = []
        for conv in module.modules() if module is not None else ():
            norm_type = NORMS.get(type(conv))
            if norm_type is None or conv.bias is None or not conv.out_channels:
                continue
            norm = norm_type(conv.out_channels).to(device=conv.weight.device, dtype=conv.weight.dtype)
            self.pairs.append((conv, norm))
            self._hooks.append(conv.register_forward_hook(lambda _m, _inp, out, norm=norm: norm(out)))

    def parameters(self) -> Iterator[nn.Parameter]:
        """The BatchNorm scales and shifts (trained with the model)."""
        for _, norm in self.pairs:
            yield from norm.parameters()

    @torch.no_grad()
    def measure(self, forward, batches, cancel=None) -> None:
        """Recompute the running statistics exactly (cumulative average over `batches`, each a tuple of index
        tensors for `forward`), so short trainings do not fold half-updated running estimates."""
        if not self.pairs:
            return
        for _, norm in self.pairs:
            norm.reset_running_stats()
            norm.momentum = None
            norm.train()
        for idx in batches:
            check_cancel(cancel)
            forward(idx)

    @torch.no_grad()
    def fold(self) -> None:
        """Merge each BatchNorm (running statistics) into its convolution and remove the hooks."""
        self.remove()
        for conv, norm in self.pairs:
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
            conv.bias.copy_((conv.bias - norm.running_mean) * scale + norm.bias)
        self.pairs = []

    def remove(self) -> None:
        """Detach the hooks without merging anything."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
