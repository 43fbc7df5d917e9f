"""What inspection reports, for both backends: one row per weighted layer and the whole model's totals."""

from __future__ import annotations

from dataclasses import dataclass

from accelstudio.core.model.handle import InputSpec


@dataclass(frozen=True)
class LayerStats:
    """One layer with weights: size, storage, exact-zero sparsity and compute at the inspected input shape.

    `params` counts weight and bias; `bytes` is everything the layer stores in memory (weight, bias,
    quantization scales and zero points, a normalization's running statistics), split by dtype in
    `bytes_by_dtype`; `zeros` and `sparsity` cover the weight only. A weight that an earlier layer also uses
    (tied embeddings, an exporter's deduplicated initializers) is counted once, there: `shared_with` names that
    layer and this row counts only what it stores alone.
    """

    name: str
    op_type: str
    weight_shape: tuple[int, ...]
    params: int
    bytes: int
    dtype: str
    bytes_by_dtype: dict[str, int]
    zeros: int
    sparsity: float
    macs: int
    flops: int
    shared_with: str = ""


@dataclass(frozen=True)
class ModelSummary:
    """A whole model: its layers and totals over every parameter (not only those of weighted layers).

    Totals are exactly the sums over the layers plus `other_params` / `other_bytes`: what belongs to no
    weighted layer (a class token, a scale, positional tables, activation quantization parameters - bytes
    only - in ONNX; parameters of modules without a weight in torch). Each stored tensor counts once.

    `inputs` holds the concrete input shapes the FLOPs were counted at; `file_bytes` is the size on disk of
    the model's source (external data included), None for a model that lives only in memory. `warnings`
    says what could not be counted (for example a forward pass that failed), so a 0 is never silent.
    """

    name: str
    backend: str
    inputs: tuple[InputSpec, ...]
    layers: tuple[LayerStats, ...]
    total_params: int
    total_bytes: int
    file_bytes: int | None
    total_flops: int
    total_macs: int
    warnings: tuple[str, ...] = ()
    other_params: int = 0
    other_bytes: int = 0

    @property
    def flops_counted(self) -> bool:
        """False when the FLOPs could not be counted (the total then reads 0 and a warning says why)."""
        return bool(self.total_flops) or not any("FLOPs" in w for w in self.warnings)


def make_layer(name: str, op_type: str, weight_shape: tuple[int, ...], params: int, dtype: str,
               bytes_by_dtype: dict[str, int], zeros: int, weight_size: int, flops: int,
               shared_with: str = "") -> LayerStats:
    """Build a LayerStats, deriving bytes, sparsity and MACs from the parts (used by both backends)."""
    return LayerStats(
        name=name, op_type=op_type, weight_shape=tuple(int(d) for d in weight_shape), params=int(params),
        bytes=int(sum(bytes_by_dtype.values())), dtype=dtype,
        bytes_by_dtype={k: int(v) for k, v in bytes_by_dtype.items()}, zeros=int(zeros),
        sparsity=float(zeros) / weight_size if weight_size else 0.0, macs=int(flops) // 2, flops=int(flops),
        shared_with=shared_with,
    )


def add_bytes(acc: dict[str, int], dtype: str, nbytes: int) -> None:
    """Add `nbytes` to `acc[dtype]`."""
    acc[dtype] = acc.get(dtype, 0) + int(nbytes)
