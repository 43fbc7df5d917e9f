"""Shared pieces of the hostile-input suite: a sandbox that proves nothing outside the app's folder is written
and no input file changes, fast job specs, and data-set builders."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from accelstudio.core.job import JobSpec, RuntimeSettings

# Few calls, one thread: a hostile job should fail on its input, not spend seconds measuring.
FAST = RuntimeSettings(runtime="onnxruntime", threads=1, warmup=1, repeats=5, time_budget_s=0.3)
FAST_TORCH = RuntimeSettings(runtime="torch", threads=1, warmup=1, repeats=5, time_budget_s=0.3)
# A benchmark that runs until cancelled (or until the stage timeout).
ENDLESS = RuntimeSettings(runtime="onnxruntime", threads=1, warmup=1, repeats=10**9, time_budget_s=600.0)
WORKER_WAIT_S = 120.0
# A stage timeout short enough for a quick test but above the worker's start-up (importing torch and ONNX
# Runtime before its first stage takes 1.5-4 s on this busy 2-core machine): the timeout covers start-up too.
STARTUP_SAFE_TIMEOUT_S = 7


def fast_spec(model: str | Path, runtime: RuntimeSettings = FAST, **kw) -> JobSpec:
    """A job that measures little and keeps no artifact unless asked."""
    kw.setdefault("keep_artifact", False)
    kw.setdefault("max_eval_samples", 64)
    return JobSpec(model=str(model), runtime=runtime, **kw)


# --- the sandbox -----------------------------------------------------------------------------------------

def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tree_state(root: Path, hash_limit: int = 64 << 20) -> dict[str, tuple]:
    """Every entry under `root` (not following links): kind, size, mtime_ns and, for files up to
    `hash_limit` bytes, the SHA-256 of their content."""
    out: dict[str, tuple] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            elif not stat.S_ISREG(st.st_mode):  # a pipe or device: never open it
                out[rel] = ("special", stat.S_IFMT(st.st_mode), st.st_mtime_ns)
            else:
                digest = _digest(p) if st.st_size <= hash_limit else None
                out[rel] = ("file", st.st_size, st.st_mtime_ns, digest)
    return out


def diff_states(before: dict, after: dict) -> list[str]:
    """Human-readable differences between two tree_state() results."""
    lines = [f"new: {k}" for k in sorted(set(after) - set(before))]
    lines += [f"removed: {k}" for k in sorted(set(before) - set(after))]
    lines += [f"changed: {k} {before[k]} -> {after[k]}" for k in sorted(set(before) & set(after))
              if before[k] != after[k]]
    return lines


@dataclass
class Sandbox:
    """Folders a hostile case may not write to: `inputs` (where the hostile files are built), a private TMPDIR,
    HOME and the working directory. Only $ACCELSTUDIO_HOME (`app_home`) may change."""

    root: Path
    app_home: Path
    inputs: Path = field(init=False)
    tmp: Path = field(init=False)
    home: Path = field(init=False)
    cwd: Path = field(init=False)
    _frozen: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.inputs, self.tmp, self.home, self.cwd = (self.root / n for n in ("inputs", "tmp", "home", "cwd"))
        for p in (self.inputs, self.tmp, self.home, self.cwd):
            p.mkdir(parents=True, exist_ok=True)

    def watched(self) -> dict[str, Path]:
        return {"inputs": self.inputs, "TMPDIR": self.tmp, "HOME": self.home, "cwd": self.cwd}

    def freeze(self) -> None:
        """Record the watched folders (call after building the hostile inputs)."""
        self._frozen = {name: tree_state(path) for name, path in self.watched().items()}

    def violations(self) -> list[str]:
        """What changed in the watched folders since freeze()."""
        out = []
        for name, path in self.watched().items():
            out += [f"{name}: {line}" for line in diff_states(self._frozen.get(name, {}), tree_state(path))]
        return out

    def assert_untouched(self) -> None:
        problems = self.violations()
        assert not problems, "written outside the app's folder or input changed:\n" + "\n".join(problems)


def make_sandbox(tmp_path: Path, monkeypatch) -> Sandbox:
    """A Sandbox under tmp_path with TMPDIR, HOME and the working directory pointed into it (for this process
    and every child it starts)."""
    box = Sandbox(tmp_path / "sandbox", Path(os.environ["ACCELSTUDIO_HOME"]))
    monkeypatch.setenv("TMPDIR", str(box.tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(box.tmp))
    monkeypatch.setenv("HOME", str(box.home))
    monkeypatch.chdir(box.cwd)
    return box


# --- data sets -------------------------------------------------------------------------------------------

class MarkerArray:
    """An object that pickles to os.mkdir(marker): a data file holding it must never be unpickled."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def pickled_npy(folder: Path, marker: Path) -> Path:
    """A .npy file of dtype object whose element unpickles to os.mkdir(marker)."""
    path = folder / "evil.npy"
    arr = np.empty(1, dtype=object)
    arr[0] = MarkerArray(marker)
    np.save(path, arr, allow_pickle=True)
    return path


def pickled_npz(folder: Path, marker: Path) -> Path:
    """A .npz whose 'x' array is an object array that unpickles to os.mkdir(marker)."""
    path = folder / "evil.npz"
    arr = np.empty(4, dtype=object)
    arr[:] = [MarkerArray(marker)] * 4
    np.savez(path, x=arr, labels=np.zeros(4, np.int64))
    return path


def digits_npz(folder: Path, name: str, n: int = 20, x=None, labels=None, **arrays) -> Path:
    """A data set for digits-mlp (x: (n, 64) float32, labels 0-9) with parts replaced."""
    rng = np.random.default_rng(0)
    data = {"x": rng.random((n, 64), dtype=np.float32) if x is None else x,
            "labels": rng.integers(0, 10, n) if labels is None else labels}
    data.update(arrays)
    path = folder / name
    np.savez(path, **{k: v for k, v in data.items() if v is not False})
    return path


def image_folder(folder: Path, bad: bytes | None = b"\x89PNG\r\n\x1a\n garbage, not an image") -> Path:
    """Two class sub-folders of 8x8 grayscale PNGs; with `bad`, one more file holding those bytes as a .png."""
    from PIL import Image

    root = folder / "images"
    for cls in ("0", "1"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i + int(cls) * 100, np.uint8)).save(root / cls / f"{i}.png")
    if bad is not None:
        (root / "1" / "broken.png").write_bytes(bad)
    return root
