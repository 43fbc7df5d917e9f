"""Handles of the bundled examples for the compression tests."""

from __future__ import annotations

import numpy as np
import torch

from accelstudio.core.model.loading import load_example


def example_handle(name: str, backend: str = "torch"):
    """A freshly loaded bundled example."""
    return load_example(name, backend=backend)


def torch_weights(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """Copies of every Linear / Conv weight by layer name."""
    return {n: m.weight.detach().numpy().copy() for n, m in module.named_modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}


def param_total(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
