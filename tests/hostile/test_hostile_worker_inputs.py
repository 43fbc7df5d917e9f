"""Hostile model files and data sets through the REAL worker process (execute_job, saving to the app's store):
crashes, aborts, memory bombs and endless loops end one job with the right reason; code in untrusted files
never runs; the store keeps earlier runs; nothing is written outside $ACCELSTUDIO_HOME; inputs are unchanged."""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest

from accelstudio.core.errors import DatasetError, ExternalDataError, ModelTooLargeError, TrustRequiredError, UnsupportedModelError
from accelstudio.worker.client import execute_job
from hostile_helpers import FAST_TORCH, STARTUP_SAFE_TIMEOUT_S, digits_npz, fast_spec, pickled_npz
from tests import factories as fx
from worker_checks import assert_store_survived, assert_user_error, store_with_history

ORT_PROBE = ("import sys, numpy as np, onnxruntime as ort; s = ort.InferenceSession(sys.argv[1], "
             "providers=['CPUExecutionProvider']); print('session created', flush=True); "
             "s.run(None, {'x': np.ones((1, 4), np.float32)})")


def _run(spec, sandbox, store):
    sandbox.freeze()
    result = execute_job(spec, store=store)
    sandbox.assert_untouched()
    return result


def test_einsum_crasher_really_crashes_ort_and_fails_one_job(sandbox):
    model = fx.onnx_einsum_crasher(sandbox.inputs)
    probe = subprocess.run([sys.executable, "-c", ORT_PROBE, str(model)], capture_output=True, text=True,
                           timeout=120)
    assert "session created" in probe.stdout and probe.returncode == -signal.SIGSEGV, (probe.returncode,
                                                                                      probe.stderr[-500:])
    store, earlier = store_with_history()
    result = _run(fast_spec(model), sandbox, store)
    assert result.status == "failed"
    assert result.reason == "worker crashed: SIGSEGV (segmentation fault) during stage 'benchmark'"
    assert_store_survived(store, earlier, result)


@pytest.mark.parametrize("action, signame", [("abort", "SIGABRT (abort)"),
                                             pytest.param("segfault", "SIGSEGV", marks=pytest.mark.slow)])
def test_trusted_file_that_kills_its_loader_fails_one_job(action, signame, sandbox):
    """A file the user trusted runs its code in the worker, never in the parent: os.abort() / a NULL read."""
    model = fx.crashing_pickle_file(sandbox.inputs, action)
    store, earlier = store_with_history()
    result = _run(fast_spec(model, runtime=FAST_TORCH, trust=True), sandbox, store)
    assert result.status == "failed" and result.reason.startswith(f"worker crashed: {signame}")
    assert result.reason.endswith("during stage 'load'")
    assert_store_survived(store, earlier, result)


def test_trusted_file_writing_to_stdout_cannot_garble_the_protocol(sandbox):
    model = fx.crashing_pickle_file(sandbox.inputs, "stdout_garbage")
    store, earlier = store_with_history()
    result = _run(fast_spec(model, runtime=FAST_TORCH, trust=True), sandbox, store)
    assert_user_error(result, UnsupportedModelError.category, model.name)
    assert "notes" not in result.metrics  # no garbled line reached the parent
    assert_store_survived(store, earlier, result)


def test_constant_of_shape_bomb_fails_cleanly_under_the_default_limit(sandbox):
    model = fx.onnx_constant_of_shape_bomb(sandbox.inputs)  # 4 TB of float32
    store, earlier = store_with_history()
    result = _run(fast_spec(model), sandbox, store)
    assert result.status == "failed"
    assert result.reason == "out of memory during stage 'benchmark' (limit 8192 MB)"
    assert_store_survived(store, earlier, result)


def test_memory_limit_is_enforced(sandbox):
    """3.6 GB would fit this machine, but not the job's 2048 MB limit."""
    model = fx.onnx_constant_of_shape_bomb(sandbox.inputs, (30_000, 30_000))
    store, earlier = store_with_history()
    result = _run(fast_spec(model, memory_limit_mb=2048), sandbox, store)
    assert result.status == "failed"
    assert result.reason == "out of memory during stage 'benchmark' (limit 2048 MB)"
    assert_store_survived(store, earlier, result)


def test_endless_loop_hits_the_stage_timeout(sandbox):
    model = fx.onnx_endless_loop(sandbox.inputs)
    store, earlier = store_with_history()
    result = _run(fast_spec(model, timeout_s=STARTUP_SAFE_TIMEOUT_S), sandbox, store)
    assert result.status == "failed"
    assert result.reason == f"stage 'benchmark' timed out after {STARTUP_SAFE_TIMEOUT_S} s"
    assert_store_survived(store, earlier, result)


@pytest.mark.parametrize("fmt", ["zip", "legacy", "raw"])
def test_marker_pickle_never_runs_in_the_worker(fmt, sandbox):
    marker = sandbox.root / "MARKER"
    model = fx.malicious_pickle_file(sandbox.inputs, marker, fmt)
    store, earlier = store_with_history()
    result = _run(fast_spec(model, runtime=FAST_TORCH), sandbox, store)
    assert_user_error(result, TrustRequiredError.category, model.name)
    assert not marker.exists()
    assert_store_survived(store, earlier, result)


BAD_FILES = {
    "empty.onnx": (lambda d: fx.empty_file(d, "e.onnx"), "corrupt or truncated"),
    "html.onnx": (fx.text_file, "not a model file"),
    "external-dotdot": (lambda d: fx.hostile_external_onnx(d, "dotdot"), ExternalDataError.category),
    "safetensors-huge-header": (lambda d: fx.hostile_safetensors(d, "huge_header"), "corrupt or truncated"),
    "zip-bomb-3gib.pt": (fx.zip_bomb_pt_gigabytes, ModelTooLargeError.category),
    "pt2-untrusted": (fx.pt2_file, TrustRequiredError.category),
    "custom-op": (fx.onnx_custom_op, "unsupported format or opset"),
}


SLOW_BAD_FILES = {"safetensors-huge-header", "pt2-untrusted", "custom-op"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_BAD_FILES else c
                                  for c in sorted(BAD_FILES)])
def test_bad_model_file_fails_the_job_at_load(case, sandbox):
    make, category = BAD_FILES[case]
    model = make(sandbox.inputs)
    store, earlier = store_with_history()
    result = _run(fast_spec(model), sandbox, store)
    assert_user_error(result, category, model.name)
    assert_store_survived(store, earlier, result)


def test_pickled_data_set_never_runs_in_the_worker(sandbox):
    marker = sandbox.root / "MARKER"
    data = pickled_npz(sandbox.inputs, marker)
    store, earlier = store_with_history()
    result = _run(fast_spec("example:digits-mlp", data=str(data)), sandbox, store)
    assert_user_error(result, DatasetError.category, data.name)
    assert "pickled" in result.reason and not marker.exists()
    assert_store_survived(store, earlier, result)


@pytest.mark.slow
def test_nan_data_set_fails_the_job_at_data(sandbox):
    x = np.full((20, 64), 0.5, np.float32)
    x[2, 2] = np.nan
    data = digits_npz(sandbox.inputs, "nan.npz", x=x)
    store, earlier = store_with_history()
    result = _run(fast_spec("example:digits-mlp", data=str(data)), sandbox, store)
    assert_user_error(result, DatasetError.category, data.name)
    assert "NaN or Inf" in result.reason
    assert_store_survived(store, earlier, result)


def test_artifacts_of_a_good_run_go_to_the_app_folder_only(sandbox):
    """The control case: a successful run writes its store and artifact under $ACCELSTUDIO_HOME only."""
    model = fx.onnx_example(sandbox.inputs)
    store, earlier = store_with_history()
    result = _run(fast_spec(model, keep_artifact=True), sandbox, store)
    assert result.status == "done", result.reason
    assert result.artifact and str(sandbox.app_home) in result.artifact
    assert_store_survived(store, earlier, result)
