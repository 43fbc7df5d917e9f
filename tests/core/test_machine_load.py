"""The machine's load during a measurement: other processes' CPU share, the busy flag and its note."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelstudio.core.measure import machine_load
from accelstudio.core.measure.benchmark import measure_latency
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.model.loading import load_example
from accelstudio.core.measure.machine_load import (
    BUSY_OTHER_CPU_PCT, MIN_WINDOW_S, CpuSample, busy_note, finish_window, sample_cpu,
)
from accelstudio.core.measure.runtimes import make_predictor
from tests.processes import proc_stats

needs_proc = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc/stat")
TIMING = RuntimeSettings(threads=1, warmup=2, repeats=1_000_000, time_budget_s=0.6)


def test_share_subtracts_our_own_cpu_time():
    own_only = machine_load.machine_load(CpuSample(10, 100, 1, 0), CpuSample(40, 200, 31, 1))
    assert own_only["other_cpu_pct"] == 0.0 and own_only["own_cpu_pct"] == 30.0 and own_only["busy"] is False
    others = machine_load.machine_load(CpuSample(10, 100, 1, 0), CpuSample(40, 200, 11, 1))
    assert others["other_cpu_pct"] == 20.0 and others["busy"] is True
    at_rule = machine_load.machine_load(CpuSample(0, 0, 0, 0), CpuSample(BUSY_OTHER_CPU_PCT, 100, 0, 1))
    assert at_rule["busy"] is False  # "over 10%", not "at least"
    assert "busy machine: other processes used 20% of the CPU" in busy_note(others)
    assert busy_note(own_only) is None


def test_without_proc_stat_the_share_is_unknown_not_guessed(monkeypatch, tmp_path):
    monkeypatch.setattr(machine_load, "_PROC_STAT", tmp_path / "missing")
    assert sample_cpu() is None
    record = machine_load.machine_load(sample_cpu(), sample_cpu())
    assert record["other_cpu_pct"] is None and record["busy"] is None
    assert busy_note(record) is None
    assert set(record) >= {"load_1min", "other_cpu_pct", "busy"}


@needs_proc
def test_a_measurement_shorter_than_a_clock_tick_still_gets_a_window(predictor):
    """A tiny model's few calls end within one /proc/stat tick; the window is extended so the share means
    something (None would leave the run unflagged whatever the machine's load)."""
    before = sample_cpu()
    measure_latency(predictor, {"x": _x()}, RuntimeSettings(threads=1, warmup=0, repeats=5, time_budget_s=0.001))
    record = finish_window(before)
    assert record["window_s"] >= MIN_WINDOW_S and record["other_cpu_pct"] is not None
    assert isinstance(record["busy"], bool)


@pytest.fixture(scope="module")
def predictor():
    return make_predictor(load_example("digits-mlp", backend="onnx"), RuntimeSettings(threads=1))


def _measure(predictor) -> dict:
    before = sample_cpu()
    measure_latency(predictor, {"x": _x()}, TIMING)
    return machine_load.machine_load(before, sample_cpu())


def _x():
    import numpy as np

    return np.zeros((1, 64), dtype=np.float32)


@pytest.fixture
def spinner():
    """A child process burning one core until the test ends."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        deadline = time.monotonic() + 10
        while _cpu_ticks(proc.pid) == 0 and time.monotonic() < deadline:  # started spinning
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=0.01)
        yield proc
    finally:
        proc.kill()
        proc.wait()


@needs_proc
def test_a_competing_process_sets_the_busy_flag(predictor, spinner):
    record = _measure(predictor)
    assert record["busy"] is True, record
    # one spinning core of this machine's cores, give or take the scheduler
    assert record["other_cpu_pct"] > 0.5 * 100 / (os.cpu_count() or 1), record
    assert busy_note(record).startswith("busy machine")


def _measure_with_independent_share(predictor) -> tuple[dict, float]:
    """The record, and other processes' CPU share over the same window summed from /proc/<pid>/stat."""
    others_before, wall_before = _others_ticks(), time.monotonic()
    record = _measure(predictor)
    others = _others_ticks() - others_before
    capacity = (time.monotonic() - wall_before) * (os.cpu_count() or 1) * os.sysconf("SC_CLK_TCK")
    return record, 100.0 * others / capacity


@needs_proc
def test_share_agrees_with_per_process_accounting(predictor):
    record, others_pct = _measure_with_independent_share(predictor)
    assert record["other_cpu_pct"] == pytest.approx(others_pct, abs=15.0), (record, others_pct)


@needs_proc
def test_an_idle_machine_is_not_flagged(predictor):
    """Our own timing loop (one busy core) must not count as "other processes". The machine is shared, so
    other processes' CPU time is measured independently from /proc/<pid>/stat; when it is not quiet, skip."""
    record, others_pct = _measure_with_independent_share(predictor)
    if others_pct > BUSY_OTHER_CPU_PCT / 2:
        pytest.skip(f"the machine is not idle: other processes used {others_pct:.0f}% of the CPU meanwhile")
    assert record["own_cpu_pct"] > 100 / (os.cpu_count() or 1) / 2, record  # we did keep a core busy
    assert record["busy"] is False, (record, others_pct)


def _cpu_ticks(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _others_ticks() -> int:
    """CPU ticks of every other process, including the children they have reaped (cutime, cstime), so time
    of processes that ended in the window is still counted."""
    me = os.getpid()
    return sum(sum(int(v) for v in fields[11:15]) for pid, fields in proc_stats() if pid != me)
