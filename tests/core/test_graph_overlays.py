"""Graph overlays: values per node from the model, the recipe, a run's profile, a stored sensitivity study, and
the diff of two real runs of a bundled example (pruned against quantized); groups' min / max / sum."""

from __future__ import annotations

import numpy as np
import pytest

from accelstudio.core.job import JobSpec, RunResult, RuntimeSettings
from accelstudio.core.graphs.source import op_graph_for_handle
from accelstudio.core.model.graph_extract import synthetic_transformer_graph
from accelstudio.core.model.graph_groups import GroupTree
from accelstudio.core.graphs import overlays as ov
from accelstudio.core.model.inspect import inspect_model
from accelstudio.core.model.loading import open_model
from accelstudio.core.recipe import Recipe

FAST = RuntimeSettings(threads=1, warmup=2, repeats=20, time_budget_s=0.5)


@pytest.fixture(scope="module")
def cnn():
    handle = open_model("example:digits-cnn", backend="onnx")
    return op_graph_for_handle(handle), inspect_model(handle)


def test_params_and_sparsity_join_nodes_by_layer_name(cnn):
    graph, summary = cnn
    params = ov.params_overlay(graph, summary)
    by_layer = {layer.name: layer.params for layer in summary.layers}
    for i, layer in enumerate(graph.layers):
        assert params.numeric[i] == (by_layer[layer] if layer else 0)
    assert params.numeric.sum() == sum(by_layer.values())
    reports = [{"name": "fc1", "achieved": 0.5}]
    sparsity = ov.sparsity_overlay(graph, summary, reports)
    assert sparsity.numeric[graph.layers.index("fc1")] == 0.5
    assert np.isnan(sparsity.numeric[[i for i, x in enumerate(graph.layers) if not x]]).all()
    assert sparsity.group_stat == "max" and "predicted" in sparsity.note


def test_precision_follows_the_mode_table_and_exclusions(cnn):
    graph, summary = cnn
    recipe = Recipe.from_dict({"quantize": {"mode": "dynamic-int8", "exclude": ["fc2"]}})
    prec = dict(zip(graph.layers, ov.precision_overlay(graph, summary, recipe, "onnx").categories))
    assert prec["fc1"] == "int8"
    assert prec["fc2"] == ov.KEPT_FLOAT  # excluded by the user
    assert prec["conv1"] == ov.KEPT_FLOAT  # dynamic int8 on ONNX Runtime leaves convolutions in float
    assert prec[""] == ov.NO_WEIGHTS
    static = ov.layer_precisions(summary, Recipe.from_dict({"quantize": {"mode": "static-int8"}}), "onnx")
    assert static["conv1"] == "int8"
    assert set(ov.layer_precisions(summary, Recipe.from_dict({"quantize": {"mode": "fp16"}}), "onnx").values()) \
        == {"fp16"}
    assert set(ov.layer_precisions(summary, Recipe(), "onnx").values()) == {"fp32"}


def test_group_stats_are_min_max_sum_of_the_nodes_inside():
    graph = synthetic_transformer_graph(600)
    tree = GroupTree(graph)
    values = np.full(len(graph), np.nan)
    values[::3] = np.arange(len(values[::3]), dtype=float)
    overlay = ov.Overlay("params", "P", numeric=values)
    gid = next(g for g in range(len(tree.groups)) if tree.groups[g].path == "/encoder/layer.1")
    inside = values[tree.group_nodes(gid)]
    inside = inside[np.isfinite(inside)]
    stats = ov.group_stats(overlay, tree, gid)
    assert (stats.minimum, stats.maximum, stats.total, stats.count) == (inside.min(), inside.max(), inside.sum(),
                                                                         len(inside))
    cats = ov.op_overlay(graph)
    counts = dict(ov.group_stats(cats, tree, gid).counts)
    assert sum(counts.values()) == tree.groups[gid].size() and counts["MatMul"] >= 6
    assert ov.dominant_label(ov.group_stats(cats, tree, gid)) == max(counts, key=counts.get)


def test_time_share_comes_from_the_profile_or_says_there_is_none(cnn):
    graph, _ = cnn
    bare = RunResult(status="done", metrics={}, run_id=3)
    assert "no profile in this run" in ov.time_overlay(graph, bare).note
    assert ov.time_overlay(graph, bare).empty
    relu = next(n for n, op in zip(graph.names, graph.op_types) if op == "Relu")
    profile = {"source": "onnxruntime", "calls": 20, "total_ms": 0.2,
               "layers": [{"name": "fc1", "op_type": "Gemm", "time_ms": 0.1, "share": 0.5, "precision": "fp32",
                           "provider": "CPUExecutionProvider", "nodes": 1},
                          {"name": relu, "op_type": "Relu", "time_ms": 0.02, "share": 0.1, "precision": "fp32",
                           "provider": "CPUExecutionProvider", "nodes": 1},
                          {"name": "not-here", "op_type": "Cast", "time_ms": 0.08, "share": 0.4, "precision": "fp32",
                           "provider": "CPUExecutionProvider", "nodes": 1}],
               "op_types": [], "conversions": {"count": 0, "time_ms": 0.0, "share": 0.0}}
    overlay = ov.time_overlay(graph, RunResult(status="done", metrics={"profile": profile}, run_id=4))
    assert overlay.numeric[graph.layers.index("fc1")] == 0.5
    assert overlay.numeric[graph.names.index(relu)] == 0.1
    assert "40% of the time is in nodes not drawn here" in overlay.note


def test_sensitivity_comes_from_a_stored_study(cnn, tmp_path):
    from accelstudio.core.runs.store import RunStore

    graph, _ = cnn
    store = RunStore(tmp_path / "runs.sqlite")
    result = {"target": "prune", "method": "l1-unstructured", "settings": ["30%", "60%"], "metric": "accuracy",
              "baseline": 0.97, "samples": 64, "screened": "64 of 360 validation samples", "elapsed_s": 1.0,
              "layers": [{"name": "fc1", "losses": [0.01, 0.2], "latency_share": None},
                         {"name": "conv1", "losses": [None, 0.05], "latency_share": None}]}
    study = store.get_study(store.add_study("sensitivity", {"target": "prune"}, result=result, status="done"))
    overlay = ov.sensitivity_overlay(graph, study)
    assert overlay.numeric[graph.layers.index("fc1")] == 0.2  # the worst drop over the settings
    assert overlay.numeric[graph.layers.index("conv1")] == 0.05
    assert np.isnan(overlay.numeric[graph.layers.index("fc2")])
    assert "64 of 360" in overlay.note
    assert "no sensitivity study" in ov.sensitivity_overlay(graph, None).note


def test_diff_of_two_real_runs_pruned_against_quantized(cnn):
    from accelstudio.core.graphs.runs import diff_of
    from accelstudio.core.pipeline import run_job

    graph, summary = cnn
    pruned = run_job(JobSpec(model="example:digits-cnn", recipe=Recipe.from_dict({"prune": {"amount": 0.5}}),
                             runtime=FAST))
    quantized = run_job(JobSpec(model="example:digits-cnn",
                                recipe=Recipe.from_dict({"quantize": {"mode": "dynamic-int8"}}), runtime=FAST))
    assert pruned.status == quantized.status == "done"
    overlay = diff_of(graph, summary, [pruned, quantized])
    by_layer = {layer: cat for layer, cat in zip(graph.layers, overlay.categories) if layer}
    assert by_layer["fc1"] == by_layer["fc2"] == "quantized + pruned"  # int8 now, and its zeros are gone
    assert by_layer["conv1"] == by_layer["conv2"] == "pruned"  # dynamic int8 keeps convolutions in float
    unchanged = [c for layer, c in zip(graph.layers, overlay.categories) if not layer]
    assert set(unchanged) <= {ov.UNCHANGED, "removed"}
    assert overlay.extra["added"] > 0  # the quantizer's DynamicQuantizeLinear / MatMulInteger nodes
    same = diff_of(graph, summary, [quantized, quantized])
    assert set(same.categories) == {ov.UNCHANGED}
    assert "select two runs" in diff_of(graph, summary, [pruned]).note
