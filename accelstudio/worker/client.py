"""The parent side of a worker job: start the child, read its messages, enforce stage timeouts, cancel, and
turn every way a child can end (result, error, signal, timeout, cancel) into one RunResult.

`JobRunner` is thread-agnostic: `on_message` is called from a reader thread with each protocol message and,
once, a FinishedMsg carrying the final run; the GUI turns these into Qt signals.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

from accelstudio.core.job import JobSpec, RunResult
from accelstudio.worker import protocol

CANCEL_GRACE_S = 1.0  # after a cooperative cancel request, SIGTERM
TERM_GRACE_S = 0.5  # after SIGTERM, SIGKILL
POLL_S = 0.05
STDERR_KEEP = 200  # lines of the child's stderr kept for failure reports
STARTUP_STAGE = "startup"

SIGNAL_TEXT = {
    signal.SIGSEGV: "SIGSEGV (segmentation fault)",
    signal.SIGABRT: "SIGABRT (abort)",
    signal.SIGBUS: "SIGBUS (bus error)",
    signal.SIGFPE: "SIGFPE (arithmetic fault)",
    signal.SIGILL: "SIGILL (illegal instruction)",
}

OnMessage = Callable[[protocol.Message], None]

# Child entry points: (flag of the frozen executable, module run with -m). "job" runs a JobSpec; "inspect"
# opens one trusted model file and writes a data-only snapshot (accelstudio.worker.inspect_child).
WORKER_ENTRIES = {"job": ("--worker", "accelstudio.worker"),
                  "inspect": ("--inspect-worker", "accelstudio.worker.inspect_child")}


def worker_command(kind: str = "job") -> list[str]:
    """How to start a child of `kind` (see WORKER_ENTRIES): the module normally, the bundled executable with
    its flag (--worker, --inspect-worker) when frozen."""
    flag, module = WORKER_ENTRIES[kind]
    if getattr(sys, "frozen", False):
        return [sys.executable, flag]
    return [sys.executable, "-m", module]


class JobRunner:
    """Runs one JobSpec in a child process. start(), then wait() for the RunResult; cancel() at any time.

    `command` starts another child that speaks the same protocol (default: `worker_command()`)."""

    def __init__(self, spec: JobSpec, on_message: OnMessage | None = None, command: list[str] | None = None):
        self.spec = spec
        self.on_message = on_message
        self._command = list(command) if command is not None else None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._result: RunResult | None = None
        self._outcome: protocol.ResultMsg | protocol.ErrorMsg | None = None
        self._stage = STARTUP_STAGE
        self._stage_since = self._last_msg = time.monotonic()
        self._cancel_at: float | None = None
        self._timeout_reason: str | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_KEEP)
        self._garbled: list[str] = []
        self._identity: dict[str, Any] = {"path": spec.model, "name": spec.model}
        self._threads: list[threading.Thread] = []
        self._created = datetime.now(timezone.utc).isoformat(timespec="seconds")

    # --- public ------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def stage(self) -> str:
        """The stage the child last reported ("startup" before its first message)."""
        return self._stage

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it has ended (negative: the signal that ended it), else None."""
        return self._proc.returncode if self._proc is not None else None

    @property
    def timed_out(self) -> bool:
        """True when the child was killed because a stage ran past `spec.timeout_s`."""
        return self._timeout_reason is not None

    @property
    def result(self) -> RunResult | None:
        """The final RunResult once the run is over, else None."""
        return self._result

    def start(self) -> "JobRunner":
        """Start the child and send it the job."""
        if self._proc is not None:
            raise RuntimeError("this JobRunner was already started")
        command = self._command if self._command is not None else worker_command()
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=_child_env())
        self._stage_since = self._last_msg = time.monotonic()
        self._send(protocol.encode_spec(self.spec.to_dict()))
        for target in (self._read_messages, self._read_stderr, self._supervise):
            thread = threading.Thread(target=target, name=f"accelstudio-job-{target.__name__}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def is_running(self) -> bool:
        """True from start() until the final result is known."""
        return self._proc is not None and not self._done.is_set()

    def cancel(self) -> None:
        """Ask the child to stop; it is terminated after CANCEL_GRACE_S and killed TERM_GRACE_S later."""
        with self._lock:
            if self._proc is None or self._done.is_set() or self._cancel_at is not None:
                return
            self._cancel_at = time.monotonic()
        self._send(protocol.CANCEL_LINE + "\n")

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """The final RunResult; None if `timeout` seconds pass first."""
        if self._proc is None:
            raise RuntimeError("start() the JobRunner first")
        if not self._done.wait(timeout):
            return None
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        return self._result

    # --- threads -----------------------------------------------------------------------------------------

    def _send(self, text: str) -> None:
        try:
            self._proc.stdin.write(text.encode("utf-8"))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the child is gone; the supervisor reports how it ended

    def _read_messages(self) -> None:
        for raw in self._proc.stdout:
            try:
                msg = protocol.parse_line(raw)
            except protocol.ProtocolError as exc:
                if len(self._garbled) < 5:
                    self._garbled.append(f"garbled message ignored: {exc}")
                continue
            now = time.monotonic()
            with self._lock:
                self._last_msg = now
                if isinstance(msg, protocol.ProgressMsg):
                    if msg.stage != self._stage:
                        self._stage, self._stage_since = msg.stage, now
                    if isinstance(msg.partial.get("model_identity"), dict):
                        self._identity = msg.partial["model_identity"]
                elif isinstance(msg, (protocol.ResultMsg, protocol.ErrorMsg)):
                    self._outcome = msg
            self._notify(msg)

    def _read_stderr(self) -> None:
        for raw in self._proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _supervise(self) -> None:
        proc = self._proc
        term_sent = False
        while proc.poll() is None:
            now = time.monotonic()
            with self._lock:
                cancel_at, timed_out = self._cancel_at, self._timeout_reason
                if timed_out is None and self._outcome is None:
                    timed_out = self._timeout_reason = self._check_timeout(now)
            if timed_out is not None:
                _kill(proc)
            elif cancel_at is not None and now - cancel_at > CANCEL_GRACE_S + TERM_GRACE_S:
                _kill(proc)
            elif cancel_at is not None and now - cancel_at > CANCEL_GRACE_S and not term_sent:
                term_sent = True
                _signal(proc, signal.SIGTERM)
            try:
                proc.wait(POLL_S)
            except subprocess.TimeoutExpired:
                pass
        for reader in self._threads[:2]:  # every line the child wrote has been read
            reader.join(timeout=2.0)
        self._finish(self._build_result(proc.returncode))

    def _check_timeout(self, now: float) -> str | None:
        limit = self.spec.timeout_s
        if limit and limit > 0 and (now - self._last_msg > limit or now - self._stage_since > limit):
            return f"stage '{self._stage}' timed out after {limit:g} s"
        return None

    def _finish(self, result: RunResult) -> None:
        streams = [self._proc.stdin] + [s for s, t in zip((self._proc.stdout, self._proc.stderr), self._threads)
                                        if not t.is_alive()]
        for stream in streams:
            try:
                stream.close()
            except OSError:
                pass
        self._result = result
        self._done.set()
        self._notify(protocol.FinishedMsg(result.to_dict()))

    def _notify(self, msg: protocol.Message) -> None:
        if self.on_message is None:
            return
        try:
            self.on_message(msg)
        except Exception as exc:  # a faulty callback must not stop the reader (the child would block)
            if len(self._garbled) < 5:
                self._garbled.append(f"message callback raised {type(exc).__name__}: {exc}")

    # --- outcome -----------------------------------------------------------------------------------------

    def _build_result(self, returncode: int) -> RunResult:
        outcome, stage = self._outcome, self._stage
        if isinstance(outcome, protocol.ResultMsg):
            result = RunResult.from_dict(outcome.run)
            if self._garbled:
                notes = list(result.metrics.get("notes") or []) + [f"worker channel: {g}" for g in self._garbled]
                result = dataclasses.replace(result, metrics={**result.metrics, "notes": notes})
            return result
        if isinstance(outcome, protocol.ErrorMsg):
            if outcome.category == "cancelled":
                return self._failed("cancelled", "cancelled by the user")
            if outcome.category == "MemoryError":
                limit = self.spec.memory_limit_mb
                return self._failed("failed", f"out of memory during stage '{stage}'"
                                    + (f" (limit {limit} MB)" if limit else ""), traceback=outcome.traceback)
            extra = {"traceback": outcome.traceback, "error_type": outcome.category} if outcome.kind == "exception" \
                else {"error_category": outcome.category}
            return self._failed("failed", outcome.message, **extra)
        if self._timeout_reason is not None:
            return self._failed("failed", self._timeout_reason)
        if self._cancel_at is not None:
            return self._failed("cancelled", "cancelled by the user")
        return self._failed("failed", self._death_reason(returncode, stage), traceback=self._stderr_text())

    def _death_reason(self, returncode: int, stage: str) -> str:
        if returncode < 0:
            sig = -returncode
            if sig == signal.SIGKILL:
                limit = self.spec.memory_limit_mb
                why = f"possibly out of memory: limit {limit} MB" if limit else "possibly out of memory"
                return f"worker killed: SIGKILL during stage '{stage}' ({why})"
            name = SIGNAL_TEXT.get(sig) or _signal_name(sig)
            return f"worker crashed: {name} during stage '{stage}'"
        last = next((line for line in reversed(self._stderr) if line.strip()), "")
        tail = f": {last.strip()[:300]}" if last else ""
        return f"worker exited with code {returncode} during stage '{stage}' without a result{tail}"

    def _stderr_text(self) -> str:
        return "\n".join(self._stderr)

    def _failed(self, status: str, reason: str, **metrics: Any) -> RunResult:
        if self._garbled:
            metrics["notes"] = [f"worker channel: {g}" for g in self._garbled]
        return RunResult(status=status, reason=reason, spec=self.spec.to_dict(),
                         metrics={k: v for k, v in metrics.items() if v}, model_identity=dict(self._identity),
                         created=self._created)


def execute_job(spec: JobSpec, store=None, on_message: OnMessage | None = None,
                cancel_event: threading.Event | None = None) -> RunResult:
    """Run `spec` in a worker and wait; setting `cancel_event` (or Ctrl-C) cancels it. The result (any status) is saved
    in `store` (a RunStore) when given, and returned with its run_id."""
    runner = JobRunner(spec, on_message=on_message).start()
    try:
        result = wait_cancellable(runner, cancel_event)
    except KeyboardInterrupt:  # Ctrl-C: cancel the job and record it as cancelled
        runner.cancel()
        result = runner.wait()
    except BaseException:  # never leave the child behind
        runner.cancel()
        runner.wait()
        raise
    if store is not None:
        result = dataclasses.replace(result, run_id=store.add_run(result))
    return result


def wait_cancellable(runner: JobRunner, cancel_event: threading.Event | None) -> RunResult:
    """Wait for a started runner's result, cancelling it once `cancel_event` is set."""
    while True:
        result = runner.wait(0.1)
        if result is not None:
            return result
        if cancel_event is not None and cancel_event.is_set():
            runner.cancel()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # OpenMP threads that spin while waiting turn a busy machine's torch latency from microseconds into tens of
    # milliseconds (every parallel step waits for a thread that has no core); passive waiting avoids that.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except (ProcessLookupError, OSError):
        pass


def _kill(proc: subprocess.Popen) -> None:
    _signal(proc, signal.SIGKILL)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
