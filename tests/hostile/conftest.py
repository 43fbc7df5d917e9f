"""Fixtures of the hostile suite: a sandbox of folders that must stay untouched, and a check that every test
leaves no worker process and no AccelStudio thread behind."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from hostile_helpers import Sandbox, make_sandbox


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


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Sandbox:
    """Folders the case may not write to; call `sandbox.freeze()` after building inputs and
    `sandbox.assert_untouched()` at the end."""
    return make_sandbox(tmp_path, monkeypatch)


@pytest.fixture(autouse=True)
def _nothing_left_running():
    before = set(live_children())
    threads_before = set(threading.enumerate())
    yield
    leftover = [p for p in live_children() if p not in before]
    assert not leftover, f"child processes left running: {leftover}"
    threads = [t.name for t in threading.enumerate()
               if t not in threads_before and t.is_alive() and t.name.startswith("accelstudio")]
    assert not threads, f"threads left running: {threads}"
