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


def home_override() -> Path | None:
    """$ACCELSTUDIO_HOME when set: then every file AccelStudio writes (settings included) lives under it."""
    override = os.environ.get("ACCELSTUDIO_HOME")
    return Path(override) if override else None


def config_dir() -> Path:
    """Where settings live: $ACCELSTUDIO_HOME/config when set, else the platform's user config folder."""
    home = home_override()
    path = home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def settings_file() -> Path | None:
    """The INI file the desktop app keeps its settings in when $ACCELSTUDIO_HOME is set; None otherwise (the
    platform's usual settings place is used then)."""
    return config_dir() / "settings.ini" if home_override() else None
