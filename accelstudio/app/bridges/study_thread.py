"""Run one Qt-free core function (`fn(params, progress, cancel) -> dict`, the studies' signature) on a plain
Python thread, with its progress, result or error delivered on the GUI thread, and cancellation.

For light experiments that need no process isolation (the transfer-learning lesson trains three small networks
on 8x8 digits); model jobs always go to the worker process through JobBridge.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot

from accelstudio.core.errors import JobCancelled
from accelstudio.core.progress import Cancel, ProgressEvent

StudyFn = Callable[[dict[str, Any], Callable[[ProgressEvent], None], Cancel], dict[str, Any]]
JOIN_TIMEOUT_S = 10.0


class StudyThread(QObject):
    """One study at a time. Signals: progress(fraction, text, partial), finished(result dict),
    cancelled(), failed(message, traceback)."""

    progress = Signal(float, str, dict)
    finished = Signal(dict)
    cancelled = Signal()
    failed = Signal(str, str)
    _progress = Signal(int, float, str, dict)
    _done = Signal(int, str, object, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._cancel: Cancel | None = None
        self._ticket = 0
        self._closed = False
        self._progress.connect(self._on_progress)
        self._done.connect(self._on_done)

    def is_running(self) -> bool:
        return self._cancel is not None

    def start(self, fn: StudyFn, params: dict[str, Any]) -> bool:
        """Start `fn(params, progress, cancel)`; False when one is running or the thread is shut down."""
        if self.is_running() or self._closed:
            return False
        self._ticket += 1
        ticket, cancel = self._ticket, Cancel()

        def report(event: ProgressEvent) -> None:
            self._progress.emit(ticket, float(event.fraction), str(event.text), dict(event.partial))

        def body() -> None:
            try:
                self._done.emit(ticket, "done", fn(params, report, cancel), "")
            except JobCancelled:
                self._done.emit(ticket, "cancelled", None, "")
            except BaseException as exc:  # every failure reaches the user as a message
                self._done.emit(ticket, "failed", f"{type(exc).__name__}: {exc}", traceback.format_exc())

        self._cancel = cancel
        self._thread = threading.Thread(target=body, name=f"accelstudio-study-{ticket}", daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Ask the study to stop at its next check (between batches)."""
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Cancel and wait for the thread; no signals follow. True when it ended in time."""
        self._closed = True
        self.cancel()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @Slot(int, float, str, dict)
    def _on_progress(self, ticket: int, fraction: float, text: str, partial: dict) -> None:
        if ticket == self._ticket and not self._closed:
            self.progress.emit(fraction, text, partial)

    @Slot(int, str, object, str)
    def _on_done(self, ticket: int, status: str, value: object, trace: str) -> None:
        if ticket != self._ticket or self._closed:
            return
        self._cancel = None
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
        if status == "done":
            self.finished.emit(value)
        elif status == "cancelled":
            self.cancelled.emit()
        else:
            self.failed.emit(str(value), trace)
