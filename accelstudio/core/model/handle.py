"""The backend-neutral model handle that every core stage passes around."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

Backend = Literal["torch", "onnx"]
SourceFormat = Literal["onnx", "torchscript", "export", "safetensors", "state_dict", "pickle", "example"]


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, shape (None marks a dynamic dimension), dtype and known value range."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"
    value_range: tuple[float, float] | None = None

    def concrete_shape(self, batch: int = 1, default_dim: int = 1) -> tuple[int, ...]:
        """Shape with the first dynamic dimension set to `batch` and any other to `default_dim`."""
        dims = []
        for i, d in enumerate(self.shape):
            dims.append(d if d is not None else (batch if i == 0 else default_dim))
        return tuple(dims)


@dataclass(frozen=True)
class ModelHandle:
    """A loaded model, torch or ONNX, plus what later stages need to feed it.

    Exactly one of `module` (a torch.nn.Module, eval mode) and `onnx_model` (an onnx.ModelProto with its
    external data already loaded) is set. `source` is the file it came from (None for in-memory results),
    `architecture` the bundled architecture name when known, `example` the bundled example name when known.
    """

    backend: Backend
    source_format: SourceFormat
    inputs: tuple[InputSpec, ...]
    module: Any = None
    onnx_model: Any = None
    source: Path | None = None
    architecture: str | None = None
    example: str | None = None
    num_classes: int | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        if self.example:
            return self.example
        if self.source is not None:
            return self.source.name
        return "model"

    def with_model(self, *, module: Any = None, onnx_model: Any = None, **changes) -> "ModelHandle":
        """A copy that holds another torch module or ONNX model (the backend follows)."""
        if module is not None:
            return replace(self, backend="torch", module=module, onnx_model=None, **changes)
        if onnx_model is not None:
            return replace(self, backend="onnx", module=None, onnx_model=onnx_model, **changes)
        return replace(self, **changes)
