"""Pruning: exact sparsity, overrides and exclusions, random, 2:4, structured (torch_pruning), ONNX."""

from __future__ import annotations

import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper

from accelstudio.core.compress.apply import apply_recipe, predict_sparsity
from accelstudio.core.errors import CompressionError, RecipeError
from accelstudio.core.model.examples import get_example
from accelstudio.core.model.inspect import inspect_model
from accelstudio.core.compress.pruning_onnx import prune_zeroing_onnx
from accelstudio.core.compress.pruning_plan import PrunableWeight, zero_masks
from accelstudio.core.recipe import PruneSpec, Recipe

from compress_helpers import example_handle, param_total, torch_weights


def prune(handle, **spec):
    return apply_recipe(handle, Recipe(prune=PruneSpec(**spec)))


def zeros_by_layer(module) -> dict[str, tuple[int, int]]:
    return {n: (int((w == 0).sum()), w.size) for n, w in torch_weights(module).items()}


@pytest.fixture(scope="module")
def cnn():
    return example_handle("digits-cnn")


def test_global_magnitude_hits_amount_with_one_threshold(cnn):
    result = prune(cnn, amount=0.6, scope="global")
    counts = zeros_by_layer(result.handle.module)
    total_zero = sum(z for z, _ in counts.values())
    total = sum(n for _, n in counts.values())
    assert abs(total_zero / total - 0.6) < 0.005
    before, after = torch_weights(cnn.module), torch_weights(result.handle.module)
    pruned = np.concatenate([np.abs(before[n][after[n] == 0]) for n in before])
    kept = np.concatenate([np.abs(before[n][after[n] != 0]) for n in before])
    assert pruned.max() <= kept.min()  # one global threshold, not one per layer
    achieved = {r.name: r.achieved for r in result.layers}
    assert len(set(round(a, 2) for a in achieved.values())) > 1  # layers differ under a global ranking
    for name, (z, n) in counts.items():
        assert achieved[name] == pytest.approx(z / n)


def test_layer_scope_prunes_each_layer_by_the_amount(cnn):
    result = prune(cnn, amount=0.35, scope="layer")
    for name, (z, n) in zeros_by_layer(result.handle.module).items():
        assert abs(z / n - 0.35) < 0.005, name
    for report in result.layers:
        assert report.requested == 0.35 and abs(report.achieved - 0.35) < 0.005
        assert report.params_after < report.params_before


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_overrides_and_exclusions_are_honored(cnn, scope):
    result = prune(cnn, amount=0.5, scope=scope, overrides={"fc1": 0.9}, exclude=("fc2",))
    counts = zeros_by_layer(result.handle.module)
    assert abs(counts["fc1"][0] / counts["fc1"][1] - 0.9) < 0.005
    assert np.array_equal(torch_weights(result.handle.module)["fc2"], torch_weights(cnn.module)["fc2"])
    rest = [counts[n] for n in ("conv1", "conv2")]
    if scope == "layer":
        assert all(abs(z / n - 0.5) < 0.005 for z, n in rest)
    else:
        assert abs(sum(z for z, _ in rest) / sum(n for _, n in rest) - 0.5) < 0.005
    reports = {r.name: r for r in result.layers}
    assert reports["fc2"].requested == 0.0 and reports["fc1"].requested == 0.9


@pytest.mark.parametrize("field_name,spec", [("prune.exclude", {"exclude": ("fc9",)}),
                                             ("prune.overrides", {"overrides": {"conv7": 0.3}})])
def test_unknown_layer_names_are_refused_with_the_real_names(cnn, field_name, spec):
    with pytest.raises(RecipeError) as info:
        prune(cnn, amount=0.5, **spec)
    assert info.value.field == field_name
    assert "conv1, conv2, fc1, fc2" in str(info.value)


def test_random_pruning_hits_the_amount_and_is_seeded(cnn):
    a = prune(cnn, amount=0.4, method="random", scope="layer")
    b = prune(cnn, amount=0.4, method="random", scope="layer")
    magnitude = prune(cnn, amount=0.4, method="l1-unstructured", scope="layer")
    for report in a.layers:
        assert abs(report.achieved - 0.4) < 0.005
    wa, wb, wm = (torch_weights(r.handle.module) for r in (a, b, magnitude))
    assert all(np.array_equal(wa[n] == 0, wb[n] == 0) for n in wa)
    assert not np.array_equal(wa["fc1"] == 0, wm["fc1"] == 0)
    g = prune(cnn, amount=0.4, method="random", scope="global")
    counts = zeros_by_layer(g.handle.module)
    assert abs(sum(z for z, _ in counts.values()) / sum(n for _, n in counts.values()) - 0.4) < 0.005


def test_two_four_zeroes_two_of_every_four_inputs(cnn):
    result = prune(cnn, amount=0.5, method="2:4")
    weights = torch_weights(result.handle.module)
    for name in ("conv2", "fc1", "fc2"):
        rows = weights[name].reshape(weights[name].shape[0], -1)
        groups = rows.reshape(rows.shape[0], -1, 4)
        assert np.all((groups == 0).sum(axis=-1) == 2), name
    reports = {r.name: r for r in result.layers}
    assert reports["fc1"].achieved == 0.5 and reports["conv2"].achieved == 0.5
    # conv1 has 1*3*3 = 9 inputs per output, not a multiple of 4: left dense and said so
    assert np.array_equal(weights["conv1"], torch_weights(cnn.module)["conv1"])
    assert reports["conv1"].requested == 0.0
    assert any(w.code == "2:4-skipped" and "conv1" in w.message for w in result.warnings)


def test_two_four_groups_follow_the_reduction_axis():
    w = np.arange(1, 33, dtype=np.float32).reshape(8, 4)  # MatMul right-hand side (K=8, N=4)
    masks, _ = zero_masks([PrunableWeight("m", w, k_axis=0)], PruneSpec(amount=0.5, method="2:4"))
    groups = masks["m"].T.reshape(4, 2, 4)  # per output column, groups of 4 along K
    assert np.all(groups.sum(axis=-1) == 2)
    assert masks["m"][:2].all() and not masks["m"][2:4].any()  # the smallest |w| in each group go


def test_masks_are_permanent_and_leave_no_reparametrization(cnn):
    result = prune(cnn, amount=0.5)
    module = result.handle.module
    assert set(module.state_dict()) == set(cnn.module.state_dict())
    assert not any(m._forward_pre_hooks for m in module.modules())
    assert all(isinstance(m.weight, torch.nn.Parameter) for m in module.modules() if hasattr(m, "weight"))


@pytest.mark.parametrize("name", ["digits-cnn", "digits-resnet"])
def test_structured_pruning_shrinks_and_keeps_shapes(name):
    handle = example_handle(name)
    result = prune(handle, amount=0.5, method="l1-structured", scope="layer")
    module = result.handle.module
    assert param_total(module) < 0.5 * param_total(handle.module)
    before, after = inspect_model(handle), inspect_model(result.handle)
    assert after.total_flops < 0.5 * before.total_flops
    x = torch.rand((3,) + tuple(handle.inputs[0].shape[1:]))
    with torch.no_grad():
        assert module(x).shape == handle.module(x).shape == (3, 10)
    reports = {r.name: r for r in result.layers}
    classifier = list(reports)[-1]
    assert reports[classifier].requested == 0.0 and reports[classifier].achieved == 0.0
    for r in reports.values():
        assert r.params_after <= r.params_before
        if r.name != classifier:
            assert 0.4 <= r.achieved <= 0.6


def test_structured_global_pruning_runs_on_resnet():
    handle = example_handle("digits-resnet")
    result = prune(handle, amount=0.3, method="l1-structured", scope="global", exclude=("stem",))
    reports = {r.name: r for r in result.layers}
    assert reports["stem"].achieved == 0.0
    assert param_total(result.handle.module) < param_total(handle.module)
    with torch.no_grad():
        assert result.handle.module(torch.rand(2, 1, 32, 32)).shape == (2, 10)


def test_structured_pruning_of_onnx_is_refused_clearly():
    handle = example_handle("digits-cnn", "onnx")
    with pytest.raises(CompressionError, match="prune the torch model"):
        prune(handle, amount=0.5, method="l1-structured")


@pytest.mark.parametrize("spec", [dict(amount=0.6, scope="global"), dict(amount=0.3, scope="layer"),
                                  dict(amount=0.5, method="2:4"), dict(amount=0.5, method="random")])
def test_onnx_pruning_matches_torch_and_runs(cnn, spec):
    onnx_handle = example_handle("digits-cnn", "onnx")
    torch_result, onnx_result = prune(cnn, **spec), prune(onnx_handle, **spec)
    assert [(r.name, r.achieved) for r in torch_result.layers] == [(r.name, r.achieved) for r in onnx_result.layers]
    inits = {t.name: numpy_helper.to_array(t) for t in onnx_result.handle.onnx_model.graph.initializer}
    for name, w in torch_weights(torch_result.handle.module).items():
        assert np.array_equal(inits[f"{name}.weight"] == 0, w == 0), name
    data = np.load(get_example("digits-cnn").data_path)
    session = ort.InferenceSession(onnx_result.handle.onnx_model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    logits = session.run(None, {"x": data["x"][:20]})[0]
    with torch.no_grad():
        expected = torch_result.handle.module(torch.from_numpy(data["x"][:20])).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def _gemm_model(trans_b: int) -> onnx.ModelProto:
    w = np.random.default_rng(0).normal(size=(8, 4) if not trans_b else (4, 8)).astype(np.float32)
    node = helper.make_node("Gemm", ["x", "fc.weight"], ["y"], transB=trans_b)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(w, "fc.weight")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("trans_b", [0, 1])
def test_onnx_two_four_follows_gemm_trans_b(trans_b):
    model = _gemm_model(trans_b)
    prune_zeroing_onnx(model, PruneSpec(amount=0.5, method="2:4"))
    w = numpy_helper.to_array(model.graph.initializer[0])
    per_output = w.T if not trans_b else w  # (N, K)
    assert np.all((per_output.reshape(4, 2, 4) == 0).sum(axis=-1) == 2)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("spec", [dict(amount=0.7, scope="global", exclude=("fc2",)),
                                  dict(amount=0.2, scope="layer", overrides={"conv2": 0.8}),
                                  dict(amount=0.5, method="2:4"), dict(amount=0.3, method="random")])
def test_prediction_equals_the_applied_result(backend, spec):
    handle = example_handle("digits-cnn", backend)
    predicted = predict_sparsity(handle, PruneSpec(**spec))
    assert predicted == list(prune(handle, **spec).layers)


def test_structured_prediction_is_an_estimate_close_to_apply(cnn):
    predicted = predict_sparsity(cnn, PruneSpec(amount=0.5, method="l1-structured", scope="layer"))
    applied = prune(cnn, amount=0.5, method="l1-structured", scope="layer").layers
    assert [r.name for r in predicted] == [r.name for r in applied]
    assert [r.achieved for r in predicted] == pytest.approx([r.achieved for r in applied], abs=0.05)
    assert sum(r.params_after for r in predicted) == pytest.approx(sum(r.params_after for r in applied), rel=0.1)


def test_prediction_is_fast_on_resnet_and_changes_nothing():
    handle = example_handle("digits-resnet")
    before = torch_weights(handle.module)
    spec = PruneSpec(amount=0.6, scope="global")
    predict_sparsity(handle, spec)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        reports = predict_sparsity(handle, spec)
        times.append(time.perf_counter() - start)
    assert sorted(times)[2] < 0.1
    total = sum(r.params_before for r in reports)
    assert total > 100_000
    after = torch_weights(handle.module)
    assert all(np.array_equal(before[n], after[n]) for n in before)


def test_onnx_weights_made_by_nodes_are_pruned():
    """onnx's light_squeezenet makes every conv weight with ConstantOfShape: pruning folds them into initializers,
    zeroes them, and the predicted sparsity matches the applied one."""
    import os

    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_squeezenet.onnx")
    model = onnx.load(path)
    spec = PruneSpec(amount=0.5, method="l1-unstructured", scope="layer")
    from accelstudio.core.compress.pruning_onnx import predict_onnx

    predicted, _ = predict_onnx(model, spec)
    assert not any(init.name == "conv1_w_0" for init in model.graph.initializer)  # prediction left it untouched
    reports, _ = prune_zeroing_onnx(model, spec)
    assert len(reports) == len(predicted) >= 20  # every weighted conv that carries its weight as a tensor
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    assert abs(float((weights["conv1_w_0"] == 0).mean()) - 0.5) < 0.01
    ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
