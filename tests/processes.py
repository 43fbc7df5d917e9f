"""Process checks shared by the tests that must leave no worker process behind."""

from __future__ import annotations

import os
from pathlib import Path


def live_children(pid: int | None = None) -> list[int]:
    """Pids of live (not zombie) child processes of `pid` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found
