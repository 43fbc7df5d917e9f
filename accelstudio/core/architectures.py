"""The bundled architectures. Weights for them load from safetensors or a weights-only state dict.

Every architecture takes one float32 input named `x` with values in [0, 1] and returns class logits.
No BatchNorm is used, so the torch and ONNX forms of a model hold the same parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


class DigitsMLP(nn.Module):
    """A small multilayer perceptron on flattened 8x8 digits (64 inputs)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class DigitsCNN(nn.Module):
    """A small convolutional network on 1x8x8 digits."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        return self.fc2(x)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.conv1(x))
        out = self.conv2(out)
        return torch.relu(out + self.shortcut(x))


class DigitsResNet(nn.Module):
    """A ResNet-style CNN that upsamples 1x8x8 digits to 64x64 inside the model (bilinear), then runs three
    residual stages: enough work (about 0.3 GMACs) for a batch-1 CPU latency of a few milliseconds."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (40, 80, 160), size: int = 64):
        super().__init__()
        w1, w2, w3 = widths
        self.size = size
        self.stem = nn.Conv2d(1, w1, 3, padding=1)
        self.layer1 = BasicBlock(w1, w1, 1)
        self.layer2 = BasicBlock(w1, w2, 2)
        self.layer3 = BasicBlock(w2, w3, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = torch.relu(self.stem(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


@dataclass(frozen=True)
class Architecture:
    """A bundled architecture: how to build it and what input it takes (batch dimension first)."""

    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    num_classes: int = 10
    description: str = ""


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("digits-mlp", DigitsMLP, (1, 64), description="MLP 64-128-64-10 on 8x8 digits"),
        Architecture("digits-cnn", DigitsCNN, (1, 1, 8, 8), description="2-conv CNN on 8x8 digits"),
        Architecture("digits-resnet", DigitsResNet, (1, 1, 8, 8),
                     description="ResNet-style CNN (3 residual stages) on digits upsampled to 64x64 in the model"),
    )
}


def get_architecture(name: str) -> Architecture:
    """The bundled architecture called `name`; KeyError lists the known names."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture '{name}'; known: {', '.join(sorted(ARCHITECTURES))}") from None


def match_architecture(state_dict: dict) -> str | None:
    """The name of the bundled architecture whose parameter names and shapes equal `state_dict`'s, if any."""
    wanted = {k: tuple(v.shape) for k, v in state_dict.items()}
    for name, arch in ARCHITECTURES.items():
        ref = {k: tuple(v.shape) for k, v in arch.build().state_dict().items()}
        if ref == wanted:
            return name
    return None
