"""Where AccelStudio keeps its own files: the run store, exported models, settings."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "accelstudio"


def data_dir() -> Path:
    """The user data folder: $ACCELSTUDIO_HOME if set, else the platform's user data directory."""
    override = os.environ.get("ACCELSTUDIO_HOME")
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_store_path() -> Path:
    """The experiment store: $ACCELSTUDIO_STORE if set, else runs.sqlite in the data folder."""
    override = os.environ.get("ACCELSTUDIO_STORE")
    return Path(override) if override else data_dir() / "runs.sqlite"


def artifacts_dir() -> Path:
    """Where optimized models produced by runs are kept (one sub-folder per run)."""
    path = data_dir() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path
