"""The optimized model files that runs keep (artifacts): their sizes, which to remove under a size cap, and a
removal that never touches anything outside the artifacts folder.

Each run's artifact lives in its own folder under paths.artifacts_dir() (pipeline._save_artifact). Removing an
artifact deletes that folder and clears the run's artifact field; the run itself (its numbers, recipe and
note) stays in the store. Runs the user pinned keep their artifact under any cap.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from accelstudio.core.paths import artifacts_dir

DEFAULT_CAP_MB = 1024  # artifacts of unpinned runs beyond this are removed, oldest first
MB = 1024 * 1024


@dataclass(frozen=True)
class ArtifactEntry:
    """One run's artifact: where it is, the folder removal would delete (None when the path lies outside the
    artifacts folder, so it is never removed), its bytes on disk (0 when missing) and whether the run is pinned."""

    run_id: int
    created: str
    path: Path
    folder: Path | None
    bytes: int
    pinned: bool

    @property
    def removable(self) -> bool:
        return self.folder is not None and not self.pinned


@dataclass(frozen=True)
class DiskUse:
    """What a run store takes on disk: the database files and the artifacts its runs name."""

    database_bytes: int
    artifacts_bytes: int
    artifact_count: int
    pinned_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.database_bytes + self.artifacts_bytes

    def describe(self) -> str:
        """e.g. '211.4 MB on disk: runs database 0.4 MB, 19 optimized models 211.0 MB (2 kept: 20.1 MB)'."""
        text = (f"{_mb(self.total_bytes)} on disk: runs database {_mb(self.database_bytes)}, "
                f"{self.artifact_count} optimized model{'s' if self.artifact_count != 1 else ''} "
                f"{_mb(self.artifacts_bytes)}")
        return text + (f" (pinned: {_mb(self.pinned_bytes)})" if self.pinned_bytes else "")


@dataclass(frozen=True)
class CleanupReport:
    """What a clean-up did: runs whose artifact was removed, bytes freed, runs left alone and why."""

    removed: tuple[int, ...] = ()
    freed_bytes: int = 0
    skipped: tuple[tuple[int, str], ...] = field(default_factory=tuple)

    def describe(self) -> str:
        text = f"removed the optimized models of {len(self.removed)} run(s), freed {_mb(self.freed_bytes)}"
        if self.skipped:
            text += f"; left {len(self.skipped)} alone (" + "; ".join(f"run {i}: {why}" for i, why in
                                                                     self.skipped[:3]) + ")"
        return text


def _mb(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB // 10 else f"{n / 1024:.0f} KB"


def size_text(n: int) -> str:
    """Bytes for people: '211.4 MB', or '16 KB' below a tenth of a MB."""
    return _mb(n)


def owned_folder(artifact: str | Path, root: Path) -> Path | None:
    """The top folder under `root` that holds `artifact` (the run's own folder), or the file itself when it lies
    directly in `root`; None when the path (as written, or with links followed) leads outside `root`."""
    root_real = Path(os.path.realpath(root))
    lexical = Path(os.path.abspath(artifact))
    real = Path(os.path.realpath(artifact))
    for candidate, base in ((lexical, Path(os.path.abspath(root))), (real, root_real)):
        try:
            rel = candidate.relative_to(base)
        except ValueError:
            return None
        if not rel.parts or rel.parts[0] in ("..", ""):
            return None
    first = lexical.relative_to(Path(os.path.abspath(root))).parts[0]
    return Path(os.path.abspath(root)) / first


def bytes_on_disk(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (links are not followed); 0 when missing."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for folder, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass  # removed while walking
    return total


def artifact_entries(store, root: Path | None = None) -> list[ArtifactEntry]:
    """The artifacts the store's runs name, oldest run first."""
    root = root if root is not None else artifacts_dir()
    entries = []
    for run_id, created, artifact, pinned in store.artifact_rows():
        folder = owned_folder(artifact, root)
        size = bytes_on_disk(folder) if folder is not None else 0
        entries.append(ArtifactEntry(run_id, created, Path(artifact), folder, size, pinned))
    return entries


def disk_use(store, root: Path | None = None) -> DiskUse:
    """The store's database bytes plus the bytes of the artifacts its runs name."""
    entries = [e for e in artifact_entries(store, root) if e.bytes > 0]
    return DiskUse(store.database_bytes(), sum(e.bytes for e in entries), len(entries),
                   sum(e.bytes for e in entries if e.pinned))


def plan_cleanup(entries: list[ArtifactEntry], keep_bytes: int) -> list[ArtifactEntry]:
    """Artifacts to remove so that all artifacts together take at most `keep_bytes`: unpinned ones, oldest
    first. Pinned artifacts always stay, so the total may remain above the cap when they alone exceed it."""
    total = sum(e.bytes for e in entries)
    chosen = []
    for entry in sorted(entries, key=lambda e: e.run_id):
        if total <= keep_bytes:
            break
        if entry.removable and entry.bytes > 0:
            chosen.append(entry)
            total -= entry.bytes
    return chosen


def remove_artifacts(store, entries: list[ArtifactEntry], root: Path | None = None) -> CleanupReport:
    """Delete these artifacts' folders (only inside the artifacts folder) and clear the runs' artifact field.
    A folder that another remaining run still names is kept; a pinned run is left alone."""
    root = root if root is not None else artifacts_dir()
    chosen = {e.run_id for e in entries}
    still_named = {e.folder for e in artifact_entries(store, root) if e.run_id not in chosen and e.folder}
    removed, skipped, freed = [], [], 0
    for entry in entries:
        if entry.pinned:
            skipped.append((entry.run_id, "pinned; unpin it first"))
            continue
        if entry.folder is None:
            skipped.append((entry.run_id, f"{entry.path} is outside {root}"))
            continue
        if entry.folder not in still_named:
            try:
                freed += _delete(entry.folder)
            except OSError as exc:
                skipped.append((entry.run_id, f"cannot remove {entry.folder}: {exc.strerror or exc}"))
                continue
        store.forget_artifact(entry.run_id)
        removed.append(entry.run_id)
    return CleanupReport(tuple(removed), freed, tuple(skipped))


def _delete(path: Path) -> int:
    size = bytes_on_disk(path)
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)
    return size


def clean_artifacts(store, keep_bytes: int | None = None, run_ids: list[int] | None = None,
                    root: Path | None = None) -> CleanupReport:
    """Remove artifacts of unpinned runs: those of `run_ids` when given, else the oldest ones beyond
    `keep_bytes` (None: every unpinned artifact)."""
    entries = artifact_entries(store, root)
    if run_ids is not None:
        wanted = set(run_ids)
        chosen = [e for e in entries if e.run_id in wanted]
    elif keep_bytes is not None:
        chosen = plan_cleanup(entries, keep_bytes)
    else:
        chosen = [e for e in entries if not e.pinned]
    return remove_artifacts(store, chosen, root)
