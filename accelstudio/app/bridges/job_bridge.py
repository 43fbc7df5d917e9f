"""The bridge between the window and worker jobs: start a job, follow its progress, get the saved run.

One plain Python thread per job calls `execute_job` (accelstudio.worker.client), which runs the job in a
worker process, saves the run in the store and returns it; so the GUI thread never waits and never writes
to the store. Messages arrive on the client's reader thread; they are queued in an inbox and the bridge
(a QObject living in the GUI thread) is woken by a signal, which Qt delivers queued across threads. Widgets
are only ever touched from the GUI thread. One job at a time: `start` refuses while a job runs.
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from collections import deque
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot

from accelstudio.core.job import JobSpec, RunResult

Execute = Callable[[JobSpec, Any, Callable[[dict], None], threading.Event], RunResult]
JOIN_TIMEOUT_S = 15.0


def _default_execute() -> Execute:
    from accelstudio.worker.client import execute_job

    return execute_job


class JobBridge(QObject):
    """Runs one worker job at a time and reports on the GUI thread.

    Signals: started() once a job runs; progress(stage, fraction, text, partial) for each progress message
    (partial may hold {"latencies_ms": new per-call times, "n": calls so far}); finished(RunResult) when
    the job is over, whatever its status (done, failed with a reason, cancelled), saved in the store with its
    run_id; failed(message) when a job could not be started at all."""

    started = Signal()
    progress = Signal(str, float, str, dict)
    finished = Signal(object)
    failed = Signal(str)
    _wake = Signal()
    _done = Signal(object, int)

    def __init__(self, store, parent: QObject | None = None, execute: Execute | None = None):
        super().__init__(parent)
        self._store = store
        self._execute = execute
        self._lock = threading.Lock()
        self._inbox: deque[tuple[int, dict]] = deque()
        self._wake_pending = False
        self._ticket = 0
        self._running = False
        self._closed = False
        self._cancel: threading.Event | None = None
        self._threads: list[threading.Thread] = []
        self._wake.connect(self._drain)
        self._done.connect(self._on_done)

    @property
    def store(self):
        """The RunStore runs are saved in."""
        return self._store

    def is_running(self) -> bool:
        """True from a successful start() until finished is emitted."""
        return self._running

    def start(self, spec: JobSpec) -> bool:
        """Start a job in the background; False (and nothing started) when a job is already running or the
        bridge is shut down, False with failed(message) when the job cannot be started."""
        if self._running or self._closed:
            return False
        if not isinstance(spec, JobSpec):
            self.failed.emit(f"cannot start a job from a {type(spec).__name__}; expected a JobSpec")
            return False
        try:
            execute = self._execute or _default_execute()
        except ImportError as exc:
            self.failed.emit(f"the worker client is not available ({exc}); reinstall AccelStudio")
            return False
        self._threads = [t for t in self._threads if t.is_alive()]
        self._ticket += 1
        cancel = threading.Event()
        thread = threading.Thread(target=self._run, args=(spec, execute, cancel, self._ticket),
                                  name=f"accelstudio-bridge-job-{self._ticket}", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # no more threads can be created
            self.failed.emit(f"cannot start the job thread ({exc}); close other programs and try again")
            return False
        self._cancel, self._running = cancel, True
        self._threads.append(thread)
        self.started.emit()
        return True

    def cancel(self) -> bool:
        """Ask the running job to stop (it finishes as cancelled within a couple of seconds); never blocks.
        False when no job runs."""
        if not self._running or self._cancel is None:
            return False
        self._cancel.set()
        return True

    def shutdown(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Cancel any job and wait for its thread (and so its worker process) to end; no signals follow.
        Called when the window closes. Returns True when everything ended within `timeout` seconds."""
        self._closed = True
        if self._cancel is not None:
            self._cancel.set()
        ended = True
        for thread in self._threads:
            thread.join(timeout)
            ended = ended and not thread.is_alive()
        self._threads = [t for t in self._threads if t.is_alive()]
        self._running = False
        with self._lock:
            self._inbox.clear()
        return ended

    def threads(self) -> list[threading.Thread]:
        """The job threads not yet joined (for tests and diagnostics)."""
        return [t for t in self._threads if t.is_alive()]

    # --- job thread ---------------------------------------------------------------------------------------

    def _run(self, spec: JobSpec, execute: Execute, cancel: threading.Event, ticket: int) -> None:
        try:
            result = execute(spec, self._store, lambda msg: self._post(ticket, msg), cancel)
            if not isinstance(result, RunResult):
                raise TypeError(f"the job returned {type(result).__name__}, not a RunResult")
            if result.run_id is None:
                result = replace(result, run_id=self._store.add_run(result))
        except BaseException as exc:  # every failure becomes a failed run the user can see
            result = self._failed_run(spec, exc)
        self._done.emit(result, ticket)

    def _failed_run(self, spec: JobSpec, exc: BaseException) -> RunResult:
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        result = RunResult(status="failed", reason=f"internal error: {type(exc).__name__}: {exc}",
                           spec=spec.to_dict(), environment={"traceback": traceback.format_exc()},
                           model_identity={"path": spec.model, "name": spec.model}, created=created)
        try:
            return replace(result, run_id=self._store.add_run(result))
        except Exception:  # the store itself is failing: still tell the user what happened
            return result

    def _post(self, ticket: int, message: Any) -> None:
        """On the reader thread: keep progress messages and wake the GUI thread once per batch."""
        message = _as_dict(message)
        if message is None or message.get("type") != "progress":
            return
        with self._lock:
            self._inbox.append((ticket, message))
            if self._wake_pending:
                return
            self._wake_pending = True
        self._wake.emit()

    # --- GUI thread -------------------------------------------------------------------------------------

    @Slot()
    def _drain(self) -> None:
        with self._lock:
            items = list(self._inbox)
            self._inbox.clear()
            self._wake_pending = False
        for ticket, msg in items:
            if ticket != self._ticket or self._closed:
                continue
            partial = msg.get("partial")
            self.progress.emit(str(msg.get("stage", "")), float(msg.get("fraction") or 0.0),
                               str(msg.get("text", "")), partial if isinstance(partial, dict) else {})

    @Slot(object, int)
    def _on_done(self, result: RunResult, ticket: int) -> None:
        if ticket != self._ticket or self._closed:
            return
        self._drain()  # progress sent before the result is reported first
        self._running = False
        self._cancel = None
        self.finished.emit(result)


def _as_dict(message: Any) -> dict | None:
    """A protocol message (a dict, or one of accelstudio.worker.protocol's dataclasses) as a dict."""
    if isinstance(message, dict):
        return message
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        return dataclasses.asdict(message)
    return None
