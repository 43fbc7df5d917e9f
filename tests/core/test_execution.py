"""What actually ran is recorded and checked: provider fallback refused, one thread count for both runtimes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from accelstudio.core.measure import environment, runtimes
from accelstudio.core.errors import RuntimeUnavailableError
from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.model.loading import load_example
from accelstudio.core.pipeline import run_job
from accelstudio.core.measure.runtimes import DeviceMismatchError, check_execution, make_predictor

X = {"x": np.zeros((1, 64), dtype=np.float32)}


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@pytest.fixture(scope="module")
def mlp_onnx():
    return load_example("digits-mlp", backend="onnx")


@pytest.fixture(scope="module")
def mlp_torch():
    return load_example("digits-mlp", backend="torch")


def test_cuda_provider_that_does_not_exist_here_is_refused_before_any_work(mlp_onnx):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA for ONNX Runtime")
    with pytest.raises(RuntimeUnavailableError, match="CUDAExecutionProvider.*not available on this machine"):
        make_predictor(mlp_onnx, RuntimeSettings(device="cuda", provider="CUDAExecutionProvider"))
    with pytest.raises(RuntimeUnavailableError, match="NoSuchExecutionProvider.*available: .*CPUExecutionProvider"):
        make_predictor(mlp_onnx, RuntimeSettings(provider="NoSuchExecutionProvider"))


@pytest.mark.filterwarnings("ignore:Specified provider")  # ORT's own warning; the refusal is what counts
def test_silent_fallback_to_the_cpu_is_refused_with_what_ran(mlp_onnx, monkeypatch):
    """ONNX Runtime creates a CPU-only session when the CUDA provider cannot load; listing CUDA as available
    makes exactly that happen on this CPU-only build, and the run must refuse it."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA loads here, so ONNX Runtime does not fall back")
    monkeypatch.setattr(runtimes, "_ort_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(DeviceMismatchError) as err:
        make_predictor(mlp_onnx, RuntimeSettings(device="cuda"))
    text = str(err.value)
    assert "digits-mlp" in text and "asked for CUDAExecutionProvider on cuda" in text
    assert "runs on CPUExecutionProvider (cpu)" in text and "choose device cpu" in text
    assert isinstance(err.value, RuntimeUnavailableError)


def test_torch_tensors_on_another_device_are_refused():
    settings = RuntimeSettings(runtime="torch", device="cuda")
    with pytest.raises(DeviceMismatchError, match="asked to run on cuda but ran on cpu"):
        check_execution(settings, {"device": "cpu", "providers": [], "threads": 2}, "m")
    check_execution(RuntimeSettings(runtime="torch"), {"device": "cpu", "providers": [], "threads": 2}, "m")
    check_execution(RuntimeSettings(runtime="torch", device="cuda:0"), {"device": "cuda", "providers": []}, "m")


def test_execution_records_what_ran(mlp_onnx, mlp_torch):
    ort = make_predictor(mlp_onnx, RuntimeSettings(threads=1))
    assert ort.execution() == {"device": "cpu", "providers": ["CPUExecutionProvider"], "threads": 1,
                               "inter_threads": 1, "execution_mode": "sequential", "spinning": False,
                               "graph_opt_level": "all"}
    for runtime in ("torch", "torchscript"):
        p = make_predictor(mlp_torch, RuntimeSettings(runtime=runtime, threads=1))
        p.run(X)
        assert p.execution() == {"device": "cpu", "providers": [], "threads": 1}


def test_threads_zero_gives_both_runtimes_one_number(mlp_onnx, mlp_torch, monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        for cores in (_cores(), 1):  # the real affinity, then a process narrowed to one core
            monkeypatch.setattr(environment, "_available_cores", lambda: cores)
            ort = make_predictor(mlp_onnx, RuntimeSettings(threads=0))
            assert ort.execution()["threads"] == cores
            assert torch.get_num_threads() == cores  # torch in the same process gets the same count
            tp = make_predictor(mlp_torch, RuntimeSettings(runtime="torch", threads=0))
            assert tp.execution()["threads"] == cores
            env = environment.collect_environment(RuntimeSettings(threads=0))
            assert env["threads"] == cores and env["torch"]["num_threads"] == cores
    finally:
        torch.set_num_threads(before)


def test_run_and_environment_agree_on_what_ran():
    import torch

    before = torch.get_num_threads()
    settings = RuntimeSettings(threads=0, warmup=2, repeats=20, time_budget_s=0.3)
    try:
        res = run_job(JobSpec(model="example:digits-mlp", runtime=settings, evaluate=False, keep_artifact=False))
    finally:
        torch.set_num_threads(before)
    assert res.metrics["execution"] == {"device": "cpu", "providers": ["CPUExecutionProvider"],
                                        "threads": _cores(), "inter_threads": 1, "execution_mode": "sequential",
                                        "spinning": False, "graph_opt_level": "all"}
    assert res.environment["threads"] == _cores() and res.environment["device"] == "cpu"
    machine = res.metrics["machine"]
    assert set(machine) >= {"load_1min", "other_cpu_pct", "busy"}
    if os.path.exists("/proc/stat"):
        assert 0.0 <= machine["other_cpu_pct"] <= 100.0 and isinstance(machine["busy"], bool)
        from accelstudio.core.runs.report import build_report

        warned = any(w.startswith("busy machine") for w in build_report(res, None).warnings)
        assert warned == machine["busy"]  # one reading: the report warns, the notes do not repeat it


def test_ort_sessions_cannot_switch_to_the_cpu_during_timing(mlp_onnx):
    session = make_predictor(mlp_onnx, RuntimeSettings(threads=1)).session
    assert session._enable_fallback is False  # run() raises on a provider failure instead of re-creating on CPU
