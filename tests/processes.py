"""Process checks shared by the tests that must leave no worker process behind."""

from __future__ import annotations

import os
from pathlib import Path


def proc_stats():
    """(pid, fields of /proc/<pid>/stat after the command name) for every process that can be read; fields[0] is
    the state, fields[1] the parent pid, fields[11:15] utime, stime, cutime, cstime in clock ticks."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        yield int(entry.name), text[text.rfind(")") + 2:].split()


def live_children(pid: int | None = None) -> list[int]:
    """Pids of live (not zombie) child processes of `pid` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return [child for child, fields in proc_stats() if fields[0] != "Z" and int(fields[1]) == pid]
