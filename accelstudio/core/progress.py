"""Progress reporting and cooperative cancellation shared by every long core function."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from accelstudio.core.errors import JobCancelled


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report: the stage name, the fraction done within it (0-1), a line of text, partial results."""

    stage: str
    fraction: float
    text: str = ""
    partial: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:
    """A progress callback that discards everything."""


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


class Cancel:
    """A cancel token backed by a threading.Event; `check()` raises JobCancelled once it is set."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise JobCancelled("cancelled by the user")


NEVER_CANCELLED = Cancel()


def check_cancel(cancel: CancelToken | None) -> None:
    """Raise JobCancelled if `cancel` is set; call this between batches."""
    if cancel is not None and cancel.is_set():
        raise JobCancelled("cancelled by the user")
