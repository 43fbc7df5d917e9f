"""The isolated worker: protocol, crashes, hangs, cancel, kills, exceptions, memory, stray prints, the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.worker import protocol
from accelstudio.worker.client import JobRunner, execute_job, worker_command
from worker_models import huge_allocation_model, nan_model, segfault_model

FAST = RuntimeSettings(threads=1, warmup=2, repeats=20, time_budget_s=2.0)
ENDLESS = RuntimeSettings(threads=1, warmup=2, repeats=10**9, time_budget_s=120.0)


def _spec(model="example:digits-mlp", runtime=FAST, **kw) -> JobSpec:
    return JobSpec(model=model, runtime=runtime, keep_artifact=False, **kw)


class BenchmarkWatch:
    """on_message callback that records messages and flags the first partial benchmark result."""

    def __init__(self):
        self.messages = []
        self.in_stage = threading.Event()  # the benchmark stage has started
        self.benchmarking = threading.Event()  # ... and timed calls are coming in

    def __call__(self, msg):
        self.messages.append(msg)
        if msg.type == "progress" and msg.stage == "benchmark":
            self.in_stage.set()
            if "latencies_ms" in msg.partial:
                self.benchmarking.set()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- protocol ----------------------------------------------------------------------------------------------

def test_protocol_round_trip_and_nan_becomes_null():
    msg = protocol.ProgressMsg("benchmark", 0.5, "x", {"latencies_ms": [1.0, float("nan")]})
    back = protocol.parse_line(protocol.encode(msg).encode())
    assert back == protocol.ProgressMsg("benchmark", 0.5, "x", {"latencies_ms": [1.0, None]})
    err = protocol.ErrorMsg("user_error", "data set error", "bad")
    assert protocol.parse_line(protocol.encode(err)) == err


@pytest.mark.parametrize("line, reason", [
    (b"hello\n", "not JSON"), (b"[1, 2]\n", "JSON object"), (b'{"type": "nope"}\n', "unknown message type"),
    (b'{"type": "progress", "stage": "x", "fraction": 7}\n', "fraction"), (b"\xff\xfe{}\n", "UTF-8"),
    (b'{"type": "result", "run": {}}\n', "status"), (b"\n", "empty"),
    (b'{"type": "error", "kind": "oops", "message": "m"}\n', "kind"),
])
def test_garbled_lines_are_rejected_with_a_reason(line, reason):
    with pytest.raises(protocol.ProtocolError, match=reason):
        protocol.parse_line(line)


def test_stray_prints_cannot_reach_the_protocol_channel():
    code = ("import os; from accelstudio.worker import child, protocol; ch = child.take_stdout(); print('stray');"
            "os.write(1, b'raw bytes\\n'); ch.send(protocol.ProgressMsg('s', 0.5))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert out.returncode == 0
    assert [protocol.parse_line(line) for line in out.stdout.splitlines()] == [protocol.ProgressMsg("s", 0.5)]
    assert b"stray" in out.stderr and b"raw bytes" in out.stderr


def test_frozen_app_starts_the_worker_through_its_own_executable(monkeypatch):
    assert worker_command()[1:] == ["-m", "accelstudio.worker"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert worker_command() == [sys.executable, "--worker"]


# --- whole jobs ---------------------------------------------------------------------------------------------

def test_a_job_runs_to_a_result_and_streams_progress():
    watch = BenchmarkWatch()
    result = JobRunner(_spec(), watch).start().wait(timeout=120)
    assert result.status == "done", result.reason
    assert result.metrics["n"] == 20 and result.metrics["accuracy"] > 0.9
    types = [m.type for m in watch.messages]
    assert types[-1] == "finished" and "result" in types and watch.benchmarking.is_set()


def test_segfault_in_run_fails_the_job_and_names_the_signal(tmp_path):
    model = segfault_model(tmp_path / "segv.onnx")
    probe = ("import onnxruntime as ort, numpy as np, sys; s = ort.InferenceSession(sys.argv[1], "
             "providers=['CPUExecutionProvider']); s.run(None, {'x': np.ones((1, 64), np.float32)})")
    crashed = subprocess.run([sys.executable, "-c", probe, str(model)], capture_output=True, timeout=60)
    assert crashed.returncode == -signal.SIGSEGV  # the model really crashes ONNX Runtime
    runner = JobRunner(_spec(str(model))).start()
    result = runner.wait(timeout=120)
    assert result.status == "failed"
    assert result.reason == "worker crashed: SIGSEGV (segmentation fault) during stage 'benchmark'"
    assert "Fatal Python error" in result.metrics["traceback"] and _gone(runner.pid)


def test_a_hanging_stage_times_out(monkeypatch):
    monkeypatch.setenv("ACCELSTUDIO_TEST_HANG_STAGE", "benchmark")
    runner = JobRunner(_spec(timeout_s=6)).start()
    result = runner.wait(timeout=120)
    assert result.status == "failed" and result.reason == "stage 'benchmark' timed out after 6 s"
    assert _gone(runner.pid)


def test_cancel_mid_benchmark_is_quick():
    watch = BenchmarkWatch()
    runner = JobRunner(_spec(runtime=ENDLESS), watch).start()
    assert watch.benchmarking.wait(120)
    start = time.monotonic()
    runner.cancel()
    result = runner.wait(timeout=10)
    assert time.monotonic() - start < 2.0
    assert result.status == "cancelled" and not runner.is_running() and _gone(runner.pid)


def test_cancel_of_a_stuck_worker_escalates_to_terminate(monkeypatch):
    monkeypatch.setenv("ACCELSTUDIO_TEST_HANG_STAGE", "benchmark")
    watch = BenchmarkWatch()
    runner = JobRunner(_spec(), watch).start()
    assert watch.in_stage.wait(120)
    start = time.monotonic()
    runner.cancel()  # the child never checks its token again: it has to be terminated
    result = runner.wait(timeout=10)
    assert time.monotonic() - start < 2.0
    assert result.status == "cancelled" and _gone(runner.pid)


def test_a_killed_worker_is_reported():
    watch = BenchmarkWatch()
    runner = JobRunner(_spec(runtime=ENDLESS, memory_limit_mb=3000), watch).start()
    assert watch.benchmarking.wait(120)
    os.kill(runner.pid, signal.SIGKILL)
    result = runner.wait(timeout=10)
    assert result.status == "failed"
    assert result.reason == ("worker killed: SIGKILL during stage 'benchmark' "
                             "(possibly out of memory: limit 3000 MB)")


def test_python_exception_becomes_a_failed_run_and_is_stored(monkeypatch):
    from accelstudio.core.runs.store import RunStore

    monkeypatch.setenv("ACCELSTUDIO_TEST_RAISE_STAGE", "compress")
    store = RunStore()
    result = execute_job(_spec(), store=store)
    assert result.status == "failed"
    assert result.reason == "RuntimeError: test fault raised in stage 'compress'"
    assert "Traceback" in result.metrics["traceback"]
    assert result.model_identity["name"] == "digits-mlp"  # known from the load stage
    assert store.get_run(result.run_id).reason == result.reason


def test_user_error_message_is_the_reason(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("not a model")
    result = execute_job(_spec(str(bad)))
    assert result.status == "failed" and str(bad) in result.reason and "traceback" not in result.metrics


def test_running_out_of_memory_is_reported(tmp_path):
    model = huge_allocation_model(tmp_path / "huge.onnx")
    result = execute_job(_spec(str(model), memory_limit_mb=2048))
    assert result.status == "failed"
    assert result.reason == "out of memory during stage 'benchmark' (limit 2048 MB)"


def test_nan_outputs_are_flagged_through_the_worker(tmp_path):
    result = execute_job(_spec(str(nan_model(tmp_path / "nan.onnx"))))
    assert result.status == "done" and result.metrics["nonfinite_outputs"] > 0
    assert result.metrics["fidelity"]["cosine"] is None
