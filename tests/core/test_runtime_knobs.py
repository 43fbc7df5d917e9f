"""ONNX Runtime's thread knobs are settings like any other: applied to the session, recorded in the execution
record as they took effect, kept by old stored specs, and part of the like-for-like key of comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from accelstudio.core.errors import RuntimeUnavailableError
from accelstudio.core.job import JobSpec, RunResult, RuntimeSettings
from accelstudio.core.measure.runtimes import make_predictor, ort_knobs, ort_session_options
from accelstudio.core.model.loading import load_example
from accelstudio.core.pipeline import run_job
from accelstudio.core.runs.baseline import baseline_spec, comparison_key, describe_settings, find_baseline, mismatches
from accelstudio.core.recipe import QuantSpec, Recipe

FAST = dict(warmup=2, repeats=20, time_budget_s=0.3)


@pytest.fixture(scope="module")
def mlp_onnx():
    return load_example("digits-mlp", backend="onnx")


def test_old_stored_specs_read_with_the_defaults_they_measured():
    old = {"runtime": "onnxruntime", "device": "cpu", "threads": 2, "batch": 1, "warmup": 10, "repeats": 200,
           "time_budget_s": 3.0, "streams": 1, "provider": None}
    settings = RuntimeSettings.from_dict(old)
    assert (settings.intra_threads, settings.inter_threads, settings.spinning, settings.graph_opt_level) == \
        (None, 1, False, "all")
    assert RuntimeSettings.from_dict({**old, "a_knob_from_a_newer_version": 3}).threads == 2
    assert JobSpec.from_dict({"model": "m.onnx", "runtime": old}).runtime == settings


def test_knobs_reach_the_session_and_the_execution_record(mlp_onnx):
    settings = RuntimeSettings(threads=1, intra_threads=2, inter_threads=2, spinning=True, graph_opt_level="basic")
    predictor = make_predictor(mlp_onnx, settings)
    opts = predictor.session.get_session_options()
    assert opts.intra_op_num_threads == 2 and opts.inter_op_num_threads == 2
    assert opts.execution_mode.name == "ORT_PARALLEL"
    assert opts.graph_optimization_level.name == "ORT_ENABLE_BASIC"
    built = ort_session_options(settings)
    assert built.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    record = predictor.execution()
    assert record["threads"] == 2 and record["inter_threads"] == 2 and record["spinning"] is True
    assert record["graph_opt_level"] == "basic" and record["execution_mode"] == "parallel"
    out = predictor.run({"x": np.zeros((1, 64), np.float32)})
    assert out.shape == (1, 10)


def test_spinning_none_leaves_ort_default_and_records_it_as_on():
    opts = ort_session_options(RuntimeSettings(spinning=None))
    with pytest.raises(Exception):  # never set: ONNX Runtime's own default applies
        opts.get_session_config_entry("session.intra_op.allow_spinning")
    assert ort_knobs(RuntimeSettings(spinning=None))["spinning"] is True
    assert ort_session_options(RuntimeSettings()).get_session_config_entry(
        "session.intra_op.allow_spinning") == "0"


def test_unknown_graph_level_is_a_typed_error(mlp_onnx):
    with pytest.raises(RuntimeUnavailableError, match="graph optimization level"):
        make_predictor(mlp_onnx, RuntimeSettings(graph_opt_level="fast"))


def test_a_real_run_stores_the_knobs_and_they_keep_baselines_like_for_like():
    spinning = RuntimeSettings(threads=1, spinning=True, graph_opt_level="extended", **FAST)
    res = run_job(JobSpec(model="example:digits-mlp", runtime=spinning, evaluate=False, keep_artifact=False))
    ex = res.metrics["execution"]
    assert (ex["spinning"], ex["graph_opt_level"], ex["inter_threads"]) == (True, "extended", 1)
    assert RunResult.from_dict(res.to_dict()).spec["runtime"]["spinning"] is True
    key = comparison_key(res)
    assert key["spinning"] is True and key["graph_opt_level"] == "extended"
    assert "spinning" in describe_settings(res) and "graph opt extended" in describe_settings(res)
    # a baseline measured without spinning or with another level is not like-for-like
    plain = run_job(JobSpec(model="example:digits-mlp", runtime=RuntimeSettings(threads=1, **FAST),
                            evaluate=False, keep_artifact=False))
    assert set(mismatches(res, plain)) == {"spinning", "graph opt level"}
    quantized = RunResult.from_dict({**res.to_dict(), "spec": {
        **res.spec, "recipe": Recipe(quantize=QuantSpec(mode="dynamic-int8")).to_dict()}})
    assert find_baseline([plain], quantized) is None and find_baseline([plain, res], quantized) is res
    # the baseline job the app offers measures with the same knobs
    again = baseline_spec(quantized).runtime
    assert (again.spinning, again.graph_opt_level, again.compile) == (True, "extended", "")


def test_runs_stored_before_the_knobs_compare_with_default_knob_runs():
    def stored(extra):
        rt = {"runtime": "onnxruntime", "device": "cpu", "threads": 2, "batch": 1}
        return RunResult("done", spec={"model": "example:digits-mlp", "recipe": Recipe().to_dict(),
                                       "runtime": rt}, metrics={"execution": {"device": "cpu", "threads": 2, **extra}},
                         model_identity={"key": "example:digits-mlp"})
    old, new = stored({}), stored({"inter_threads": 1, "spinning": False, "graph_opt_level": "all"})
    assert mismatches(old, new) == [] and mismatches(new, old) == []
    assert mismatches(new, stored({"inter_threads": 2, "spinning": False, "graph_opt_level": "all"})) == \
        ["inter threads"]
    torch_run = RunResult("done", spec={"model": "x", "runtime": {"runtime": "torch", "threads": 2, "batch": 1}},
                          metrics={"execution": {"device": "cpu", "threads": 2}}, model_identity={"key": "x"})
    assert "spinning" not in comparison_key(torch_run)
