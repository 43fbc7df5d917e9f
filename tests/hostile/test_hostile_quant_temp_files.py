"""Quantizing through the REAL worker process writes nothing outside $ACCELSTUDIO_HOME: ONNX Runtime's
pre-processing (symbolic shape inference) saves 'sym_shape_infer_temp.onnx' and a '<uuid>.data' file holding
every initializer of 1 KiB or more into the working directory whenever it cannot infer every shape (here: two
inputs whose batch dimensions carry different symbolic names). The worker runs from the sandbox's working
directory, which must be left as it was."""

from __future__ import annotations

import os

import numpy as np

from accelstudio.core.recipe import QuantSpec, Recipe
from accelstudio.worker.client import execute_job
from hostile_helpers import fast_spec
from tests import factories as fx
from worker_checks import assert_store_survived, store_with_history


def test_quantizing_leaves_the_working_directory_untouched(sandbox):
    """Static int8 (pre-processing, calibration, quantization); the other modes are checked in-process in
    tests/core/test_quant_onnx.py."""
    model = fx.onnx_unmerged_batch_dims(sandbox.inputs)  # a 4 MiB weight: the stray file would be that big
    data = sandbox.inputs / "data.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.random((48, 1024), dtype=np.float32), x2=rng.random((48, 1024), dtype=np.float32))
    store, earlier = store_with_history()
    assert os.getcwd() == str(sandbox.cwd)
    sandbox.freeze()
    result = execute_job(fast_spec(model, recipe=Recipe(quantize=QuantSpec("static-int8", calib_samples=32)),
                                   data=str(data)), store=store)
    assert result.status == "done", result.reason
    sandbox.assert_untouched()
    assert list(sandbox.cwd.iterdir()) == []
    assert_store_survived(store, earlier, result)
