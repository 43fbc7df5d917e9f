"""Worker job kinds: one child main dispatches run, inspect and study requests; an unknown kind is refused;
a study's result and typed errors come back to the parent; run_many runs jobs in order under one cancel."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from accelstudio.core.errors import DatasetError, JobCancelled
from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.runs.store import RunStore
from accelstudio.core.studies.registry import UnknownStudy
from accelstudio.worker import client, protocol
from accelstudio.worker.client import JobRunner, execute_study, run_many
from accelstudio.worker.errors import WorkerFailedError, rebuild_error

STUDY_WORKER = Path(__file__).with_name("study_worker.py")


def _spec(repeats: int = 20) -> JobSpec:
    runtime = RuntimeSettings(threads=1, repeats=repeats, warmup=2, time_budget_s=0.5)
    return JobSpec(model="example:digits-mlp", runtime=runtime, evaluate=False, keep_artifact=False)


@pytest.fixture
def test_studies(monkeypatch):
    """Workers started by the client are the study test worker (the real child main, with test studies)."""
    monkeypatch.setattr(client, "worker_command", lambda: [sys.executable, str(STUDY_WORKER)])


def _raw_child(line: bytes) -> tuple[int, list[protocol.Message]]:
    """Send one request line to a worker child, keeping its stdin open (its end means "the parent is gone")
    until the result or error arrived; the exit code and the messages."""
    proc = subprocess.Popen([sys.executable, "-m", "accelstudio.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdin.write(line)
    proc.stdin.flush()
    messages = []
    for raw in proc.stdout:
        messages.append(protocol.parse_line(raw))
        if messages[-1].type in ("result", "error"):
            break
    proc.stdin.close()
    proc.stdout.close()
    return proc.wait(timeout=120), messages


# --- the request line -----------------------------------------------------------------------------------------

def test_request_round_trip_and_unknown_kinds_refused_by_the_parent():
    line = protocol.encode_request("study", {"name": "x", "params": {}})
    assert protocol.parse_request(line) == protocol.Request("study", {"name": "x", "params": {}})
    with pytest.raises(ValueError, match="unknown job kind 'train'; expected one of run, inspect, study"):
        protocol.encode_request("train", {})
    with pytest.raises(ValueError, match="unknown job kind 'train'"):
        JobRunner(kind="train", payload={})


@pytest.mark.parametrize("line, reason", [
    (b'{"kind": "train", "payload": {}}\n', "unknown job kind 'train'; expected one of run, inspect, study"),
    (b'{"model": "example:digits-mlp"}\n', 'request must be a JSON object {"kind": ..., "payload": {...}}'),
    (b"not json\n", "request is not JSON"),
])
def test_the_child_refuses_a_bad_request_with_a_clear_error(line, reason):
    code, messages = _raw_child(line)
    assert code == 2 and len(messages) == 1
    assert messages[0].type == "error" and reason in messages[0].message


def test_error_messages_carry_the_type_and_fields_and_are_rebuilt_once():
    from accelstudio.worker.errors import error_message

    msg = protocol.parse_line(protocol.encode(error_message(DatasetError("/d/x.npz", "no labels"))))
    assert (msg.kind, msg.error_type, msg.fields) == ("user_error", "DatasetError", {"path": "/d/x.npz"})
    error = rebuild_error(msg)
    assert type(error) is DatasetError and str(error) == "/d/x.npz: no labels" and error.path == Path("/d/x.npz")


# --- kind run -------------------------------------------------------------------------------------------------

def test_kind_run_in_a_raw_child_sends_a_run_result():
    code, messages = _raw_child(protocol.encode_request("run", _spec().to_dict()).encode())
    assert code == 0 and messages[0] == protocol.ProgressMsg("startup", 0.0, "worker started (run)")
    result = messages[-1]
    assert result.type == "result" and result.payload is None and result.run["status"] == "done"
    assert result.run["metrics"]["n"] >= 20


# --- kind study -----------------------------------------------------------------------------------------------

def test_a_study_runs_in_the_worker_and_returns_its_dict(test_studies):
    seen = []
    result = execute_study("test-sum-of-squares", {"values": [1, 2, 3]}, on_message=seen.append)
    assert result == {"sum": 14.0, "count": 3}
    stages = [m.stage for m in seen if m.type == "progress"]
    assert stages == ["startup", "squares", "squares", "squares"]
    assert seen[-1].type == "finished" and seen[-1].run["status"] == "done"


def test_a_study_raises_the_typed_error_the_worker_raised(test_studies):
    with pytest.raises(DatasetError) as info:
        execute_study("test-bad-data", {"path": "/data/unlabeled.npz"})
    assert str(info.value) == "/data/unlabeled.npz: has no labels; choose a labeled .npz file"
    assert info.value.path == Path("/data/unlabeled.npz")


def test_a_study_that_breaks_is_a_worker_failure_with_the_traceback(test_studies):
    with pytest.raises(WorkerFailedError, match="study 'test-broken': IndexError: list index out of range") as info:
        execute_study("test-broken", {"index": 5})
    assert "study_worker.py" in info.value.child_traceback


def test_an_unknown_study_is_refused_by_the_real_worker():
    with pytest.raises(UnknownStudy, match="unknown study 'no-such-study'"):
        execute_study("no-such-study", {})


def test_cancelling_a_study_raises_job_cancelled(test_studies):
    cancel = threading.Event()

    def watch(msg):
        if msg.type == "progress" and msg.stage == "waiting":
            cancel.set()

    with pytest.raises(JobCancelled, match="study 'test-until-cancelled' was cancelled"):
        execute_study("test-until-cancelled", {}, on_message=watch, cancel_event=cancel)


# --- run_many -------------------------------------------------------------------------------------------------

def test_run_many_runs_in_order_and_saves_each_run_as_a_trial(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    study = store.add_study("search", {"n": 2})
    done = []
    results = run_many([_spec(20), _spec(21)], store=store, study_id=study, on_result=done.append)
    assert [r.status for r in results] == ["done", "done"]
    assert [r.spec["runtime"]["repeats"] for r in results] == [20, 21]
    assert [r.run_id for r in done] == [r.run_id for r in results]
    assert [store.run_study_id(r.run_id) for r in results] == [study, study]


def test_one_cancel_stops_the_running_job_and_skips_the_rest(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    cancel = threading.Event()
    startups = []

    def watch(msg):  # cancel once the second job is under way
        if msg.type == "progress" and msg.stage == "startup":
            startups.append(msg)
        if len(startups) == 2 and msg.type == "progress" and msg.stage != "startup":
            cancel.set()

    results = run_many([_spec(20), _spec(21), _spec(22)], store=store, on_message=watch, cancel_event=cancel)
    assert [r.status for r in results] == ["done", "cancelled", "cancelled"]
    assert results[2].reason == client.SKIPPED_REASON and results[2].run_id is None
    assert results[1].reason == "cancelled by the user"
    assert [r.spec["runtime"]["repeats"] for r in results] == [20, 21, 22]
    assert sorted(r.status for r in store.list_runs()) == ["cancelled", "done"]  # the skipped job is not saved
