"""Artifact bookkeeping: sizes, which artifacts a size cap removes (oldest unpinned first), removal that never
touches anything outside the artifacts folder, and runs that outlive their artifacts."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from accelstudio.core.runs.artifacts import (ArtifactEntry, artifact_entries, clean_artifacts, disk_use, owned_folder,
                                        plan_cleanup)
from accelstudio.core.runs.store import RunStore
from tests.core.test_store import make_run


def _store_with_artifacts(tmp_path, sizes: list[int]) -> tuple[RunStore, Path, list[int]]:
    """A store whose runs each name a model file of the given size in their own folder under root."""
    root = tmp_path / "artifacts"
    store = RunStore(tmp_path / "runs.sqlite")
    ids = []
    for i, size in enumerate(sizes):
        folder = root / f"2026-run-{i}"
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"x" * size)
        (folder / "model.onnx.data").write_bytes(b"y" * 10)
        ids.append(store.add_run(replace(make_run(i), artifact=str(folder / "model.onnx"))))
    return store, root, ids


def test_entries_and_disk_use_count_each_run_folder(tmp_path):
    store, root, ids = _store_with_artifacts(tmp_path, [1000, 2000, 3000])
    entries = artifact_entries(store, root)
    assert [e.run_id for e in entries] == ids
    assert [e.bytes for e in entries] == [1010, 2010, 3010]
    store.set_pinned([ids[1]], True)
    use = disk_use(store, root)
    assert use.artifacts_bytes == 6030 and use.artifact_count == 3 and use.pinned_bytes == 2010
    assert use.total_bytes == use.database_bytes + 6030 and use.database_bytes > 0
    assert "3 optimized models" in use.describe()


def test_plan_removes_oldest_unpinned_until_under_the_cap():
    def entry(i, size, pinned=False):
        return ArtifactEntry(i, "", Path(f"/a/{i}/m.onnx"), Path(f"/a/{i}"), size, pinned)

    entries = [entry(1, 100, pinned=True), entry(2, 100), entry(3, 100), entry(4, 100)]
    assert [e.run_id for e in plan_cleanup(entries, 400)] == []
    assert [e.run_id for e in plan_cleanup(entries, 250)] == [2, 3]
    assert [e.run_id for e in plan_cleanup(entries, 0)] == [2, 3, 4]  # the pinned one stays above the cap
    outside = replace(entry(5, 100), folder=None)
    assert plan_cleanup([outside], 0) == []


def test_clean_under_a_cap_deletes_folders_and_keeps_runs(tmp_path):
    store, root, ids = _store_with_artifacts(tmp_path, [1000, 1000, 1000, 1000])
    store.set_pinned([ids[0]], True)
    report = clean_artifacts(store, keep_bytes=2100, root=root)
    assert report.removed == (ids[1], ids[2]) and report.freed_bytes == 2020
    assert not (root / "2026-run-1").exists() and not (root / "2026-run-2").exists()
    assert (root / "2026-run-0").exists() and (root / "2026-run-3").exists()
    assert store.count() == 4
    assert store.get_run(ids[1]).artifact is None and store.get_run(ids[1]).status == "done"
    assert store.get_run(ids[3]).artifact is not None
    everything = clean_artifacts(store, root=root)  # no cap: every unpinned artifact
    assert everything.removed == (ids[3],)
    assert [p.name for p in root.iterdir()] == ["2026-run-0"]


def test_selected_runs_pinned_ones_refused(tmp_path):
    store, root, ids = _store_with_artifacts(tmp_path, [10, 10])
    store.set_pinned([ids[0]], True)
    report = clean_artifacts(store, run_ids=ids, root=root)
    assert report.removed == (ids[1],)
    assert report.skipped == ((ids[0], "pinned; unpin it first"),)
    assert (root / "2026-run-0" / "model.onnx").exists()


def test_removal_never_leaves_the_artifacts_folder(tmp_path):
    root = tmp_path / "artifacts"
    root.mkdir()
    outside = tmp_path / "user" / "model.onnx"
    outside.parent.mkdir()
    outside.write_bytes(b"precious")
    (root / "linked").symlink_to(outside.parent, target_is_directory=True)
    store = RunStore(tmp_path / "runs.sqlite")
    ids = [store.add_run(replace(make_run(0), artifact=str(outside))),
           store.add_run(replace(make_run(1), artifact=str(root / ".." / "user" / "model.onnx"))),
           store.add_run(replace(make_run(2), artifact=str(root / "linked" / "model.onnx"))),
           store.add_run(replace(make_run(3), artifact=str(root)))]
    assert owned_folder(outside, root) is None and owned_folder(root, root) is None
    assert owned_folder(root / "linked" / "model.onnx", root) is None
    report = clean_artifacts(store, root=root)
    assert report.removed == () and len(report.skipped) == 4
    assert outside.read_bytes() == b"precious" and (root / "linked").is_symlink() and root.is_dir()
    assert all(store.get_run(i).artifact for i in ids)


def test_folder_shared_by_a_kept_run_stays(tmp_path):
    store, root, ids = _store_with_artifacts(tmp_path, [10])
    twin = store.add_run(replace(make_run(5), artifact=store.get_run(ids[0]).artifact))
    report = clean_artifacts(store, run_ids=[ids[0]], root=root)
    assert report.removed == (ids[0],) and report.freed_bytes == 0
    assert Path(store.get_run(twin).artifact).exists()


def test_missing_artifact_counts_zero_and_is_forgotten(tmp_path):
    store, root, ids = _store_with_artifacts(tmp_path, [10])
    for child in (root / "2026-run-0").iterdir():
        os.remove(child)
    os.rmdir(root / "2026-run-0")
    assert disk_use(store, root).artifact_count == 0
    assert clean_artifacts(store, root=root).removed == (ids[0],)
    assert store.get_run(ids[0]).artifact is None
