"""How busy the machine was while a measurement ran, so a figure taken under load is flagged, not trusted.

`sample_cpu()` reads the machine's cumulative CPU time (Linux /proc/stat, all CPUs) and this process's own CPU
time including its waited-for children (os.times). Two samples around a measurement give the share of the
machine's CPU capacity that *other* processes used meanwhile:

    other_cpu_pct = 100 * (machine busy time - our CPU time) / (machine busy + idle time)

where busy counts user, nice, system, irq, softirq and steal (time the hypervisor gave to other guests), and
capacity is the time of all CPUs over the window (one process spinning on a 2-core machine is 50%).

Window: from the start of the timed loop to its end, extended to at least MIN_WINDOW_S when the loop is
shorter (a small model's 200 calls can take a few milliseconds, less than one /proc/stat clock tick). This
process is idle during the extension, so it only adds other processes' use of the machine around the loop.

Rule: a measurement is *busy* when other processes used more than BUSY_OTHER_CPU_PCT (10%) of the machine's CPU
during it: on a machine with few cores that much foreign work already moves p50 and widens the spread by more
than the differences a recipe makes. Where /proc/stat does not exist (macOS, Windows) the share and the flag are
None ("unknown"), never a guess; the 1-minute load average is kept wherever the OS provides one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUSY_OTHER_CPU_PCT = 10.0
MIN_WINDOW_S = 0.3  # 30 clock ticks per CPU at the usual 100 Hz: 2% resolution on 2 cores, finer on more
_PROC_STAT = Path("/proc/stat")
# /proc/stat "cpu" columns: user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is
# already part of user/nice, so it is not added again.
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)
_IDLE_COLUMNS = (3, 4)


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at one moment: the machine's busy and total time (all CPUs) and our own."""

    machine_busy_s: float
    machine_total_s: float
    own_s: float
    wall_s: float


def sample_cpu() -> CpuSample | None:
    """The current cumulative CPU times, or None where the machine's CPU time cannot be read."""
    ticks = _read_cpu_ticks()
    if ticks is None:
        return None
    hz = _clock_ticks()
    busy = sum(ticks[i] for i in _BUSY_COLUMNS if i < len(ticks)) / hz
    idle = sum(ticks[i] for i in _IDLE_COLUMNS if i < len(ticks)) / hz
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return CpuSample(busy, busy + idle, own, time.monotonic())


def finish_window(before: CpuSample | None, min_window_s: float = MIN_WINDOW_S) -> dict[str, Any]:
    """Close a window opened with `before = sample_cpu()`: wait out the rest of `min_window_s` if the window
    is shorter, sample again and return `machine_load` of the window."""
    if before is not None:
        left = min_window_s - (time.monotonic() - before.wall_s)
        if left > 0:
            time.sleep(left)  # idle on purpose: the window must span enough clock ticks to mean anything
    return machine_load(before, sample_cpu())


def machine_load(before: CpuSample | None, after: CpuSample | None) -> dict[str, Any]:
    """The metrics["machine"] record for the window between two samples: {"load_1min", "other_cpu_pct",
    "own_cpu_pct", "busy", "window_s"}; percentages of the whole machine's CPU capacity, None where unknown."""
    record: dict[str, Any] = {"load_1min": load_1min(), "other_cpu_pct": None, "own_cpu_pct": None,
                              "busy": None, "window_s": None}
    if before is None or after is None:
        return record
    record["window_s"] = round(after.wall_s - before.wall_s, 3)
    total = after.machine_total_s - before.machine_total_s
    if total <= 0:
        return record  # a window shorter than one clock tick says nothing
    busy = after.machine_busy_s - before.machine_busy_s
    own = after.own_s - before.own_s
    other = min(max(busy - own, 0.0), total)  # tick rounding can push either side of the bounds
    record["other_cpu_pct"] = round(100.0 * other / total, 1)
    record["own_cpu_pct"] = round(100.0 * min(max(own, 0.0), total) / total, 1)
    record["busy"] = record["other_cpu_pct"] > BUSY_OTHER_CPU_PCT
    return record


def busy_note(record: dict[str, Any]) -> str | None:
    """One line for the run's notes when `record` says the machine was busy, else None."""
    if not record.get("busy"):
        return None
    load = record.get("load_1min")
    load_text = f", 1-min load {load:.2f} on {_cores()} cores" if load is not None else ""
    return (f"busy machine: other processes used {record['other_cpu_pct']:.0f}% of the CPU while this run was "
            f"timed (over {BUSY_OTHER_CPU_PCT:.0f}%{load_text}); its latency and any ratio to it may be "
            "inflated: measure again on a quiet machine before trusting small differences")


def load_1min() -> float | None:
    """The 1-minute load average, or None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _read_cpu_ticks() -> list[int] | None:
    try:
        with _PROC_STAT.open() as f:
            first = f.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    try:
        return [int(v) for v in first[1:]]
    except ValueError:
        return None


def _clock_ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100.0


def _cores() -> int:
    return os.cpu_count() or 1  # the load average counts the whole machine's runnable tasks
