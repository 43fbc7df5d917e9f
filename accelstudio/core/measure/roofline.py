"""Where each layer sits under this machine's roofs, and what bounds it.

For every profiled layer: its FLOPs (the layer table's count at the run's concrete input shapes), the bytes it
moves (its stored weights plus its input and output activations, at the element size of the precision it ran
in: 1 byte for int8 kernels, 2 for fp16/bf16, 4 otherwise), arithmetic intensity = FLOPs / bytes, achieved
FLOP/s = FLOPs / its profiled time, and the roof over it: min(peak of its precision, intensity x bandwidth)
(ceilings.py measures both roofs on this machine).

The rule (`classify`), applied in this order:
  1. overhead-bound: the kernel takes under OVERHEAD_US (20 us) per call, or it is short (under SHORT_US,
     200 us) and reaches under FAR_BELOW (5%) of the roof at its intensity: per-call costs (dispatch,
     threading, small shapes), not arithmetic or memory, set its time, so neither fewer FLOPs nor fewer bytes
     will make it much faster. A long kernel far below its roof is not called overhead-bound: its
     `efficiency` (achieved / roof) says how far below it runs;
  2. memory-bound: intensity below the ridge point (peak / bandwidth) of its precision, or no FLOPs counted
     (elementwise, normalization and data-movement operators): fewer bytes (int8 weights, smaller activations)
     speed it up, fewer FLOPs alone do not;
  3. compute-bound: intensity at or above the ridge point: fewer or cheaper FLOPs (int8 arithmetic, pruned
     channels) speed it up.
Rows that are not layers (no FLOPs counted and no bytes known) are classified by rules 1 and 2 only and are
left out of the plot. The whole model is one more point: all layers' FLOPs and bytes over the total time,
under the roof of the precision that does most of its FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from accelstudio.core.measure.ceilings import Ceilings
from accelstudio.core.model.handle import ModelHandle

OVERHEAD_US = 20.0
SHORT_US = 200.0
FAR_BELOW = 0.05
BOUNDS = ("compute", "memory", "overhead")
ELEMENT_BYTES = {"int8": 1, "fp16": 2, "bf16": 2}


@dataclass(frozen=True)
class LayerWork:
    """What one layer has to do per call: FLOPs, the bytes of its stored tensors, and the elements of its
    input and output activations."""

    name: str
    flops: int
    weight_bytes: int
    activation_elements: int

    def bytes_at(self, precision: str) -> int:
        """Bytes moved per call with activations at the element size of `precision`."""
        return self.weight_bytes + self.activation_elements * ELEMENT_BYTES.get(precision, 4)


@dataclass(frozen=True)
class RooflinePoint:
    """One layer (or the whole model) under the roofs."""

    name: str
    precision: str
    flops: int
    bytes: int
    intensity: float  # FLOP per byte
    time_ms: float
    share: float
    achieved_gflops: float
    roof_gflops: float  # attainable at this intensity: min(peak, intensity x bandwidth)
    bound: str
    efficiency: float = 0.0  # achieved / roof


def classify(time_ms: float, flops: float, nbytes: float, peak_gflops: float, bandwidth_gbs: float) -> str:
    """"overhead", "memory" or "compute" by the rule in the module docstring."""
    if time_ms * 1000.0 < OVERHEAD_US:
        return "overhead"
    if flops <= 0 or nbytes <= 0:
        return "memory"
    intensity = flops / nbytes
    roof = min(peak_gflops, intensity * bandwidth_gbs)
    achieved = flops / (time_ms * 1e-3) / 1e9
    if time_ms * 1000.0 < SHORT_US and achieved < FAR_BELOW * roof:
        return "overhead"
    return "memory" if intensity < peak_gflops / bandwidth_gbs else "compute"


def roofline(profile: dict, work: dict[str, LayerWork], ceilings: Ceilings) -> dict:
    """metrics["roofline"]: {"ceilings": Ceilings dict, "rule": str, "layers": [RooflinePoint dicts, the
    profile's order], "model": RooflinePoint dict | None}."""
    points = [_point(row, work.get(row["name"]), ceilings) for row in profile.get("layers", [])]
    measured = [p for p in points if p.flops > 0]
    model = None
    if measured:
        flops = sum(p.flops for p in measured)
        nbytes = sum(p.bytes for p in measured)
        time_ms = float(profile.get("total_ms", 0.0))
        by_precision: dict[str, int] = {}
        for p in measured:
            by_precision[p.precision] = by_precision.get(p.precision, 0) + p.flops
        precision = max(by_precision, key=by_precision.get)  # the roof of the precision doing most FLOPs
        model = _make_point("whole model", precision, flops, nbytes, time_ms, 1.0, ceilings)
    return {"ceilings": ceilings.to_dict(), "rule": RULE,
            "layers": [asdict(p) for p in points], "model": asdict(model) if model else None}


RULE = (f"overhead-bound: under {OVERHEAD_US:g} us per call, or under {SHORT_US:g} us and under {FAR_BELOW:.0%} "
        "of the roof at its intensity; else memory-bound below the ridge point (peak / bandwidth) or without "
        "counted FLOPs; else compute-bound")


def _point(row: dict, work: LayerWork | None, ceilings: Ceilings) -> RooflinePoint:
    precision = row.get("precision", "fp32")
    if work is None or work.flops <= 0:
        bound = classify(row["time_ms"], 0, 0, ceilings.peak(precision), ceilings.bandwidth_gbs)
        return RooflinePoint(row["name"], precision, 0, 0, 0.0, row["time_ms"], row["share"], 0.0, 0.0, bound)
    return _make_point(row["name"], precision, work.flops, work.bytes_at(precision), row["time_ms"],
                       row["share"], ceilings)


def _make_point(name: str, precision: str, flops: int, nbytes: int, time_ms: float, share: float,
                ceilings: Ceilings) -> RooflinePoint:
    peak = ceilings.peak(precision)
    intensity = flops / nbytes if nbytes > 0 else math.inf
    achieved = flops / (time_ms * 1e-3) / 1e9 if time_ms > 0 else 0.0
    roof = min(peak, intensity * ceilings.bandwidth_gbs)
    bound = classify(time_ms, flops, nbytes, peak, ceilings.bandwidth_gbs)
    return RooflinePoint(name, precision, int(flops), int(nbytes), float(intensity), float(time_ms),
                         float(share), float(achieved), float(roof), bound, achieved / roof if roof > 0 else 0.0)


def layer_work(handle: ModelHandle, input_shapes: dict[str, tuple[int, ...]]) -> dict[str, LayerWork]:
    """FLOPs, stored bytes and activation elements per layer of `handle` at one call's concrete
    `input_shapes` (the run's shapes, so dynamic axes count as measured)."""
    from accelstudio.core.model.inspect import inspect_model, resolve_inputs

    shapes = {k: tuple(int(d) for d in v) for k, v in input_shapes.items()}
    summary = inspect_model(handle, shapes)
    inputs = resolve_inputs(handle, shapes)
    extra: dict[str, LayerWork] = {}
    if handle.backend == "onnx":
        acts, extra = _onnx_activations(handle.onnx_model, inputs)
    else:
        acts = _torch_activations(handle.module, inputs, {layer.name for layer in summary.layers})
    work = {layer.name: LayerWork(layer.name, int(layer.flops), int(layer.bytes), int(acts.get(layer.name, 0)))
            for layer in summary.layers}
    return {**{k: v for k, v in extra.items() if k not in work}, **work}


def _onnx_activations(model, inputs) -> tuple[dict[str, int], dict[str, LayerWork]]:
    """Input and output elements of each weighted node, from the shapes inferred at `inputs`; and the work of
    the matrix products between two computed tensors (attention's Q.K and A.V), which have FLOPs but no
    weights, keyed by node name as the profile names them."""
    from accelstudio.core.model.inspect_onnx import FLOP_FORMULAS, node_flops
    from accelstudio.core.model.onnx_layers import weighted_nodes
    from accelstudio.core.model.onnx_shapes import infer_shapes

    shapes, _ = infer_shapes(model, inputs, FLOP_FORMULAS)
    out: dict[str, int] = {}
    weighted = weighted_nodes(model)
    for w in weighted:
        values = [v for v in w.node.input if v and v not in w.values] + list(w.node.output[:1])
        out[w.name] = sum(_elements(shapes.get(v)) for v in values)
    owned = {id(w.node) for w in weighted}
    extra: dict[str, LayerWork] = {}
    for node in model.graph.node:
        if id(node) in owned or not node.name or node.op_type not in FLOP_FORMULAS:
            continue
        flops = node_flops(node, shapes.get) or 0
        if flops > 0:
            elements = sum(_elements(shapes.get(v)) for v in list(node.input) + list(node.output[:1]) if v)
            extra[node.name] = LayerWork(node.name, int(flops), 0, elements)
    return out, extra


def _elements(shape) -> int:
    if not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        return 0
    return int(np.prod(shape, dtype=np.int64))


def _torch_activations(module, inputs, names: set[str]) -> dict[str, int]:
    """Input and output elements of each layer module, seen by hooks during one forward pass."""
    import torch

    found: dict[str, int] = {}

    def hook_for(name: str):
        def hook(_mod, args, output):
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if isinstance(output, torch.Tensor):
                tensors.append(output)
            found[name] = found.get(name, 0) + sum(t.numel() for t in tensors)
        return hook

    hooks = [m.register_forward_hook(hook_for(n)) for n, m in module.named_modules() if n in names]
    try:
        args = [torch.from_numpy(np.zeros(spec.shape, dtype=np.dtype(spec.dtype))) for spec in inputs]
        with torch.inference_mode():
            module.eval()(*args)
    except Exception:  # a forward that fails on zeros: activations not counted (weights still are)
        pass
    finally:
        for h in hooks:
            h.remove()
    return found
