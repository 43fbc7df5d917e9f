"""Run one model many times with a few layers' weights replaced, without rebuilding it per variant.

ONNX: ONE onnxruntime session in which every screened layer's weight is a graph input; a variant is only a
`run()` with other weights in the feed (the unchanged ones are fed their stored values, held as OrtValues so
nothing is copied per call). Weights stored as initializers and weights computed by constant nodes (Constant,
ConstantOfShape...) are both turned into inputs. Constant folding of those weights (Conv+BatchNorm fusion) is
lost, so one call is somewhat slower than the model's own session; every variant pays the same.

torch: the module's weight tensors are overwritten in place under no_grad and restored after each variant.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from accelstudio.core.compress.pruning_onnx import PRUNABLE_OPS, k_axis as onnx_k_axis
from accelstudio.core.compress.quant_sim import onnx_out_axis, torch_out_axis
from accelstudio.core.data.dataset import Dataset
from accelstudio.core.errors import RuntimeUnavailableError
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.measure.evaluate import run_batches
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.model.onnx_layers import weighted_nodes
from accelstudio.core.progress import CancelToken
from accelstudio.core.studies.sensitivity_variants import ScreenedLayer

INPUT_SUFFIX = "::screened"


class VariantRunner:
    """A model and a screening set; `outputs(overrides)` runs the whole set with the weights of the layers
    named in `overrides` replaced (the others as stored) and returns the first output, one row per sample."""

    layers: list[ScreenedLayer]

    def __init__(self, data: Dataset, batch: int, layout: str):
        self.data = data
        self.batch = 1 if layout == "per-call" else batch
        self.per_call = layout == "per-call"
        self.pad = layout == "fixed"

    def outputs(self, overrides: Mapping[str, np.ndarray], cancel: CancelToken | None = None) -> np.ndarray:
        self._swap_in(overrides)
        try:
            return run_batches(self._predict_rows, self.data, self.batch, cancel, pad_last=self.pad)
        finally:
            self._swap_out(overrides)

    def _predict_rows(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if not self.per_call:
            return self._predict(feed)
        n = len(next(iter(feed.values())))
        return np.stack([np.asarray(self._predict({k: v[i] for k, v in feed.items()})) for i in range(n)])

    def _predict(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _swap_in(self, overrides: Mapping[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _swap_out(self, overrides: Mapping[str, np.ndarray]) -> None:
        raise NotImplementedError


class OnnxVariantRunner(VariantRunner):
    """One ONNX Runtime session with every screened weight as a graph input."""

    def __init__(self, handle: ModelHandle, data: Dataset, batch: int, layout: str, settings: RuntimeSettings):
        super().__init__(data, batch, layout)
        import onnx
        import onnxruntime as ort

        from accelstudio.core.measure.runtimes import ort_session_options

        model = onnx.ModelProto()
        model.CopyFrom(handle.onnx_model)
        self.layers, self._input_of = _onnx_layers(model)
        _weights_as_inputs(model, {self._input_of[l.name]: l for l in self.layers})
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), ort_session_options(settings),
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT reports graph problems as several exception types
            raise RuntimeUnavailableError(f"ONNX Runtime cannot run {handle.name} with its weights as inputs: "
                                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
        self._ort = ort
        self._output = self.session.get_outputs()[0].name
        self._stored = {l.name: ort.OrtValue.ortvalue_from_numpy(l.weight) for l in self.layers}
        self._current = dict(self._stored)
        self._keep: list[np.ndarray] = []

    def _swap_in(self, overrides: Mapping[str, np.ndarray]) -> None:
        for name, array in overrides.items():
            array = np.ascontiguousarray(array, dtype=np.float32)
            self._keep.append(array)  # an OrtValue borrows the array's memory
            self._current[name] = self._ort.OrtValue.ortvalue_from_numpy(array)

    def _swap_out(self, overrides: Mapping[str, np.ndarray]) -> None:
        self._current = dict(self._stored)
        self._keep.clear()

    def _predict(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        values = {k: self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v)) for k, v in feed.items()}
        values.update({self._input_of[name]: value for name, value in self._current.items()})
        return self.session.run_with_ort_values([self._output], values)[0].numpy()


def _onnx_layers(model) -> tuple[list[ScreenedLayer], dict[str, str]]:
    """The Conv/Gemm/MatMul layers with a constant float weight (a weight shared by several nodes once), and the
    graph input name each one's weight gets."""
    layers, input_of, seen = [], {}, set()
    for wn in weighted_nodes(model):
        if wn.node.op_type not in PRUNABLE_OPS or wn.weight_name in seen:
            continue
        weight = wn.weight
        if not np.issubdtype(weight.dtype, np.floating) or weight.ndim < 2:
            continue
        seen.add(wn.weight_name)
        array = np.ascontiguousarray(weight, dtype=np.float32)
        kind = "conv" if wn.node.op_type.startswith("Conv") else "linear"
        layers.append(ScreenedLayer(wn.name, kind, array, onnx_k_axis(wn.node, array.ndim),
                                    onnx_out_axis(wn.node, array.ndim)))
        input_of[wn.name] = wn.weight_name + INPUT_SUFFIX
    return layers, input_of


def _weights_as_inputs(model, by_input: dict[str, ScreenedLayer]) -> None:
    """Rewire every use of each screened weight to a new graph input; drop initializers nobody reads now."""
    from onnx import TensorProto, helper

    renamed = {name[: -len(INPUT_SUFFIX)]: name for name in by_input}
    for node in model.graph.node:
        for i, value in enumerate(node.input):
            if value in renamed:
                node.input[i] = renamed[value]
    for new_name, layer in by_input.items():
        model.graph.input.append(helper.make_tensor_value_info(new_name, TensorProto.FLOAT, list(layer.weight.shape)))
    used = {v for node in model.graph.node for v in node.input} | {o.name for o in model.graph.output}
    keep = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    inputs = [i for i in model.graph.input if i.name in used]  # old models list initializers as inputs too
    del model.graph.input[:]
    model.graph.input.extend(inputs)


class TorchVariantRunner(VariantRunner):
    """A torch module whose weights are overwritten in place for a variant and restored afterwards."""

    def __init__(self, handle: ModelHandle, data: Dataset, batch: int, layout: str, settings: RuntimeSettings):
        super().__init__(data, batch, layout)
        import torch

        from accelstudio.core.compress.pruning_torch import k_axis as torch_k_axis, prunable_layers
        from accelstudio.core.measure.runtimes import make_predictor

        self._torch = torch
        self.predictor = make_predictor(handle, settings)
        self._modules = dict(prunable_layers(handle.module))
        self.layers = []
        for name, sub in self._modules.items():
            array = sub.weight.detach().float().cpu().numpy().copy()  # a copy: the tensor is overwritten later
            kind = "linear" if isinstance(sub, torch.nn.Linear) or array.ndim == 2 else "conv"
            self.layers.append(ScreenedLayer(name, kind, array, torch_k_axis(sub), torch_out_axis(sub)))
        self._stored = {l.name: l.weight for l in self.layers}

    def _swap_in(self, overrides: Mapping[str, np.ndarray]) -> None:
        self._copy(overrides)

    def _swap_out(self, overrides: Mapping[str, np.ndarray]) -> None:
        self._copy({name: self._stored[name] for name in overrides})

    def _copy(self, arrays: Mapping[str, np.ndarray]) -> None:
        with self._torch.no_grad():
            for name, array in arrays.items():
                weight = self._modules[name].weight
                weight.copy_(self._torch.from_numpy(np.ascontiguousarray(array)).to(weight.dtype))

    def _predict(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.predictor.run(feed)


def make_runner(handle: ModelHandle, data: Dataset, batch: int, layout: str,
                settings: RuntimeSettings) -> VariantRunner:
    """The runner for `handle`'s backend (ONNX: one ORT session; torch: eager with weights swapped in place)."""
    cls = OnnxVariantRunner if handle.backend == "onnx" else TorchVariantRunner
    return cls(handle, data, batch, layout, settings)
