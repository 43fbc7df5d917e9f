"""Weight-only int8/int4 layers for torch: integer weights in memory, dequantized on the fly in forward.

int8 keeps one scale per output channel (or one per tensor); int4 keeps one scale per group of 32 weights along
the input dimension and packs two 4-bit codes per byte. Compute stays in the input's float dtype, so the gain is
memory (about 1/4 or 1/7 of the float32 weight bytes), not speed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from accelstudio.core.compress.quant_sim import quantize_rows

INT4_GROUP_SIZE = 32


class _WeightOnlyBase(nn.Module):
    """Holds `qweight` (int8 codes, or uint8 with two 4-bit codes per byte), `scale` and an optional `zero`."""

    bits: int
    weight_shape: tuple[int, ...]

    def _store(self, weight: torch.Tensor, bits: int, per_channel: bool, symmetric: bool,
               group_size: int) -> None:
        self.bits = bits
        self.symmetric = symmetric
        self.weight_shape = tuple(weight.shape)
        out = weight.shape[0]
        flat = weight.detach().float().reshape(out, -1).cpu().numpy()
        k = flat.shape[1]
        if bits == 4:
            padded = -(-k // group_size) * group_size
            flat = np.pad(flat, ((0, 0), (0, padded - k)))
            groups = padded // group_size
            rows = flat.reshape(out * groups, group_size)
        else:
            groups = 1
            rows = flat if per_channel else flat.reshape(1, -1)
        codes, scale, zero = quantize_rows(rows, bits, symmetric)
        codes = codes.reshape(out, -1)
        scale_rows = out if (bits == 4 or per_channel) else 1
        scale = scale.reshape(scale_rows, groups)
        zero = zero.reshape(scale_rows, groups)
        if bits == 4:
            offset = 8 if symmetric else 0  # symmetric codes -7..7 are stored as 1..15
            nibbles = (codes + offset).astype(np.uint8)
            qweight = nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)
            self.register_buffer("qweight", torch.from_numpy(np.ascontiguousarray(qweight)))
            self.register_buffer("scale", torch.from_numpy(scale.astype(np.float16)))
        else:
            dtype = np.int8 if symmetric else np.uint8
            self.register_buffer("qweight", torch.from_numpy(np.ascontiguousarray(codes.astype(dtype))))
            self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32)))
        zero_t = None if symmetric else torch.from_numpy(zero.astype(np.uint8))
        self.register_buffer("zero", zero_t)

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight these codes stand for, in the original layer's shape."""
        out = self.weight_shape[0]
        if self.bits == 4:
            packed = self.qweight
            codes = torch.stack((packed & 15, packed >> 4), dim=-1).reshape(out, -1).float()
            if self.symmetric:
                codes = codes - 8
        else:
            codes = self.qweight.float()
        scale = self.scale.float()
        groups = scale.shape[1]
        codes = codes.reshape(out, groups, -1)
        if self.zero is not None:
            codes = codes - self.zero.float().unsqueeze(-1)
        weight = (codes * scale.unsqueeze(-1)).reshape(out, -1)
        k = int(np.prod(self.weight_shape[1:]))
        return weight[:, :k].reshape(self.weight_shape)

    def extra_repr(self) -> str:
        return f"weight_shape={self.weight_shape}, bits={self.bits}, symmetric={self.symmetric}"


class WeightOnlyLinear(_WeightOnlyBase):
    """nn.Linear with int8 or packed int4 weights."""

    def __init__(self, linear: nn.Linear, bits: int, per_channel: bool = True, symmetric: bool = True,
                 group_size: int = INT4_GROUP_SIZE):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._store(linear.weight, bits, per_channel, symmetric, group_size)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().float().clone(),
                                                                   requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.dequantized_weight().to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, weight, bias)


class WeightOnlyConv2d(_WeightOnlyBase):
    """nn.Conv2d (zero padding) with int8 or packed int4 weights."""

    def __init__(self, conv: nn.Conv2d, bits: int, per_channel: bool = True, symmetric: bool = True,
                 group_size: int = INT4_GROUP_SIZE):
        super().__init__()
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self._store(conv.weight, bits, per_channel, symmetric, group_size)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().float().clone(),
                                                                 requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.dequantized_weight().to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


def weight_only_layer(layer: nn.Module, bits: int, per_channel: bool, symmetric: bool) -> nn.Module | None:
    """The weight-only replacement for `layer`, or None when its type is not supported."""
    if isinstance(layer, nn.Linear):
        return WeightOnlyLinear(layer, bits, per_channel, symmetric)
    if isinstance(layer, nn.Conv2d) and layer.padding_mode == "zeros":
        return WeightOnlyConv2d(layer, bits, per_channel, symmetric)
    return None
