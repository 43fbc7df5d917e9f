"""The app process killed with SIGKILL in the middle of a run (or of a commit): the store reopens, passes
SQLite's integrity check, and holds every run committed before the kill. The orphaned worker ends by itself."""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from accelstudio.core.runs.store import RunStore
from tests.processes import live_children

APP_LOOP = Path(__file__).with_name("app_loop.py")
ORPHAN_EXIT_S = 60.0


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child to exit (a pidfd becomes readable when it does)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def _kill_when(proc: subprocess.Popen, should_kill) -> tuple[list[int], list[int]]:
    """Read the app's lines until should_kill(line, committed) says so, then SIGKILL it. Returns the run ids
    it reported committed, and the pids of its worker children at the moment of the kill."""
    committed: list[int] = []
    for raw in proc.stdout:
        line = raw.decode().strip()
        if line.startswith("committed "):
            committed.append(int(line.split()[1]))
        if should_kill(line, committed):
            break
    else:
        pytest.fail(f"the app ended before the kill point (rc {proc.wait()})")
    workers = live_children(proc.pid)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    return committed, workers


def _check_store(path: Path, committed: list[int]) -> RunStore:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    store = RunStore(path)
    assert store.integrity_ok()
    ids = {r.run_id for r in store.list_runs()}
    assert set(committed) <= ids, f"lost runs: {set(committed) - ids}"
    return store


def _reap_orphans(workers: list[int]) -> None:
    survivors = [pid for pid in workers if not _wait_gone(pid, ORPHAN_EXIT_S)]
    for pid in survivors:  # started by this test's app: end them before failing
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"worker(s) outlived the killed app by {ORPHAN_EXIT_S} s: {survivors}"


@pytest.mark.parametrize("seed", [0])
def test_app_killed_mid_run_keeps_committed_runs(seed, tmp_path):
    """One job completes; the second is killed after a seeded number of its progress messages."""
    db = tmp_path / "runs.sqlite"
    kill_after = random.Random(seed).randint(1, 10)
    seen = {"progress": 0}

    def should_kill(line: str, committed: list[int]) -> bool:
        if len(committed) >= 1 and line.startswith("progress "):
            seen["progress"] += 1
        return seen["progress"] >= kill_after

    proc = subprocess.Popen([sys.executable, str(APP_LOOP), "jobs", str(db), "5"], stdout=subprocess.PIPE)
    committed, workers = _kill_when(proc, should_kill)
    assert len(committed) == 1 and len(workers) == 1
    _reap_orphans(workers)
    store = _check_store(db, committed)
    assert store.get_run(committed[0]).status == "done"
    assert store.count() == 1  # the killed run was never half-written


@pytest.mark.parametrize("seed", [0, 1])
def test_app_killed_mid_commit_keeps_committed_runs(seed, tmp_path):
    db = tmp_path / "runs.sqlite"
    target = random.Random(seed).randint(20, 120)
    proc = subprocess.Popen([sys.executable, str(APP_LOOP), "commits", str(db)], stdout=subprocess.PIPE)
    committed, _ = _kill_when(proc, lambda _line, ids: len(ids) >= target)
    store = _check_store(db, committed)
    ids = sorted(r.run_id for r in store.list_runs())  # a few more may have committed before the kill landed
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= len(committed)
    assert all(store.get_run(i).metrics["p50_ms"] == float(i) for i in ids)  # every stored run is whole


@pytest.mark.slow
def test_cli_run_killed_mid_benchmark(tmp_path):
    """`accelstudio run` completes once into a store, then a second one is killed in its benchmark stage."""
    db = tmp_path / "runs.sqlite"
    args = [sys.executable, "-m", "accelstudio", "run", "--example", "digits-mlp", "--no-artifact",
            "--repeats", "5", "--warmup", "1", "--time-budget", "0.3", "--max-samples", "64", "--store", str(db)]
    first = subprocess.run(args + ["--json"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    endless = [a if a != "0.3" else "600" for a in args]
    endless[endless.index("--repeats") + 1] = str(10**9)
    proc = subprocess.Popen(endless, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for raw in proc.stderr:  # the CLI prints "[stage] text" as each stage starts
        if raw.startswith(b"[benchmark]"):
            break
    workers = live_children(proc.pid)
    proc.kill()
    proc.wait()
    proc.stderr.close()
    assert len(workers) == 1
    _reap_orphans(workers)
    store = _check_store(db, [1])
    assert store.count() == 1 and store.get_run(1).status == "done"
