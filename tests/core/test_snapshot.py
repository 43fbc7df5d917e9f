"""Data-only model snapshots: a snapshot read back gives the same summary, weights, histograms and pruning
predictions as the loaded model; reading one runs no code; a trusted file opened in a separate process comes
back as a snapshot in the worker's result message or as one typed error, and leaves no process behind."""

from __future__ import annotations

import base64
import threading
import time

import numpy as np
import pytest

from accelstudio.core.compress.apply import predict_sparsity
from accelstudio.core.errors import CompressionError, UnsupportedModelError
from accelstudio.core.model.inspect import (
    UnknownLayerError, inspect_model, layer_weights, summary_to_dict, weight_histogram, values_histogram,
)
from accelstudio.core.model.loading import open_model
from accelstudio.core.recipe import PruneSpec
from accelstudio.core.compress.snapshot import (
    SnapshotError, model_layer_weights, model_predict_sparsity, read_snapshot, snapshot_model,
    summary_from_dict,
)
from accelstudio.core.model.model_data import ModelData
from tests import factories as fx

SPECS = [
    PruneSpec(amount=0.5),
    PruneSpec(amount=0.3, scope="layer", overrides={"fc": 0.8}, exclude=("conv",)),
    PruneSpec(amount=0.4, method="random"),
    PruneSpec(amount=0.5, method="2:4"),
    PruneSpec(amount=0.5, method="l1-structured"),
]


def _snapshot(ref: str, **kw) -> ModelData:
    return read_snapshot(snapshot_model(ref, **kw))


def test_snapshot_of_a_pickled_module_matches_the_loaded_model(tmp_path):
    path = str(fx.pickled_module_file(tmp_path))
    handle = open_model(path, trust=True)
    snap = _snapshot(path, trust=True)
    assert summary_to_dict(snap.summary) == summary_to_dict(inspect_model(handle))
    assert (snap.name, snap.backend, snap.source_format) == (handle.name, "torch", handle.source_format)
    for layer in ("conv", "fc"):
        stored = model_layer_weights(snap, layer)
        assert stored.dtype == np.float32 and not stored.flags.writeable
        np.testing.assert_array_equal(stored, layer_weights(handle, layer))
        for got, want in zip(values_histogram(stored), weight_histogram(handle, layer)):
            np.testing.assert_array_equal(got, want)
    for spec in SPECS:
        assert model_predict_sparsity(snap, spec) == predict_sparsity(handle, spec), spec
    with pytest.raises(UnknownLayerError):
        model_layer_weights(snap, "nope")


def test_each_array_is_stored_once(tmp_path):
    snap = _snapshot("example:digits-cnn", trust=False)
    assert [w.name for w in snap.prunable] == ["conv1", "conv2", "fc1", "fc2"]
    assert all(w.array is snap.weights[w.name] for w in snap.prunable)
    assert len(snap.channels) == 4 and snap.bias_sizes["fc2"] == 10


def test_onnx_snapshot_refuses_structured_prediction_like_the_model():
    handle = open_model("example:digits-mlp", backend="onnx")
    snap = _snapshot("example:digits-mlp", trust=False, backend="onnx")
    assert snap.channels is None and snap.backend == "onnx"
    assert model_predict_sparsity(snap, SPECS[0]) == predict_sparsity(handle, SPECS[0])
    for model in (handle, snap):
        with pytest.raises(CompressionError):
            model_predict_sparsity(model, SPECS[-1])


def test_summary_round_trip_keeps_dynamic_dims():
    summary = inspect_model(open_model("example:digits-mlp"))
    again = summary_from_dict(summary_to_dict(summary))
    assert summary_to_dict(again) == summary_to_dict(summary)
    assert again.layers == summary.layers


def test_a_snapshot_payload_is_plain_json():
    import json

    payload = snapshot_model("example:digits-mlp", trust=False)
    again = read_snapshot(json.loads(json.dumps(payload)))
    np.testing.assert_array_equal(again.weights["fc1"], _snapshot("example:digits-mlp", trust=False).weights["fc1"])


@pytest.mark.parametrize("damage", ["not-a-dict", "wrong-format", "missing-array", "bad-base64", "wrong-shape",
                                    "no-summary"])
def test_incomplete_or_damaged_snapshot_is_a_snapshot_error(damage):
    payload = snapshot_model("example:digits-mlp", trust=False)
    first = next(iter(payload["arrays"]))
    if damage == "not-a-dict":
        payload = [payload]
    elif damage == "wrong-format":
        payload["format"] = 99
    elif damage == "missing-array":
        del payload["arrays"][first]
    elif damage == "bad-base64":
        payload["arrays"][first]["data"] = "not base64 !"
    elif damage == "wrong-shape":
        payload["arrays"][first]["data"] = base64.b64encode(b"\0" * 12).decode()
    else:
        del payload["summary"]
    with pytest.raises(SnapshotError):
        read_snapshot(payload)


# -- in a separate process -----------------------------------------------------------------------------------
def test_trusted_torchscript_comes_back_as_a_snapshot(tmp_path):
    from accelstudio.worker.inspect_client import open_isolated

    path = str(fx.torchscript_file(tmp_path))
    snap = open_isolated(path)
    handle = open_model(path, trust=True)
    assert summary_to_dict(snap.summary) == summary_to_dict(inspect_model(handle))
    np.testing.assert_array_equal(model_layer_weights(snap, "fc"), layer_weights(handle, "fc"))
    assert model_predict_sparsity(snap, SPECS[0]) == predict_sparsity(handle, SPECS[0])


@pytest.mark.parametrize("action, error, text", [
    ("abort", "ModelCrashedError", "the model crashed while loading (SIGABRT)"),
    ("stdout_garbage", "UnsupportedModelError", "not a torch nn.Module"),
])
def test_trusted_file_failing_in_its_process_gives_a_typed_error(tmp_path, action, error, text):
    from accelstudio.worker import inspect_client

    path = fx.crashing_pickle_file(tmp_path, action)
    with pytest.raises((inspect_client.ModelCrashedError, UnsupportedModelError)) as info:
        inspect_client.open_isolated(str(path))
    assert type(info.value).__name__ == error and text in str(info.value)
    assert info.value.path == path


def test_hung_load_times_out(tmp_path, monkeypatch):
    from accelstudio.worker.inspect_client import ModelLoadTimeoutError, open_isolated

    monkeypatch.setenv("ACCELSTUDIO_TEST_HANG_STAGE", "load")
    with pytest.raises(ModelLoadTimeoutError, match="still loading after 2 s"):
        open_isolated(str(fx.torchscript_file(tmp_path)), timeout_s=2)


def test_cancel_ends_a_hung_load_at_once(tmp_path, monkeypatch):
    from accelstudio.core.errors import JobCancelled
    from accelstudio.worker.inspect_client import open_isolated

    monkeypatch.setenv("ACCELSTUDIO_TEST_HANG_STAGE", "load")
    cancel = threading.Event()
    cancel.set()
    start = time.monotonic()
    with pytest.raises(JobCancelled):
        open_isolated(str(fx.torchscript_file(tmp_path)), cancel=cancel)
    assert time.monotonic() - start < 60  # not the 300 s stage timeout


def test_frozen_app_inspects_through_its_own_worker_executable(tmp_path):
    """`<app> --worker` (what a frozen app starts) is dispatched by the CLI to the worker child, which runs
    a request of kind inspect and sends the snapshot in its result message."""
    import subprocess
    import sys

    from accelstudio.worker import protocol

    payload = {"model": str(fx.torchscript_file(tmp_path)), "trust": True, "backend": None}
    app = "import sys; from accelstudio.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", app, "--worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)  # stdin stays open: its end means "the parent is gone"
    proc.stdin.write(protocol.encode_request("inspect", payload).encode())
    proc.stdin.flush()
    messages = []
    for line in proc.stdout:
        messages.append(protocol.parse_line(line))
        if messages[-1].type in ("result", "error"):
            break
    assert proc.wait(timeout=60) == 0 and messages[-1].type == "result", messages[-1]
    proc.stdin.close()
    proc.stdout.close()
    assert [stage for stage in (m.stage for m in messages[:-1])] == ["startup", "load", "inspect", "snapshot"]
    assert [layer.name for layer in read_snapshot(messages[-1].payload).summary.layers] == ["conv", "fc"]


def test_model_data_carries_inputs_classes_and_attention_for_the_checks():
    from accelstudio.core.compress.feasibility import RecipeNotPossible, check_model_feasible
    from accelstudio.core.recipe import Recipe

    handle = open_model("example:digits-vit", backend="torch")
    data = _snapshot("example:digits-vit", trust=False, backend="torch")
    assert data.attention and data.is_torch and data.num_classes == handle.num_classes == 10
    assert [(i.name, i.shape, i.dtype) for i in data.inputs] == [(i.name, i.shape, i.dtype) for i in handle.inputs]
    structured = Recipe(prune=PruneSpec(amount=0.3, method="l1-structured"))
    for model in (handle, data):
        with pytest.raises(RecipeNotPossible, match="attention model"):
            check_model_feasible(model, structured)
    mlp = _snapshot("example:digits-mlp", trust=False, backend="onnx")
    assert not mlp.attention and not mlp.is_torch
    check_model_feasible(mlp, structured)  # no attention: only the format decides


def test_a_trusted_attention_model_opened_in_a_worker_is_refused_structured_pruning(tmp_path):
    import torch

    from accelstudio.core.compress.feasibility import RecipeNotPossible, check_model_feasible
    from accelstudio.core.model.architectures import get_architecture
    from accelstudio.core.recipe import Recipe
    from accelstudio.worker.inspect_client import open_isolated

    path = tmp_path / "vit_module.pt"
    torch.save(get_architecture("digits-vit").build().eval(), path)
    data = open_isolated(str(path))
    assert data.attention and data.is_torch
    with pytest.raises(RecipeNotPossible, match="attention model"):
        check_model_feasible(data, Recipe(prune=PruneSpec(amount=0.3, method="l1-structured")))
