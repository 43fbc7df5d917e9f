"""A model known only by data: all the window needs to show a model whose code must not run in its process.

A trusted file (TorchScript, torch.export, pickled module) is opened in a worker, and the window gets its
`ModelData` (built and read by accelstudio.core.compress.snapshot): the summary (layer table, totals), the
declared inputs, a float32 weight array per layer (histograms, quantization grids), the prunable layers' weights
and shapes (pruning predictions), and the facts the run checks need (attention parts, classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelstudio.core.model.handle import InputSpec
from accelstudio.core.model.inspect import UnknownLayerError
from accelstudio.core.model.summary import ModelSummary


@dataclass(frozen=True, eq=False)
class ModelData:
    """A model known only by data. `weights`: each layer's weight (float32, read-only); `prunable`: the
    prunable layers' weights (accelstudio.core.compress.pruning_plan.PrunableWeight, arrays shared with
    `weights` where equal) with `bias_sizes`; `channels`: their ChannelLayer shapes (None: the model cannot be
    pruned structurally); `attention`: the model holds attention parts (LayerNorm, GELU, embeddings...);
    `num_classes`: the classifier's classes when known; `inputs`: the declared inputs (None marks a dynamic
    dimension; the summary's inputs have the batch filled in)."""

    name: str
    backend: str
    source_format: str
    summary: ModelSummary
    weights: dict[str, np.ndarray]
    prunable: tuple[Any, ...]
    bias_sizes: dict[str, int]
    channels: tuple[Any, ...] | None
    inputs: tuple[InputSpec, ...] = ()
    attention: bool = False
    num_classes: int | None = None

    @property
    def is_torch(self) -> bool:
        """True for a torch model (it can be trained and pruned structurally in torch), False for ONNX."""
        return self.backend == "torch"

    def layer_weights(self, name: str) -> np.ndarray:
        """The float32 weight of layer `name` (read-only); UnknownLayerError for a layer without one."""
        if name not in self.weights:
            raise UnknownLayerError(f"model '{self.name}' has no layer with weights named '{name}'")
        return self.weights[name]
