"""The predicted size after a recipe matches inspect_model of the model the recipe really produces."""

from __future__ import annotations

import numpy as np
import pytest

from accelstudio.core.compress.apply import apply_recipe, predict_sparsity
from accelstudio.core.model.inspect import inspect_model
from accelstudio.core.model.loading import load_example, open_model
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe
from accelstudio.core.compress.size_prediction import predict_size
from tests.factories import tiny_encoder_onnx

TOLERANCE = 0.05  # predicted bytes within 5% of the produced model's inspected bytes
ONNX_MODES = ("dynamic-int8", "static-int8", "fp16", "weight-int8", "weight-int4")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    path, _module = tiny_encoder_onnx(tmp_path_factory.mktemp("encoder"), vocab=2000)
    handle = open_model(str(path))
    rng = np.random.default_rng(0)
    calib = {"input_ids": rng.integers(0, 2000, size=(64, 16), dtype=np.int64)}
    return handle, calib


def produced_and_predicted(handle, recipe, calib=None):
    before = inspect_model(handle)
    reports = predict_sparsity(handle, recipe.prune) if recipe.prune.active else None
    predicted = predict_size(before, recipe, reports)
    after = inspect_model(apply_recipe(handle, recipe, calib).handle)
    return before, predicted, after


def assert_close(predicted, after, label):
    error = abs(predicted.bytes - after.total_bytes) / after.total_bytes
    assert error <= TOLERANCE, (f"{label}: predicted {predicted.bytes:,} B, produced {after.total_bytes:,} B "
                                f"({error:.1%} off); notes: {predicted.notes}")


@pytest.mark.parametrize("mode", ONNX_MODES)
def test_onnx_example_prediction_matches_produced(mode):
    handle = load_example("digits-cnn", "onnx")
    recipe = Recipe(quantize=QuantSpec(mode=mode, per_channel=True))
    before, predicted, after = produced_and_predicted(handle, recipe)
    assert predicted.changes
    assert_close(predicted, after, f"digits-cnn onnx {mode}")
    if mode != "fp16":  # these modes leave the convolutions in float32: the prediction must say so
        convs = [layer.name for layer in before.layers if layer.op_type == "Conv"]
        if mode != "static-int8":
            assert set(convs) <= set(predicted.float_layers) and any("float" in n for n in predicted.notes)


@pytest.mark.parametrize("mode", ONNX_MODES)
def test_transformer_prediction_matches_produced(encoder, mode):
    handle, calib = encoder
    recipe = Recipe(quantize=QuantSpec(mode=mode, per_channel=True))
    before, predicted, after = produced_and_predicted(handle, recipe, calib)
    assert_close(predicted, after, f"encoder {mode}")
    if mode == "dynamic-int8":  # the embedding tables are 8-bit now: about a quarter of fp32
        tables = [layer for layer in after.layers if layer.op_type == "Gather"]
        assert tables and all(layer.dtype in ("int8", "uint8") for layer in tables)
        assert after.total_bytes < 0.3 * before.total_bytes


def test_excluded_embedding_stays_float_and_prediction_follows(encoder):
    handle, _ = encoder
    recipe = Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=True, exclude=("tok",)))
    before, predicted, after = produced_and_predicted(handle, recipe)
    tok = {layer.name: layer for layer in after.layers}["tok"]
    assert tok.dtype == "float32"
    assert_close(predicted, after, "encoder dynamic-int8 keeping tok in float")
    assert any("tok" in note for note in predicted.notes)


@pytest.mark.parametrize("quant", ("none", "dynamic-int8"))
def test_structured_pruning_prediction_matches_produced(quant):
    handle = load_example("digits-cnn", "torch")  # structured pruning runs on torch models
    recipe = Recipe(prune=PruneSpec(amount=0.5, method="l1-structured", scope="layer"),
                    quantize=QuantSpec(mode=quant, per_channel=True))
    before, predicted, after = produced_and_predicted(handle, recipe)
    assert after.total_bytes < before.total_bytes
    assert_close(predicted, after, f"digits-cnn l1-structured 50% + {quant}")


def test_global_structured_estimate_says_it_is_one():
    handle = load_example("digits-cnn", "torch")
    recipe = Recipe(prune=PruneSpec(amount=0.5, method="l1-structured", scope="global"))
    before, predicted, after = produced_and_predicted(handle, recipe)
    assert any("estimate" in note for note in predicted.notes)
    assert abs(predicted.bytes - after.total_bytes) / after.total_bytes <= 0.10


def test_unstructured_pruning_keeps_the_size_and_counts_nonzero():
    handle = load_example("digits-mlp", "onnx")
    recipe = Recipe(prune=PruneSpec(amount=0.5))
    before, predicted, after = produced_and_predicted(handle, recipe)
    assert predicted.bytes == before.total_bytes == after.total_bytes
    zeros = sum(layer.zeros for layer in after.layers)
    assert abs(predicted.nonzero_params - (after.total_params - zeros)) <= 0.01 * after.total_params


def test_no_recipe_changes_nothing():
    summary = inspect_model(load_example("digits-mlp", "onnx"))
    predicted = predict_size(summary, Recipe())
    assert not predicted.changes and predicted.bytes == summary.total_bytes and not predicted.notes


@pytest.mark.parametrize("mode", ("dynamic-int8", "static-int8", "fp16", "bf16", "weight-int8", "weight-int4"))
def test_torch_example_prediction_matches_produced(mode):
    handle = load_example("digits-cnn", "torch")
    recipe = Recipe(quantize=QuantSpec(mode=mode, per_channel=True))
    _before, predicted, after = produced_and_predicted(handle, recipe)
    assert_close(predicted, after, f"digits-cnn torch {mode}")


@pytest.mark.parametrize("method", ("l1-unstructured", "l1-structured", "2:4"))
def test_unpruned_reports_match_the_planner_at_zero(method):
    from accelstudio.core.compress.size_prediction import unpruned_reports

    handle = load_example("digits-cnn", "torch")
    planner = {r.name: r for r in predict_sparsity(handle, PruneSpec(amount=0.0, method=method))}
    shortcut = {r.name: r for r in unpruned_reports(inspect_model(handle), method)}
    assert planner and set(planner) <= set(shortcut)
    for name, report in planner.items():
        assert (shortcut[name].achieved, shortcut[name].params_after) == pytest.approx(
            (report.achieved, report.params_after))
