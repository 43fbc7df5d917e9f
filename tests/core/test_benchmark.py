"""Latency statistics, the timing loop (budget, minimum calls, cancel, partial results, streams) and runtimes."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from accelstudio.core.measure.benchmark import (
    MAX_STABLE_SPREAD, MIN_CALLS, measure_latency, stats_from_samples,
)
from accelstudio.core.errors import JobCancelled, RuntimeUnavailableError
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.progress import Cancel


class FakePredictor:
    """Runs a tiny NumPy product per call; counts calls; can set a cancel token after k calls."""

    def __init__(self, cancel_after: int | None = None, cancel: Cancel | None = None):
        self.calls = 0
        self.cancel_after, self.cancel = cancel_after, cancel

    def bind(self, inputs):
        a = inputs["x"]

        def call():
            self.calls += 1
            if self.cancel_after is not None and self.calls >= self.cancel_after:
                self.cancel.set()
            return a @ a.T

        return call

    def timing_context(self):
        return contextlib.nullcontext()


X = {"x": np.ones((4, 16), dtype=np.float32)}


def test_stats_are_ordered_and_counted():
    settings = RuntimeSettings(warmup=3, repeats=60, time_budget_s=30.0)
    pred = FakePredictor()
    stats = measure_latency(pred, X, settings)
    assert stats.n == 60 == len(stats.samples_ms)
    assert pred.calls == 63  # warm-up calls are made but not recorded
    assert stats.min_ms <= stats.p50_ms <= stats.p90_ms <= stats.p99_ms
    assert stats.throughput == pytest.approx(1000.0 / stats.mean_ms)
    assert stats.spread_ratio == pytest.approx(stats.p90_ms / stats.p50_ms)


def test_known_samples_give_known_percentiles_and_stability_rule():
    s = stats_from_samples(list(range(1, 101)), batch=4)
    assert (s.p50_ms, s.min_ms, s.n) == (50.5, 1.0, 100)
    assert s.iqr_ms == pytest.approx(75.25 - 25.75)
    assert s.throughput == pytest.approx(4 * 1000.0 / 50.5)
    assert not s.stable  # p90/p50 = 1.78
    assert stats_from_samples([1.0] * 30).stable
    assert not stats_from_samples([1.0] * 10).stable  # too few calls
    assert not stats_from_samples([1.0] * 25 + [MAX_STABLE_SPREAD * 1.01] * 5).stable


def test_time_budget_stops_early_but_never_below_minimum_calls():
    stats = measure_latency(FakePredictor(), X, RuntimeSettings(warmup=0, repeats=10**9, time_budget_s=1e-9))
    assert stats.n == MIN_CALLS
    stats = measure_latency(FakePredictor(), X, RuntimeSettings(warmup=0, repeats=10**9, time_budget_s=0.05))
    assert MIN_CALLS <= stats.n < 10**9


def test_cancel_is_checked_between_calls():
    cancel = Cancel()
    pred = FakePredictor(cancel_after=30, cancel=cancel)
    with pytest.raises(JobCancelled):
        measure_latency(pred, X, RuntimeSettings(warmup=5, repeats=10**9, time_budget_s=60.0), cancel=cancel)
    assert pred.calls == 30


def test_partial_latencies_add_up_to_all_samples():
    events = []
    stats = measure_latency(FakePredictor(), X, RuntimeSettings(warmup=0, repeats=500, time_budget_s=30.0),
                            progress=events.append)
    chunks = [e.partial["latencies_ms"] for e in events if e.partial]
    assert sum(len(c) for c in chunks) == stats.n
    assert [x for c in chunks for x in c] == pytest.approx(list(stats.samples_ms))
    assert all(e.stage == "benchmark" and 0.0 <= e.fraction <= 1.0 for e in events)
    assert events[-1].partial["n"] == stats.n


def test_harness_overhead_is_far_below_the_goal():
    class Noop(FakePredictor):
        def bind(self, inputs):
            return lambda: None

    stats = measure_latency(Noop(), X, RuntimeSettings(warmup=10, repeats=2000, time_budget_s=5.0))
    assert stats.p50_ms < 0.020  # the goal: at most 20 us per call


def test_concurrent_streams_measure_throughput():
    stats = measure_latency(FakePredictor(), X, RuntimeSettings(warmup=1, repeats=20, time_budget_s=0.2,
                                                                streams=2))
    assert stats.streams == 2 and stats.throughput_concurrent > 0


# --- runtimes ----------------------------------------------------------------------------------------------

def test_available_runtimes_lists_what_exists():
    from accelstudio.core.measure.runtimes import available_runtimes

    found = {(o.runtime, o.device) for o in available_runtimes()}
    assert {("torch", "cpu"), ("torchscript", "cpu"), ("onnxruntime", "cpu")} <= found
    import torch

    assert (("torch", "cuda") in found) == torch.cuda.is_available()


def test_missing_device_and_onnx_on_torch_are_refused():
    import torch

    from accelstudio.core.model.loading import load_example
    from accelstudio.core.measure.runtimes import make_predictor

    handle = load_example("digits-mlp", backend="onnx")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeUnavailableError, match="available: .*onnxruntime/cpu"):
            make_predictor(handle, RuntimeSettings(runtime="onnxruntime", device="cuda"))
    with pytest.raises(RuntimeUnavailableError, match="ONNX model .* choose the onnxruntime"):
        make_predictor(handle, RuntimeSettings(runtime="torch"))


@pytest.mark.parametrize("runtime", ["torch", "torchscript", "onnxruntime"])
def test_torch_model_gives_the_same_outputs_on_every_runtime(runtime):
    import torch

    from accelstudio.core.model.loading import load_example
    from accelstudio.core.measure.runtimes import make_predictor

    handle = load_example("digits-cnn", backend="torch")
    x = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    with torch.inference_mode():
        expected = handle.module(torch.from_numpy(x)).numpy()
    pred = make_predictor(handle, RuntimeSettings(runtime=runtime, threads=1, batch=3))
    assert pred.cold_start_ms > 0
    np.testing.assert_allclose(pred.run({"x": x}), expected, rtol=1e-4, atol=1e-4)
    stats = measure_latency(pred, {"x": x}, RuntimeSettings(runtime=runtime, warmup=2, repeats=10))
    assert stats.n == 10


def test_untraceable_module_is_refused_for_torchscript():
    import torch

    from accelstudio.core.model.handle import InputSpec, ModelHandle
    from accelstudio.core.measure.runtimes import make_predictor

    class Untraceable(torch.nn.Module):
        def forward(self, x):
            return {"sum": x.sum().item()}  # a Python number: nothing to trace

    handle = ModelHandle("torch", "pickle", (InputSpec("x", (None, 4)),), module=Untraceable())
    with pytest.raises(RuntimeUnavailableError, match="cannot be traced"):
        make_predictor(handle, RuntimeSettings(runtime="torchscript", threads=1))
