"""An exception crossing the worker pipe: the child turns it into one ErrorMsg, the parent rebuilds it once.

A user error (AccelStudioError) keeps its class, message and its path, detail and field attributes, so the
parent raises the same typed error the child raised (UnsupportedModelError, UnknownStudy...) without running
any of the error's own code. Anything else stays an "exception" message with its type name and traceback.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from accelstudio.core.errors import AccelStudioError, ModelLoadError
from accelstudio.worker import protocol

ERROR_FIELDS = ("path", "detail", "field")  # the attributes typed errors carry besides their message


class WorkerFailedError(AccelStudioError):
    """A worker job ended without a result for a reason other than a typed user error: it crashed, timed out,
    ran out of memory, or its code raised an unexpected exception (`child_traceback` holds the child's)."""

    category = "worker failed"

    def __init__(self, message: str, child_traceback: str = ""):
        super().__init__(message)
        self.child_traceback = child_traceback


class ModelCrashedError(ModelLoadError):
    """The process that opened a trusted model died: the file's code crashed, aborted or exited."""

    category = "crashed while loading"


class ModelLoadTimeoutError(ModelLoadError):
    """The process that opened a trusted model did not finish in time and was stopped."""

    category = "took too long to load"


# -- child side ----------------------------------------------------------------------------------------------
def error_message(exc: BaseException) -> protocol.ErrorMsg:
    """The protocol error for an exception: user errors carry their category, type and fields, MemoryError
    says so."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, AccelStudioError):
        fields = {name: str(getattr(exc, name)) for name in ERROR_FIELDS if getattr(exc, name, None) is not None}
        return protocol.ErrorMsg("user_error", exc.category, str(exc), tb, type(exc).__name__, fields)
    if isinstance(exc, MemoryError) or _allocation_failure(exc):
        return protocol.ErrorMsg("exception", "MemoryError", "out of memory", tb, "MemoryError")
    return protocol.ErrorMsg("exception", type(exc).__name__, f"{type(exc).__name__}: {exc}", tb,
                             type(exc).__name__)


def _allocation_failure(exc: BaseException) -> bool:
    text = str(exc)
    return any(s in text for s in ("can't allocate memory", "std::bad_alloc", "Failed to allocate memory"))


# -- parent side ---------------------------------------------------------------------------------------------
def rebuild_error(msg: protocol.ErrorMsg) -> AccelStudioError:
    """The typed error a child's user_error message describes: the same class when the parent knows it (else
    AccelStudioError with the child's category), the same message, path, detail and field. The class's
    __init__ is not called: the message is kept exactly as the child wrote it."""
    cls = known_errors().get(msg.error_type, AccelStudioError)
    error = cls.__new__(cls)
    Exception.__init__(error, msg.message)
    if cls is AccelStudioError and msg.category:
        error.category = msg.category
    for name, value in msg.fields.items():
        if name in ERROR_FIELDS:
            setattr(error, name, Path(value) if name == "path" else value)
    error.child_traceback = msg.traceback
    return error


def known_errors() -> dict[str, type[AccelStudioError]]:
    """Every AccelStudioError subclass imported in this process, by class name."""
    import accelstudio.core.compress.snapshot  # noqa: F401  (SnapshotError)
    import accelstudio.core.studies.registry  # noqa: F401  (UnknownStudy)

    found: dict[str, type[AccelStudioError]] = {}
    pending = [AccelStudioError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.__name__, cls)
        pending.extend(cls.__subclasses__())
    return found
