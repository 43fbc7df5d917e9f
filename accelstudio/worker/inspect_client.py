"""Open a model whose file runs code (trusted TorchScript, torch.export, pickled module) in a separate process,
and get back its data-only ModelData (accelstudio.core.model.model_data, read by accelstudio.core.compress.snapshot).

The child is a worker running a job of kind "inspect", supervised by the same JobRunner as jobs: memory limit,
stage timeout, cancel, and the signal that ended it. The snapshot comes back in its result message. Whatever
way it ends becomes either a snapshot or one typed error: the file's own error is raised again with its type
(UnsupportedModelError...), a crash becomes ModelCrashedError ("the model crashed while loading (SIGABRT)"), a
hang ModelLoadTimeoutError, running out of memory ModelTooLargeError.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from accelstudio.core import errors
from accelstudio.core.errors import JobCancelled, ModelLoadError, ModelTooLargeError
from accelstudio.core.job import JobSpec, RunResult
from accelstudio.core.compress.snapshot import SnapshotError, read_snapshot
from accelstudio.core.model.model_data import ModelData
from accelstudio.worker import protocol
from accelstudio.worker.client import JobRunner, _signal_name, _wait_or_stop
from accelstudio.worker.errors import ModelCrashedError, ModelLoadTimeoutError, rebuild_error

__all__ = ["ModelCrashedError", "ModelLoadTimeoutError", "open_isolated"]

INSPECT_TIMEOUT_S = 300.0  # per stage: loading, inspecting, writing the snapshot
INSPECT_MEMORY_LIMIT_MB = JobSpec.memory_limit_mb  # the same cap as a job's worker
LOAD_ERRORS = {cls.__name__: cls for cls in (
    errors.ModelLoadError, errors.NotAModelError, errors.CorruptModelError, errors.UnsupportedModelError,
    errors.TrustRequiredError, errors.ModelTooLargeError, errors.ExternalDataError)}
STAGE_WORDS = {"startup": "loading", "load": "loading", "inspect": "being inspected",
               "snapshot": "being inspected"}


def open_isolated(ref: str, *, backend: str | None = None, trust: bool = True,
                  timeout_s: float = INSPECT_TIMEOUT_S, memory_limit_mb: int = INSPECT_MEMORY_LIMIT_MB,
                  cancel: threading.Event | None = None) -> ModelData:
    """Load and inspect `ref` in a child process and return its snapshot; raises a ModelLoadError subclass when
    opening fails in any way, JobCancelled when `cancel` is set first."""
    payload = {"model": str(ref), "trust": bool(trust), "backend": backend, "memory_limit_mb": memory_limit_mb}
    runner = JobRunner(kind="inspect", payload=payload, timeout_s=timeout_s, memory_limit_mb=memory_limit_mb)
    result = _wait_or_stop(runner.start(), cancel, cancel_on_interrupt=False)
    if result.status == "done" and runner.payload is not None:
        try:
            return read_snapshot(runner.payload)
        except SnapshotError as exc:
            raise ModelCrashedError(ref, f"its loader process left no readable result ({exc})") from None
    raise failure_error(Path(ref), runner, result)


def failure_error(path: Path, runner: JobRunner, result: RunResult) -> Exception:
    """The exception that says why the inspect child gave no snapshot."""
    if result.status == "cancelled":
        return JobCancelled(f"opening {path.name} was cancelled")
    what = STAGE_WORDS.get(runner.stage, "loading")
    if runner.error is not None:
        return _rebuilt_error(path, runner.error, runner.memory_limit_mb)
    if runner.timed_out:
        return ModelLoadTimeoutError(path, f"it was still {what} after {runner.timeout_s:g} s and was "
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


def _rebuilt_error(path: Path, error: protocol.ErrorMsg, limit_mb: int) -> Exception:
    """The child's error as a ModelLoadError: a load error keeps its type, path and detail; running out of
    memory is ModelTooLargeError; anything else a ModelLoadError naming it, with the child's traceback."""
    if error.kind == "user_error" and error.error_type in LOAD_ERRORS:
        return rebuild_error(error)
    if error.category == "MemoryError":
        return ModelTooLargeError(path, f"it ran out of memory while loading (limit {limit_mb} MB)")
    rebuilt = ModelLoadError(path, error.message if error.kind == "exception" else
                             f"{error.error_type}: {error.message}")
    rebuilt.child_traceback = error.traceback
    return rebuilt
