"""Shared test set-up: headless Qt, isolated user folders, one thread for torch so tests share 2 cores well."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own store and settings folders, never the user's."""
    home = tmp_path_factory.mktemp("userhome")
    monkeypatch.setenv("ACCELSTUDIO_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    yield
