"""Fixtures of the hostile suite: a sandbox of folders that must stay untouched, and a check that every test
leaves no worker process and no AccelStudio thread behind."""

from __future__ import annotations

import threading

import pytest

from hostile_helpers import Sandbox, make_sandbox
from tests.processes import live_children


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
