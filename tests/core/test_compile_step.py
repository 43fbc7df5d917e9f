"""Compilation as a measured step: compile time, calls to pay it back, the interval, and compiles that did
nothing are said and never recommended."""

from __future__ import annotations

import numpy as np
import pytest

from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.measure import compile_forms as cf
from accelstudio.core.measure.compile_step import compare_forms, compile_metrics, measure_compile
from accelstudio.core.model.loading import load_example
from accelstudio.core.pipeline import run_job

X = {"x": np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)}
FAST = RuntimeSettings(threads=1, time_budget_s=0.5, repeats=200, warmup=2)


def _consistent(r):
    assert r.status == "measured" and r.compile_s is not None and r.compile_s >= 0 and r.n >= 20
    assert r.lo <= r.speedup <= r.hi
    assert r.recommended == (r.lo > 1.0)
    assert ("includes 1.0" in r.no_effect) == (r.lo <= 1.0 <= r.hi)
    if r.eager_ms > r.compiled_ms:
        assert r.payback_calls == pytest.approx(r.compile_s * 1000 / (r.eager_ms - r.compiled_ms))
    else:
        assert r.payback_calls is None and "never pays back" in r.text()


def test_torchscript_reports_compile_time_and_payback():
    (r,) = measure_compile(load_example("digits-cnn", backend="torch"), FAST, X, "torchscript")
    _consistent(r)
    assert r.backend == "torchscript" and r.reference == "torch eager"


def test_ort_levels_each_against_disabled():
    reports = measure_compile(load_example("digits-cnn", backend="onnx"), FAST, X, "ort-levels")
    assert [r.backend for r in reports] == ["ort-basic", "ort-extended", "ort-all"]
    for r in reports:
        _consistent(r)
        assert r.reference == "ort-disabled"


def test_a_compile_that_changes_nothing_is_said_and_not_recommended():
    eager = cf.torch_eager(load_example("digits-mlp", backend="torch"), {"x": np.zeros((1, 64), np.float32)})
    same = cf.Form("no-op", eager.call, compile_s=0.5, graphs=0)  # the same call: nothing was compiled
    r = compare_forms(eager, same, budget_s=0.3, max_calls=200)
    assert "dynamo captured no graph" in r.no_effect
    if r.lo <= 1.0 <= r.hi:
        assert not r.recommended and "includes 1.0" in r.no_effect
    broken = cf.Form("with-breaks", eager.call, 0.1, graphs=2, graph_breaks=1, break_reasons=("print",))
    assert "1 graph break(s): print" in compare_forms(eager, broken, 0.3, 100).no_effect


def test_unavailable_backends_say_what_to_install(monkeypatch):
    onnx_cnn = load_example("digits-cnn", backend="onnx")
    m = compile_metrics(onnx_cnn, RuntimeSettings(compile="inductor"), X)
    assert m["results"][0]["status"] == "unavailable" and "--runtime torch" in m["results"][0]["message"]
    import onnxruntime

    if "OpenVINOExecutionProvider" not in onnxruntime.get_available_providers():
        m = compile_metrics(onnx_cnn, RuntimeSettings(compile="openvino"), X)
        assert m["results"][0]["status"] == "unavailable" and "onnxruntime-openvino" in m["results"][0]["message"]
    monkeypatch.setattr(cf.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    m = compile_metrics(load_example("digits-cnn", backend="torch"), RuntimeSettings(compile="inductor"), X)
    assert m["results"][0]["status"] == "unavailable" and "C++ compiler" in m["results"][0]["message"]
    assert m["recommended"] is None


def test_a_run_with_compile_keeps_its_eager_latency_and_records_the_step():
    spec = JobSpec(model="example:digits-cnn", runtime=RuntimeSettings(
        runtime="torch", threads=1, warmup=2, repeats=40, time_budget_s=0.4, compile="torchscript"),
        evaluate=False, keep_artifact=False)
    res = run_job(spec)
    (r,) = res.metrics["compile"]["results"]
    assert r["backend"] == "torchscript" and r["status"] == "measured" and r["compile_s"] > 0
    assert res.metrics["compile"]["recommended"] in (None, "torchscript")
    assert res.metrics["execution"]["device"] == "cpu" and res.metrics["p50_ms"] > 0
    from accelstudio.core.runs.explain import explain_run

    (line,) = explain_run(res, None).compiled  # the explanation shows the compiled form next to the causes
    assert line.startswith("torchscript: ") and "compile" in line


@pytest.mark.slow
def test_inductor_counts_graph_breaks(tmp_path, monkeypatch):
    """torch.compile on a module with a data-dependent Python branch: dynamo breaks the graph, and it is said."""
    import torch

    if cf.c_compiler() is None:
        pytest.skip("no C++ compiler here")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))

    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)

        def forward(self, x):
            h = self.a(x)
            if h.sum().item() > 0:  # graph break: a Python branch on a tensor value
                h = h * 2
            return self.b(h)

    from accelstudio.core.model.handle import ModelHandle

    handle = load_example("digits-mlp", backend="torch")
    handle = ModelHandle(**{**handle.__dict__, "module": Branchy().eval()})
    (r,) = measure_compile(handle, FAST, {"x": np.ones((1, 64), np.float32)}, "inductor")
    assert r.status == "measured" and r.graph_breaks >= 1 and "graph break" in r.no_effect
    assert r.compile_s > 0
