"""Open a model whose file runs code (trusted TorchScript, torch.export, pickled module) in a separate process,
and get back a data-only ModelSnapshot (accelstudio.core.compress.snapshot).

The child (accelstudio.worker.inspect_child) is supervised by the same JobRunner as jobs: memory limit, stage
timeout, cancel, and the signal that ended it. Whatever way it ends becomes either a snapshot or one typed
error: the file's own error is raised again with its type (UnsupportedModelError...), a crash becomes
ModelCrashedError ("the model crashed while loading (SIGABRT)"), a hang ModelLoadTimeoutError, running out of
memory ModelTooLargeError. The snapshot folder is removed once read, whatever happened.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

from accelstudio.core import errors
from accelstudio.core.errors import JobCancelled, ModelLoadError, ModelTooLargeError
from accelstudio.core.job import JobSpec, RunResult
from accelstudio.core.compress.snapshot import (
    ModelSnapshot, SnapshotError, new_snapshot_folder, read_snapshot, remove_snapshot, remove_stale_snapshots,
)
from accelstudio.worker.client import JobRunner, _signal_name, wait_cancellable, worker_command
from accelstudio.worker.inspect_child import ERROR_FILE

INSPECT_TIMEOUT_S = 300.0  # per stage: loading, inspecting, writing the snapshot
INSPECT_MEMORY_LIMIT_MB = JobSpec.memory_limit_mb  # the same cap as a job's worker
LOAD_ERRORS = {cls.__name__: cls for cls in (
    errors.ModelLoadError, errors.NotAModelError, errors.CorruptModelError, errors.UnsupportedModelError,
    errors.TrustRequiredError, errors.ModelTooLargeError, errors.ExternalDataError)}
STAGE_WORDS = {"startup": "loading", "load": "loading", "inspect": "being inspected",
               "snapshot": "being inspected"}


class ModelCrashedError(ModelLoadError):
    """The process that opened a trusted model died: the file's code crashed, aborted or exited."""

    category = "crashed while loading"


class ModelLoadTimeoutError(ModelLoadError):
    """The process that opened a trusted model did not finish in time and was stopped."""

    category = "took too long to load"


def open_isolated(ref: str, *, backend: str | None = None, trust: bool = True,
                  timeout_s: float = INSPECT_TIMEOUT_S, memory_limit_mb: int = INSPECT_MEMORY_LIMIT_MB,
                  cancel: threading.Event | None = None) -> ModelSnapshot:
    """Load and inspect `ref` in a child process and return its snapshot; raises a ModelLoadError subclass when
    opening fails in any way, JobCancelled when `cancel` is set first."""
    remove_stale_snapshots()
    folder = new_snapshot_folder()
    try:
        spec = JobSpec(model=str(ref), trust=trust, evaluate=False, keep_artifact=False, timeout_s=timeout_s,
                       memory_limit_mb=memory_limit_mb)
        command = worker_command("inspect") + [str(folder)] + ([backend] if backend else [])
        runner = JobRunner(spec, command=command).start()
        try:
            result = wait_cancellable(runner, cancel)
        except BaseException:  # never leave the child behind
            runner.cancel()
            runner.wait()
            raise
        if result.status == "done":
            try:
                return read_snapshot(folder)
            except SnapshotError as exc:
                raise ModelCrashedError(ref, f"its loader process left no readable result ({exc})") from None
        raise failure_error(Path(ref), runner, result, folder)
    finally:
        remove_snapshot(folder)


def failure_error(path: Path, runner: JobRunner, result: RunResult, folder: Path) -> Exception:
    """The exception that says why the inspect child gave no snapshot."""
    if result.status == "cancelled":
        return JobCancelled(f"opening {path.name} was cancelled")
    what = STAGE_WORDS.get(runner.stage, "loading")
    record = _error_record(folder)
    if record is not None:
        return _rebuilt_error(path, record, result, runner.spec.memory_limit_mb)
    if runner.timed_out:
        return ModelLoadTimeoutError(path, f"it was still {what} after {runner.spec.timeout_s:g} s and was "
                                           "stopped; its code may be stuck")
    code = runner.returncode
    if code is not None and code < 0:
        name = _signal_name(-code)
        if -code == signal.SIGKILL:
            return ModelCrashedError(path, f"the process that opened it was killed ({name}) while {what}, "
                                           "possibly out of memory")
        return ModelCrashedError(path, f"the model crashed while {what} ({name}): its own code ended the "
                                       "process that opened it. Check the file with the tool that made it, "
                                       "or save the model as ONNX or safetensors")
    return ModelCrashedError(path, f"the process that opened it ended while {what}: {result.reason}")


def _error_record(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / ERROR_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _rebuilt_error(path: Path, record: dict, result: RunResult, limit_mb: int) -> Exception:
    kind = str(record.get("type", ""))
    if kind in LOAD_ERRORS:
        return LOAD_ERRORS[kind](Path(str(record.get("path") or path)), str(record.get("detail", "")))
    if record.get("category") == "MemoryError":
        return ModelTooLargeError(path, f"it ran out of memory while loading (limit {limit_mb} MB)")
    error = ModelLoadError(path, f"{kind}: {record.get('message', '')}" if kind else result.reason)
    error.child_traceback = str(result.metrics.get("traceback", ""))
    return error
