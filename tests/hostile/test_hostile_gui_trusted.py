"""A file the user chose to trust runs its code while it loads. The design promises that an abort or a segfault
ends one job, never the app: the window opens (loads and inspects) trusted files in a separate process, so a
trusted file that crashes while loading ends that process only. Each case runs the real window in a subprocess."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import factories as fx

GUI_OPEN = Path(__file__).with_name("gui_open.py")


def _open_in_window(model: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GUI_OPEN), str(model)], capture_output=True, text=True, errors="replace",
                          timeout=240)


@pytest.mark.slow
def test_trusted_file_that_writes_to_stdout_and_is_no_model(sandbox):
    """Control case: trusted code that only misbehaves harmlessly leaves the app running with an error."""
    proc = _open_in_window(fx.crashing_pickle_file(sandbox.inputs, "stdout_garbage"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "survived: failed UnsupportedModelError" in proc.stdout


@pytest.mark.parametrize("action", ["abort", pytest.param("segfault", marks=pytest.mark.slow)])
def test_trusted_file_that_crashes_while_loading_leaves_the_app_running(action, sandbox):
    proc = _open_in_window(fx.crashing_pickle_file(sandbox.inputs, action))
    if proc.returncode not in (0, -signal.SIGABRT, -signal.SIGSEGV):  # anything else is a broken test, not the gap
        raise RuntimeError(f"unexpected return code {proc.returncode}: {proc.stderr[-2000:]}")
    assert proc.returncode == 0 and "survived" in proc.stdout, f"app died with return code {proc.returncode}"
