"""What the Graph tab can colour nodes by: one value per node, from the model, the recipe, a run or a study.

Every overlay is either numeric (a float per node, NaN where it has none) or categorical (a label per node).
Groups show the min / max / sum of the nodes inside them (`group_stats`); numeric overlays say which of those
colours a group (`group_stat`: sums for additive figures such as parameters and time, the maximum for rates
such as sparsity and sensitivity). Values are joined to nodes by layer name, the same name the layer table,
the run's layers, the profile and the sensitivity study use; profile entries that name a node join by node name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelstudio.core.compress.size_prediction import KIND_OF_OP
from accelstudio.core.model.graph_groups import GroupTree, OpGraph
from accelstudio.core.quant_modes import quant_mode
from accelstudio.core.recipe import Recipe

OVERLAYS: tuple[tuple[str, str], ...] = (
    ("op", "Op type"), ("params", "Parameters"), ("sparsity", "Sparsity"),
    ("precision", "Precision after recipe"), ("time", "Time share (run profile)"),
    ("sensitivity", "Sensitivity (study)"), ("diff", "Diff of two runs"),
)
NO_WEIGHTS = "no weights"
KEPT_FLOAT = "kept in float"
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Overlay:
    """Values for every node of a graph. `numeric` (floats, NaN = none) or `categories` (labels, "" = none) is
    set; `title` heads the legend, `unit` formats numbers ("%", "params", "ms"), `note` says where the values
    came from or why there are none, `group_stat` colours groups ("sum" or "max")."""

    kind: str
    title: str
    numeric: np.ndarray | None = None
    categories: tuple[str, ...] | None = None
    unit: str = ""
    note: str = ""
    group_stat: str = "sum"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.categories is not None:  # label codes, so group counts are one bincount, not a Python loop
            index: dict[str, int] = {}
            codes = np.fromiter((index.setdefault(c, len(index)) for c in self.categories), dtype=np.int64,
                                count=len(self.categories))
            object.__setattr__(self, "codes", codes)
            object.__setattr__(self, "labels", tuple(index))

    @property
    def empty(self) -> bool:
        if self.numeric is not None:
            return not np.isfinite(self.numeric).any()
        return not self.categories or not any(self.categories)


@dataclass(frozen=True)
class GroupStats:
    """min / max / sum over the nodes of a group that have a value, and how many have one; for categorical
    overlays `counts` of each label."""

    minimum: float
    maximum: float
    total: float
    count: int
    counts: tuple[tuple[str, int], ...] = ()

    def value(self, stat: str) -> float:
        return self.total if stat == "sum" else self.maximum


def _by_layer(graph: OpGraph, values: dict[str, float]) -> np.ndarray:
    return np.array([values.get(layer, np.nan) if layer else np.nan for layer in graph.layers], dtype=float)


def op_overlay(graph: OpGraph) -> Overlay:
    """Each node's op type."""
    return Overlay("op", "Op type", categories=graph.op_types, note=f"{len(set(graph.op_types))} op types")


def params_overlay(graph: OpGraph, summary: Any) -> Overlay:
    """Parameters of the layer each weighted node computes (0 for nodes without weights)."""
    values = _by_layer(graph, {layer.name: float(layer.params) for layer in summary.layers})
    return Overlay("params", "Parameters", numeric=np.nan_to_num(values, nan=0.0), unit="params",
                   note="weight + bias of each layer")


def sparsity_overlay(graph: OpGraph, summary: Any, reports: list | None = None) -> Overlay:
    """Share of zero weights per layer: predicted after the recipe when `reports` (LayerReport or run layer
    dicts) are given, else as stored in the model."""
    values = {layer.name: layer.sparsity for layer in summary.layers}
    for report in reports or []:
        name = report["name"] if isinstance(report, dict) else report.name
        values[name] = float(report["achieved"] if isinstance(report, dict) else report.achieved)
    note = "after the recipe (predicted)" if reports else "as stored in the model"
    return Overlay("sparsity", "Sparsity", numeric=_by_layer(graph, values), unit="%", note=note, group_stat="max")


def layer_precisions(summary: Any, recipe: Recipe, backend: str) -> dict[str, str]:
    """The precision each weighted layer is stored in after `recipe` on `backend` ("onnx" or "torch"), by the
    size prediction's table of which kinds each mode quantizes: fp32, int8, int4, fp16, bf16, or kept in float
    (excluded by the user, or a kind the mode leaves alone)."""
    quant = recipe.quantize
    mode = quant_mode(quant.mode)
    kinds = mode.stored_kinds(backend)
    excluded = set(quant.exclude)
    out = {}
    for layer in summary.layers:
        if not mode.active:
            out[layer.name] = "fp32" if layer.dtype in ("float32", "") else layer.dtype
        elif layer.name in excluded:
            out[layer.name] = KEPT_FLOAT
        elif mode.half:
            out[layer.name] = quant.mode
        elif mode.simulated:
            out[layer.name] = f"int{quant.bits} grid (fp32)"
        elif KIND_OF_OP.get(layer.op_type) in kinds and layer.params:
            out[layer.name] = f"int{mode.bits}"
        else:
            out[layer.name] = KEPT_FLOAT
    return out


def precision_overlay(graph: OpGraph, summary: Any, recipe: Recipe, backend: str, source: str = "") -> Overlay:
    """Each weighted node's precision after `recipe`; nodes without weights are "no weights"."""
    by_layer = layer_precisions(summary, recipe, backend)
    cats = tuple(by_layer.get(layer, NO_WEIGHTS) if layer else NO_WEIGHTS for layer in graph.layers)
    return Overlay("precision", "Precision after recipe", categories=cats,
                   note=source or f"{recipe.quantize.mode} on {backend}")


def run_recipe(run: Any) -> tuple[Recipe, str]:
    """The recipe a stored run used and the backend it ran on ("onnx" for onnxruntime, else "torch")."""
    spec = run.spec or {}
    recipe = Recipe.from_dict(spec.get("recipe", {})) if spec.get("recipe") else Recipe()
    runtime = (spec.get("runtime") or {}).get("runtime", "onnxruntime")
    return recipe, "onnx" if runtime == "onnxruntime" else "torch"


def time_overlay(graph: OpGraph, run: Any | None) -> Overlay:
    """Share of the run's time per node, from metrics["profile"] (joined by layer name, else node name)."""
    profile = (run.metrics or {}).get("profile") if run is not None else None
    if run is None:
        return Overlay("time", "Time share", numeric=np.full(len(graph), np.nan), note="select a run first")
    if not profile or not profile.get("layers"):
        return Overlay("time", "Time share", numeric=np.full(len(graph), np.nan),
                       note=f"no profile in this run (run {run.run_id})")
    node_index = {name: i for i, name in enumerate(graph.names)}
    layer_index = {layer: i for i, layer in enumerate(graph.layers) if layer}
    values = np.full(len(graph), np.nan)
    missed = 0.0
    for entry in profile["layers"]:
        i = layer_index.get(entry.get("name"), node_index.get(entry.get("name")))
        if i is None:
            missed += float(entry.get("share", 0.0))
            continue
        values[i] = (0.0 if np.isnan(values[i]) else values[i]) + float(entry.get("share", 0.0))
    note = f"run {run.run_id}, {profile.get('source', '?')} profile, {profile.get('total_ms', 0):.3g} ms per call"
    if missed > 0.005:
        note += f"; {missed:.0%} of the time is in nodes not drawn here"
    return Overlay("time", "Time share", numeric=values, unit="%", note=note)


def sensitivity_overlay(graph: OpGraph, study: Any | None) -> Overlay:
    """Worst drop in the study's metric over its settings, per layer (StudyRecord of kind "sensitivity")."""
    result = getattr(study, "result", None) if study is not None else None
    if not result or not result.get("layers"):
        return Overlay("sensitivity", "Sensitivity", numeric=np.full(len(graph), np.nan),
                       note="no sensitivity study stored for this model")
    worst = {}
    for layer in result["layers"]:
        losses = [v for v in layer.get("losses", []) if v is not None]
        if losses:
            worst[layer["name"]] = max(losses)
    settings = ", ".join(result.get("settings", []))
    note = (f"{result.get('target', '?')} {result.get('method', '')}: worst drop in {result.get('metric', '?')} "
            f"over {settings}; {result.get('screened', '')}")
    return Overlay("sensitivity", "Sensitivity", numeric=_by_layer(graph, worst), unit="drop", note=note,
                   group_stat="max")


def diff_overlay(graph: OpGraph, summary: Any, run_a: Any, run_b: Any,
                 nodes_b: set[str] | None = None, nodes_a: set[str] | None = None) -> Overlay:
    """What run B did to each node that run A did not: quantized (its layer's stored precision changed),
    pruned (its layer's sparsity changed by more than half a point) - from the two runs' recipes and stored
    per-layer results - or removed (in A's optimized graph but not in B's, when both graphs are given as
    node-name sets: a node a quantizer replaced, or one pruning took out)."""
    recipe_a, backend_a = run_recipe(run_a)
    recipe_b, backend_b = run_recipe(run_b)
    prec_a, prec_b = layer_precisions(summary, recipe_a, backend_a), layer_precisions(summary, recipe_b, backend_b)
    sparse_a = {d["name"]: float(d.get("achieved", 0.0)) for d in run_a.layers or []}
    sparse_b = {d["name"]: float(d.get("achieved", 0.0)) for d in run_b.layers or []}
    cats = []
    for name, layer in zip(graph.names, graph.layers):
        quantized = bool(layer) and _stored_as(prec_a.get(layer)) != _stored_as(prec_b.get(layer))
        pruned = bool(layer) and abs(sparse_a.get(layer, 0.0) - sparse_b.get(layer, 0.0)) > 0.005
        if quantized or pruned:
            cats.append("quantized + pruned" if quantized and pruned else "quantized" if quantized else "pruned")
        elif nodes_a is not None and nodes_b is not None and name in nodes_a and name not in nodes_b:
            cats.append("removed")
        else:
            cats.append(UNCHANGED)
    note = f"run {run_b.run_id} against run {run_a.run_id}"
    added = len(nodes_b - nodes_a) if nodes_a is not None and nodes_b is not None else None
    if added:
        note += f"; {added} node(s) added in run {run_b.run_id}'s graph (not drawn: not in this model)"
    return Overlay("diff", "Diff", categories=tuple(cats), note=note, extra={"added": added or 0})


def _stored_as(precision: str | None) -> str | None:
    """What a precision label means for the stored weights: the float32 labels are all the same."""
    return "fp32" if precision in ("fp32", "float32", KEPT_FLOAT) or (precision or "").endswith("(fp32)") \
        else precision


def group_stats(overlay: Overlay, tree: GroupTree, gid: int) -> GroupStats:
    """min / max / sum (numeric) or label counts (categorical) over every node inside group `gid`."""
    nodes = tree.group_nodes(gid)
    if overlay.numeric is not None:
        values = overlay.numeric[nodes]
        values = values[np.isfinite(values)]
        if not len(values):
            return GroupStats(np.nan, np.nan, np.nan, 0)
        return GroupStats(float(values.min()), float(values.max()), float(values.sum()), int(len(values)))
    counts = np.bincount(overlay.codes[nodes], minlength=len(overlay.labels))
    order = np.argsort(-counts, kind="stable")
    pairs = tuple((overlay.labels[i], int(counts[i])) for i in order.tolist() if counts[i])
    return GroupStats(np.nan, np.nan, np.nan, len(nodes), pairs)


def dominant_label(stats: GroupStats, quiet: tuple[str, ...] = (NO_WEIGHTS, UNCHANGED, "")) -> str:
    """The label that best describes a group: its most common label other than the quiet ones, if any."""
    for label, _count in stats.counts:
        if label not in quiet:
            return label
    return stats.counts[0][0] if stats.counts else ""
