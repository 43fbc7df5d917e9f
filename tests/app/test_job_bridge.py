"""JobBridge: jobs run off the GUI thread, progress and results arrive as signals, one job at a time, cancel,
failures become failed runs, and shutdown leaves no thread or process behind. The first tests use a stand-in
for execute_job to pin down the bridge's own rules; the rest run real worker jobs."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QElapsedTimer, QTimer

from accelstudio.app.bridges.job_bridge import JobBridge
from accelstudio.core.job import JobSpec, RunResult, RuntimeSettings
from accelstudio.core.runs.store import RunStore
from accelstudio.worker import protocol


def child_pids() -> list[int]:
    """Processes (zombies included) whose parent is this test process."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found.append(int(entry.name))
    return found


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.db")


@pytest.fixture
def make_bridge(qtbot, store):
    """Build bridges; after the test each is shut down and nothing may be left running."""
    made: list[JobBridge] = []

    def make(execute=None) -> JobBridge:
        bridge = JobBridge(store, execute=execute)
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        assert bridge.shutdown(timeout=10.0)
        assert bridge.threads() == []
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    assert others == []
    assert not [t for t in threading.enumerate() if t.name.startswith("accelstudio-") and t.is_alive()]
    assert multiprocessing.active_children() == []
    assert child_pids() == []


def spec(model: str = "example:digits-mlp", **runtime) -> JobSpec:
    settings = dict(threads=1, warmup=2, repeats=20, time_budget_s=2.0)
    settings.update(runtime)
    return JobSpec(model=model, runtime=RuntimeSettings(**settings), evaluate=True, max_eval_samples=200)


# --- the bridge's own rules, with a stand-in job ------------------------------------------------------------

def test_progress_arrives_in_order_then_the_saved_run(qtbot, make_bridge, store):
    def execute(job, run_store, on_message, cancel):
        on_message({"type": "progress", "stage": "load", "fraction": 0.5, "text": "opening", "partial": {}})
        on_message(protocol.ProgressMsg("benchmark", 0.5, "10 calls", {"latencies_ms": [1.0] * 10, "n": 10}))
        on_message(protocol.ResultMsg({"status": "done"}))  # not progress: not forwarded
        return RunResult(status="done", spec=job.to_dict(), metrics={"p50_ms": 1.0})

    bridge = make_bridge(execute)
    seen: list[tuple] = []
    bridge.started.connect(lambda: seen.append(("started",)))
    bridge.progress.connect(lambda *args: seen.append(args))
    with qtbot.waitSignal(bridge.finished, timeout=5000) as done:
        assert bridge.start(spec())
    result = done.args[0]
    assert [s[0] for s in seen] == ["started", "load", "benchmark"]
    assert seen[2][3] == {"latencies_ms": [1.0] * 10, "n": 10}
    assert result.status == "done" and result.run_id is not None
    assert store.get_run(result.run_id).metrics["p50_ms"] == 1.0
    assert not bridge.is_running()


def test_one_job_at_a_time_and_cancel(qtbot, make_bridge):
    def execute(job, run_store, on_message, cancel):
        cancel.wait(10.0)
        result = RunResult(status="cancelled" if cancel.is_set() else "done", reason="cancelled by the user")
        return RunResult.from_dict({**result.to_dict(), "run_id": run_store.add_run(result)})

    bridge = make_bridge(execute)
    assert bridge.start(spec())
    assert bridge.is_running()
    assert not bridge.start(spec())
    with qtbot.waitSignal(bridge.finished, timeout=3000) as done:
        assert bridge.cancel()
    assert done.args[0].status == "cancelled"
    assert not bridge.cancel()
    with qtbot.waitSignal(bridge.finished, timeout=3000):
        assert bridge.start(spec())  # a finished bridge takes the next job
        bridge.cancel()


def test_a_crashing_job_becomes_a_failed_run_in_the_store(qtbot, make_bridge, store):
    def execute(job, run_store, on_message, cancel):
        raise RuntimeError("boom")

    bridge = make_bridge(execute)
    with qtbot.waitSignal(bridge.finished, timeout=3000) as done:
        bridge.start(spec())
    result = done.args[0]
    assert result.status == "failed" and "boom" in result.reason
    assert store.get_run(result.run_id).status == "failed"


def test_failed_when_the_job_cannot_start(qtbot, make_bridge):
    bridge = make_bridge(lambda *a: None)
    with qtbot.waitSignal(bridge.failed, timeout=1000) as failed:
        assert not bridge.start({"model": "x"})
    assert "JobSpec" in failed.args[0]


def test_shutdown_cancels_and_joins_and_silences(qtbot, make_bridge):
    def execute(job, run_store, on_message, cancel):
        cancel.wait(10.0)
        return RunResult(status="cancelled", run_id=1)

    bridge = make_bridge(execute)
    finished: list = []
    bridge.finished.connect(finished.append)
    assert bridge.start(spec())
    assert bridge.shutdown(timeout=5.0)
    assert bridge.threads() == [] and not bridge.is_running()
    assert not bridge.start(spec())
    qtbot.wait(50)  # let any queued signal arrive: none may
    assert finished == []


def test_a_sequence_runs_in_order_and_one_cancel_skips_the_rest(qtbot, make_bridge, store):
    second_started = threading.Event()

    def execute(job, run_store, on_message, cancel):
        if job.runtime.repeats == 21:  # the second job runs until cancelled
            second_started.set()
            cancel.wait(10.0)
            return RunResult(status="cancelled", reason="cancelled by the user", spec=job.to_dict())
        return RunResult(status="done", spec=job.to_dict(), metrics={"p50_ms": 1.0})

    bridge = make_bridge(execute)
    study = store.add_study("search", {"n": 3})
    finished: list = []
    bridge.finished.connect(lambda r: finished.append((r, bridge.is_running())))
    assert bridge.start_many([spec(repeats=20), spec(repeats=21), spec(repeats=22)], study_id=study)
    assert not bridge.start(spec())  # one sequence at a time
    qtbot.waitUntil(second_started.is_set, timeout=5000)
    with qtbot.waitSignal(bridge.sequence_finished, timeout=5000) as done:
        assert bridge.cancel()
    results = done.args[0]
    assert [r.status for r in results] == ["done", "cancelled", "cancelled"]
    assert [r.spec["runtime"]["repeats"] for r in results] == [20, 21, 22]
    assert results[2].run_id is None and "sequence was cancelled" in results[2].reason
    assert [(r.status, running) for r, running in finished] == [("done", True), ("cancelled", False)]
    assert [store.run_study_id(r.run_id) for r in results[:2]] == [study, study]
    assert not bridge.is_running()


def test_an_empty_or_mixed_sequence_is_refused(qtbot, make_bridge):
    bridge = make_bridge(lambda *a: None)
    with qtbot.waitSignal(bridge.failed, timeout=1000) as failed:
        assert not bridge.start_many([spec(), {"model": "x"}])
    assert "expected a JobSpec" in failed.args[0]
    assert not bridge.start_many([])


# --- real worker jobs -----------------------------------------------------------------------------------

def test_real_job_finishes_done_without_stalling_the_gui(qtbot, make_bridge, store):
    bridge = make_bridge()
    clock, ticks = QElapsedTimer(), {"last": 0, "max_gap": 0, "n": 0}

    def tick():
        now = clock.elapsed()
        ticks["max_gap"] = max(ticks["max_gap"], now - ticks["last"])
        ticks["last"], ticks["n"] = now, ticks["n"] + 1

    heartbeat = QTimer(interval=10)
    heartbeat.timeout.connect(tick)
    stages: list[str] = []
    bridge.progress.connect(lambda stage, *_: stages.append(stage))
    clock.start()
    heartbeat.start()
    with qtbot.waitSignal(bridge.finished, timeout=90_000) as done:
        assert bridge.start(spec())
    heartbeat.stop()
    result = done.args[0]
    print(f"\nheartbeat: {ticks['n']} ticks, longest gap {ticks['max_gap']} ms")
    assert result.status == "done", result.reason
    assert store.get_run(result.run_id).metrics["n"] >= 20
    assert 0 < result.metrics["accuracy"] <= 1
    assert "benchmark" in stages and "evaluate" in stages
    assert ticks["max_gap"] < 250


def test_real_job_cancels_within_two_seconds(qtbot, make_bridge):
    bridge = make_bridge()
    stages: list[str] = []
    bridge.progress.connect(lambda stage, *_: stages.append(stage))
    assert bridge.start(spec(repeats=10_000_000, time_budget_s=120.0))
    assert not bridge.start(spec())  # refused while running
    qtbot.waitUntil(lambda: "benchmark" in stages, timeout=60_000)
    started = time.monotonic()
    with qtbot.waitSignal(bridge.finished, timeout=5000) as done:
        bridge.cancel()
    elapsed = time.monotonic() - started
    print(f"\ncancelled after {elapsed:.2f} s")
    assert done.args[0].status == "cancelled"
    assert done.args[0].run_id is not None
    assert elapsed < 2.0


def test_real_job_with_a_missing_model_fails_with_a_reason(qtbot, make_bridge, store, tmp_path):
    bridge = make_bridge()
    missing = tmp_path / "no-such-model.onnx"
    with qtbot.waitSignal(bridge.finished, timeout=60_000) as done:
        assert bridge.start(spec(str(missing)))
    result = done.args[0]
    assert result.status == "failed"
    assert "no-such-model.onnx" in result.reason
    assert store.get_run(result.run_id).status == "failed"
