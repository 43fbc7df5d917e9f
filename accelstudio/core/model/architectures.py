"""The bundled architectures. Weights for them load from safetensors or a weights-only state dict.

Every architecture takes one float32 input named `x` with values in [0, 1] and returns class logits.
No BatchNorm is used, so the torch and ONNX forms of a model hold the same parameters.
Attention is written out (Linear q/k/v/out, matmul, softmax) rather than fused, so that both the torch module and
its ONNX graph show MatMul and Softmax nodes that the quantizers and the layer table can see.
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


class SelfAttention(nn.Module):
    """Multi-head self-attention from explicit q/k/v/out projections, matmuls and a softmax."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, D) -> (N, heads, T, head_dim)
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) * (self.head_dim ** -0.5)
        mixed = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out(mixed.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block: x + attention(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class DigitsViT(nn.Module):
    """A small vision transformer on 1x8x8 digits: 16 patches of 2x2 pixels, linear patch embedding, learned
    position embedding, two encoder blocks (4-head self-attention, GELU MLP), final LayerNorm, mean pooling over
    the tokens and a linear classifier."""

    def __init__(self, num_classes: int = 10, dim: int = 48, heads: int = 4, hidden: int = 96, depth: int = 2,
                 patch: int = 2):
        super().__init__()
        self.patch = patch
        tokens = (8 // patch) ** 2
        self.embed = nn.Linear(patch * patch, dim)
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads, hidden) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 8, 8) images to (N, 16, 4) row-major 2x2 patches."""
        p, side = self.patch, 8 // self.patch
        x = x.reshape(x.shape[0], side, p, side, p).transpose(2, 3)
        return x.reshape(x.shape[0], side * side, p * p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.patches(x)) + self.pos
        tokens = self.norm(self.blocks(tokens))
        return self.head(tokens.mean(dim=1))


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
        Architecture("digits-vit", DigitsViT, (1, 1, 8, 8),
                     description="Vision transformer: 16 2x2-pixel patches, 2 encoder blocks of 4-head "
                                 "self-attention, LayerNorm and GELU MLP"),
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
