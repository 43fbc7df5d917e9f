"""Faults injected into the REAL worker: an exception in each stage, signals sent to the worker process, a
hanging stage, cancels at seeded random points, two jobs at once, and a garbled protocol pipe. Every run ends
failed or cancelled with the right reason, the parent stays alive, and the store keeps every earlier run."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import sys
import threading
from pathlib import Path

import pytest

from accelstudio.worker import client, protocol
from accelstudio.worker.client import JobRunner, execute_job
from hostile_helpers import ENDLESS, STARTUP_SAFE_TIMEOUT_S, WORKER_WAIT_S, fast_spec
from worker_checks import assert_store_survived, store_with_history

FAKE_WORKER = Path(__file__).with_name("fake_worker.py")
EXAMPLE = "example:digits-mlp"


class Watch:
    """on_message callback: counts progress messages and flags the first partial benchmark result."""

    def __init__(self, on_progress=None):
        self.progress = 0
        self.stages: list[str] = []
        self.benchmarking = threading.Event()
        self.on_progress = on_progress

    def __call__(self, msg) -> None:
        if msg.type != "progress":
            return
        self.progress += 1
        if not self.stages or self.stages[-1] != msg.stage:
            self.stages.append(msg.stage)
        if msg.stage == "benchmark" and "latencies_ms" in msg.partial:
            self.benchmarking.set()
        if self.on_progress is not None:
            self.on_progress(self.progress, msg)


# --- an exception in each stage ------------------------------------------------------------------------

STAGES = ["load", "data", "compress", "export", "benchmark", "evaluate"]
DEFAULT_STAGES = {"load", "benchmark", "evaluate"}


@pytest.mark.parametrize("stage", [s if s in DEFAULT_STAGES else pytest.param(s, marks=pytest.mark.slow)
                                   for s in STAGES])
def test_exception_in_a_stage_fails_the_run(stage, sandbox, monkeypatch):
    monkeypatch.setenv("ACCELSTUDIO_TEST_RAISE_STAGE", stage)
    store, earlier = store_with_history()
    sandbox.freeze()
    result = execute_job(fast_spec(EXAMPLE, keep_artifact=stage == "export"), store=store)
    assert result.status == "failed"
    assert result.reason == f"RuntimeError: test fault raised in stage '{stage}'"
    assert "Traceback" in result.metrics["traceback"]
    assert_store_survived(store, earlier, result)
    sandbox.assert_untouched()


# --- signals to the worker process ---------------------------------------------------------------------

@pytest.mark.parametrize("sig, reason", [
    (signal.SIGSEGV, "worker crashed: SIGSEGV (segmentation fault) during stage 'benchmark'"),
    (signal.SIGABRT, "worker crashed: SIGABRT (abort) during stage 'benchmark'"),
    (signal.SIGKILL, "worker killed: SIGKILL during stage 'benchmark' (possibly out of memory: limit 8192 MB)"),
])
def test_signal_to_the_worker_fails_the_run(sig, reason, sandbox):
    store, earlier = store_with_history()
    sandbox.freeze()
    watch = Watch()
    runner = JobRunner(fast_spec(EXAMPLE, runtime=ENDLESS), watch).start()
    assert watch.benchmarking.wait(WORKER_WAIT_S)
    os.kill(runner.pid, sig)
    result = runner.wait(WORKER_WAIT_S)
    assert result.status == "failed" and result.reason == reason
    result = dataclasses.replace(result, run_id=store.add_run(result))
    assert_store_survived(store, earlier, result)
    sandbox.assert_untouched()


# --- a stage that hangs --------------------------------------------------------------------------------

@pytest.mark.slow  # the default run covers stage timeouts with a Loop that never ends (hostile inputs)
def test_hanging_stage_hits_its_timeout(sandbox, monkeypatch):
    monkeypatch.setenv("ACCELSTUDIO_TEST_HANG_STAGE", "data")
    store, earlier = store_with_history()
    sandbox.freeze()
    result = execute_job(fast_spec(EXAMPLE, timeout_s=STARTUP_SAFE_TIMEOUT_S), store=store)
    assert result.status == "failed"
    assert result.reason == f"stage 'data' timed out after {STARTUP_SAFE_TIMEOUT_S} s"
    assert_store_survived(store, earlier, result)
    sandbox.assert_untouched()


# --- cancel at seeded random points --------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, pytest.param(2, marks=pytest.mark.slow),
                                  pytest.param(3, marks=pytest.mark.slow)])
def test_cancel_at_a_random_point(seed, sandbox):
    """Cancel after the k-th progress message (k drawn with a fixed seed: anywhere from startup to the middle
    of the benchmark). The benchmark never ends by itself, so the run can only end cancelled."""
    k = random.Random(seed).randint(1, 12)
    cancel = threading.Event()
    watch = Watch(on_progress=lambda n, _msg: n >= k and cancel.set())
    store, earlier = store_with_history()
    sandbox.freeze()
    result = execute_job(fast_spec(EXAMPLE, runtime=ENDLESS), store=store, on_message=watch, cancel_event=cancel)
    assert cancel.is_set() and watch.progress >= k
    assert result.status == "cancelled" and result.reason == "cancelled by the user", (k, watch.stages)
    assert_store_survived(store, earlier, result)
    sandbox.assert_untouched()


# --- two jobs at once ----------------------------------------------------------------------------------

def test_two_jobs_at_once_both_complete_into_one_store(sandbox):
    store, earlier = store_with_history()
    sandbox.freeze()
    results: list = [None, None]

    def run(i: int) -> None:
        results[i] = execute_job(fast_spec(EXAMPLE, keep_artifact=True), store=store)

    threads = [threading.Thread(target=run, args=(i,), name=f"accelstudio-test-job-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * WORKER_WAIT_S)
    assert all(r is not None and r.status == "done" for r in results), [r and r.reason for r in results]
    assert results[0].run_id != results[1].run_id and results[0].artifact != results[1].artifact
    for r in results:
        assert_store_survived(store, earlier, r)
    assert store.count() == len(earlier) + 2
    sandbox.assert_untouched()


# --- a garbled pipe ------------------------------------------------------------------------------------

def _garbage_lines(rng: random.Random) -> list[bytes]:
    valid = [protocol.encode(m).encode() for m in (
        protocol.ProgressMsg("load", 0.5, "t", {"n": 1}), protocol.ErrorMsg("user_error", "c", "m"),
        protocol.ResultMsg({"status": "done", "metrics": {}}))]
    lines = []
    for _ in range(600):
        kind = rng.randrange(6)
        base = bytearray(rng.choice(valid))
        if kind == 0:  # random bytes
            lines.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
        elif kind == 1:  # a valid line cut short
            lines.append(bytes(base[: rng.randrange(len(base))]))
        elif kind == 2:  # bit flips
            for _ in range(rng.randrange(1, 4)):
                base[rng.randrange(len(base))] ^= 1 << rng.randrange(8)
            lines.append(bytes(base))
        elif kind == 3:  # deep nesting
            depth = rng.choice([10, 1_000, 100_000])
            lines.append(b'{"type": "progress", "stage": "x", "fraction": 0.1, "partial": ' + b"[" * depth
                         + b"]" * depth + b"}")
        elif kind == 4:  # valid JSON, wrong shapes and types
            obj = rng.choice([[], 1, "s", None, {"type": "progress", "stage": 5, "fraction": 0.1},
                              {"type": "progress", "stage": "x", "fraction": "0.1"},
                              {"type": "result", "run": {"status": "weird"}},
                              {"type": "result", "run": {"status": "done", "metrics": [1]}},
                              {"type": "error", "kind": "user_error", "message": None},
                              {"type": "progress", "stage": "x", "fraction": 1e308},
                              {"type": ["progress"]}])
            lines.append(json.dumps(obj).encode())
        else:  # NaN tokens and non-UTF-8 inside an otherwise valid line
            lines.append(bytes(base.replace(b"0.5", b"NaN").replace(b'"t"', b'"\xff\xfe"')))
    return lines


def test_protocol_parser_rejects_garbage_with_protocol_error_only():
    rng = random.Random(1234)
    accepted = rejected = 0
    for line in _garbage_lines(rng):
        try:
            msg = protocol.parse_line(line)
        except protocol.ProtocolError:
            rejected += 1
            continue
        accepted += 1
        if isinstance(msg, protocol.ResultMsg):  # anything accepted is a usable run
            assert msg.run["status"] in ("done", "failed", "cancelled")
            assert isinstance(msg.run.get("metrics", {}), dict)
    assert rejected > 400 and accepted > 0


@pytest.mark.parametrize("mode, status, reason", [
    ("garbage-then-exit", "failed", "worker exited with code 0 during stage 'load' without a result"),
    ("garbage-then-result", "done", ""),
    ("mistyped-result", "failed", "worker exited with code 0 during stage 'load' without a result"),
    ("close-and-hang", "failed", "stage 'startup' timed out after 2 s"),
    ("endless-garbage", "failed", "stage 'startup' timed out after 2 s"),
    ("no-newline-exit", "failed", "worker exited with code 3 during stage 'startup' without a result"),
])
def test_worker_writing_garbage_ends_the_run_cleanly(mode, status, reason, sandbox, monkeypatch):
    monkeypatch.setattr(client, "worker_command", lambda: [sys.executable, str(FAKE_WORKER), mode])
    store, earlier = store_with_history()
    sandbox.freeze()
    result = execute_job(fast_spec(EXAMPLE, timeout_s=2), store=store)
    assert (result.status, result.reason) == (status, reason)
    if mode not in ("close-and-hang",):
        assert any("garbled" in n for n in result.metrics["notes"])
    assert_store_survived(store, earlier, result)
    sandbox.assert_untouched()


def test_a_worker_that_never_starts_is_a_failed_run(sandbox, monkeypatch):
    monkeypatch.setattr(client, "worker_command", lambda: [sys.executable, "-c", "import sys; sys.exit(7)"])
    store, earlier = store_with_history()
    result = execute_job(fast_spec(EXAMPLE, timeout_s=5), store=store)
    assert result.status == "failed" and result.reason.startswith("worker exited with code 7")
    assert_store_survived(store, earlier, result)
