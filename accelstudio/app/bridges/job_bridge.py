"""The bridge between the window and worker jobs: start a job, follow its progress, get the saved run.

One plain Python thread per job, or per sequence of jobs, calls `run_many` (accelstudio.worker.client), which
runs each job in a fresh worker process, saves each run in the store and returns them; so the GUI thread never
waits and never writes to the store. Messages arrive on the client's reader thread; they are queued in an inbox
and the bridge (a QObject living in the GUI thread) is woken by a signal, which Qt delivers queued across
threads. Widgets are only ever touched from the GUI thread. One job or sequence at a time: `start` and
`start_many` refuse while one runs; one cancel stops the running job and skips the rest.
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from collections import deque
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from PySide6.QtCore import QObject, Signal, Slot

from accelstudio.core.job import JobSpec, RunResult

Execute = Callable[[JobSpec, Any, Callable[[dict], None], threading.Event], RunResult]
JOIN_TIMEOUT_S = 15.0


class JobBridge(QObject):
    """Runs one worker job, or one sequence of jobs, at a time and reports on the GUI thread.

    Signals: started() once a job or sequence runs; progress(stage, fraction, text, partial) for each progress
    message (partial may hold {"latencies_ms": new per-call times, "n": calls so far}); finished(RunResult) for
    each job that ran, whatever its status (done, failed with a reason, cancelled), saved in the store with its
    run_id (the last one once is_running() is False); sequence_finished(list of RunResult) when all are over, in
    order, jobs skipped after a cancel included (status cancelled, unsaved); failed(message) when a job could
    not be started at all."""

    started = Signal()
    progress = Signal(str, float, str, dict)
    finished = Signal(object)
    sequence_finished = Signal(list)
    failed = Signal(str)
    _wake = Signal()
    _one_done = Signal(object, int)
    _done = Signal(list, int)

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
        self._held: RunResult | None = None  # the latest finished run, reported once the next one ends
        self._threads: list[threading.Thread] = []
        self._wake.connect(self._drain)
        self._one_done.connect(self._on_one_done)
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
        return self.start_many([spec])

    def start_many(self, specs: Sequence[JobSpec], study_id: int | None = None) -> bool:
        """Start jobs that run one after another in the background (each run saved as it ends, as a trial of
        `study_id` when given); like start() otherwise. cancel() stops the running one and skips the rest."""
        if self._running or self._closed:
            return False
        wrong = [s for s in specs if not isinstance(s, JobSpec)]
        if wrong or not specs:
            what = type(wrong[0]).__name__ if wrong else "an empty sequence"
            self.failed.emit(f"cannot start a job from {what}; expected a JobSpec")
            return False
        try:
            import accelstudio.worker.client  # noqa: F401  (the jobs run through it)
        except ImportError as exc:
            self.failed.emit(f"the worker client is not available ({exc}); reinstall AccelStudio")
            return False
        execute = self._execute
        self._threads = [t for t in self._threads if t.is_alive()]
        self._ticket += 1
        cancel = threading.Event()
        thread = threading.Thread(target=self._run, args=(list(specs), study_id, execute, cancel, self._ticket),
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
        """Ask the running job to stop (it finishes as cancelled within a couple of seconds) and skip the rest of
        its sequence; never blocks. False when no job runs."""
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

    def _run(self, specs: list[JobSpec], study_id: int | None, execute: Execute | None,
             cancel: threading.Event, ticket: int) -> None:
        from accelstudio.worker.client import run_many

        def one(spec, store, on_message, cancel_event) -> RunResult:
            try:
                if execute is None:  # the worker client: saved by run_many, as a trial of study_id
                    from accelstudio.worker.client import execute_job

                    return execute_job(spec, store, on_message, cancel_event, study_id=study_id)
                result = execute(spec, store, on_message, cancel_event)
                if not isinstance(result, RunResult):
                    raise TypeError(f"the job returned {type(result).__name__}, not a RunResult")
                if result.run_id is None:
                    result = replace(result, run_id=store.add_run(result, study_id=study_id))
                return result
            except BaseException as exc:  # every failure becomes a failed run the user can see
                return self._failed_run(spec, exc)

        results = run_many(specs, self._store, lambda msg: self._post(ticket, msg), cancel,
                           on_result=lambda result: self._one_done.emit(result, ticket), execute=one)
        self._done.emit(results, ticket)

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
    def _on_one_done(self, result: RunResult, ticket: int) -> None:
        if ticket != self._ticket or self._closed:
            return
        self._drain()  # progress sent before the result is reported first
        held, self._held = self._held, result
        if held is not None:
            self.finished.emit(held)

    @Slot(list, int)
    def _on_done(self, results: list, ticket: int) -> None:
        if ticket != self._ticket or self._closed:
            return
        self._drain()
        self._running = False
        self._cancel = None
        held, self._held = self._held, None
        if held is not None:
            self.finished.emit(held)
        self.sequence_finished.emit(results)


def _as_dict(message: Any) -> dict | None:
    """A protocol message (a dict, or one of accelstudio.worker.protocol's dataclasses) as a dict."""
    if isinstance(message, dict):
        return message
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        return dataclasses.asdict(message)
    return None
