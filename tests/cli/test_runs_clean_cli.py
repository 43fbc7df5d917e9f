"""`accelstudio runs clean|pin` and the store's disk use in `runs list`: artifacts go, runs stay."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from accelstudio.core.paths import artifacts_dir
from accelstudio.core.runs.store import RunStore
from tests.cli.test_runs_cli import run_cli
from tests.core.test_store import make_run

MB = 1024 * 1024


def _fill(tmp_path, count: int) -> tuple[Path, list[int]]:
    """Runs that each keep a 1 MB model in the (test's own) artifacts folder."""
    store_path = tmp_path / "runs.sqlite"
    store = RunStore(store_path)
    ids = []
    for i in range(count):
        folder = artifacts_dir() / f"run-{i}"
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"\0" * MB)
        ids.append(store.add_run(replace(make_run(i), artifact=str(folder / "model.onnx"))))
    return store_path, ids


def test_clean_keep_mb_removes_oldest_unpinned_and_list_shows_disk_use(tmp_path):
    store_path, ids = _fill(tmp_path, 4)
    assert artifacts_dir().is_relative_to(Path(os.environ["ACCELSTUDIO_HOME"]))
    listed = run_cli("runs", "list", "--store", str(store_path))
    assert listed.returncode == 0, listed.stderr
    assert "4 optimized models 4.0 MB" in listed.stderr
    pinned = run_cli("runs", "pin", str(ids[0]), "--store", str(store_path))
    assert pinned.returncode == 0, pinned.stderr
    cleaned = run_cli("runs", "clean", "--keep-mb", "2.5", "--json", "--store", str(store_path))
    assert cleaned.returncode == 0, cleaned.stderr
    doc = json.loads(cleaned.stdout)
    assert doc["removed"] == [ids[1], ids[2]] and doc["freed_bytes"] == 2 * MB
    assert doc["disk_use"]["artifacts_bytes"] == 2 * MB and doc["disk_use"]["pinned_bytes"] == MB
    assert sorted(p.name for p in artifacts_dir().iterdir()) == ["run-0", "run-3"]
    store = RunStore(store_path)
    assert store.count() == 4 and store.get_run(ids[1]).artifact is None


def test_clean_everything_unpinned_then_unpin(tmp_path):
    store_path, ids = _fill(tmp_path, 2)
    assert run_cli("runs", "pin", str(ids[1]), "--store", str(store_path)).returncode == 0
    cleaned = run_cli("runs", "clean", "--store", str(store_path))
    assert cleaned.returncode == 0, cleaned.stderr
    assert "removed the optimized models of 1 run(s), freed 1.0 MB" in cleaned.stdout
    assert run_cli("runs", "pin", "--unpin", str(ids[1]), "--store", str(store_path)).returncode == 0
    again = run_cli("runs", "clean", "--ids", str(ids[1]), "--store", str(store_path))
    assert again.returncode == 0 and "1 run(s)" in again.stdout
    assert list(artifacts_dir().iterdir()) == [] and RunStore(store_path).count() == 2
    bad = run_cli("runs", "clean", "--keep-mb", "-1", "--store", str(store_path))
    assert bad.returncode != 0 and "0 or more" in bad.stderr
