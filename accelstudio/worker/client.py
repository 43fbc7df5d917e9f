"""The parent side of a worker job: start the child, read its messages, enforce stage timeouts, cancel, and
turn every way a child can end (result, error, signal, timeout, cancel) into one RunResult.

Every job runs in a fresh child (`python -m accelstudio.worker`) that is sent one request of a kind (run,
inspect, study, apply; see accelstudio.worker.protocol). `execute_job` runs a JobSpec, `run_many` a sequence of
them under one cancel, `execute_study` a registered study; accelstudio.worker.inspect_client opens model files.

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
from pathlib import Path
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

STUDY_TIMEOUT_S = 600.0  # per stage, as a job's
STUDY_MEMORY_LIMIT_MB = JobSpec.memory_limit_mb
SKIPPED_REASON = "not run: the sequence was cancelled before this job started"


def worker_command() -> list[str]:
    """How to start a worker child: the module normally, the bundled executable with --worker when frozen."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--worker"]
    return [sys.executable, "-m", "accelstudio.worker"]


class JobRunner:
    """Runs one job in a child process. start(), then wait() for the RunResult; cancel() at any time.

    Kind "run" (default) runs `spec`; another `kind` sends `payload` instead, with its own `timeout_s` (per
    stage) and `memory_limit_mb`; its result is then `payload` (the result message's) or `error` (the child's
    error message), and the RunResult only says how the job ended. `command` starts another child that speaks
    the same protocol (default: `worker_command()`)."""

    def __init__(self, spec: JobSpec | None = None, on_message: OnMessage | None = None,
                 command: list[str] | None = None, *, kind: str = "run", payload: dict[str, Any] | None = None,
                 timeout_s: float | None = None, memory_limit_mb: int | None = None):
        if kind not in protocol.JOB_KINDS:
            raise ValueError(f"unknown job kind {kind!r}; expected one of {', '.join(protocol.JOB_KINDS)}")
        if spec is None and payload is None:
            raise ValueError("a JobRunner needs a JobSpec or a payload")
        self.spec = spec
        self.kind = kind
        self.on_message = on_message
        self.timeout_s = timeout_s if timeout_s is not None else (spec.timeout_s if spec is not None else 0.0)
        self.memory_limit_mb = memory_limit_mb if memory_limit_mb is not None else (
            spec.memory_limit_mb if spec is not None else 0)
        self._request = protocol.encode_request(kind, payload if payload is not None else spec.to_dict())
        self._spec_dict = spec.to_dict() if spec is not None else {}
        model = spec.model if spec is not None else str(payload.get("model") or payload.get("name") or kind)
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
        self._parsing = False  # the message reader is decoding a line (a big result takes seconds)
        self._identity: dict[str, Any] = {"path": model, "name": model}
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

    @property
    def payload(self) -> dict[str, Any] | None:
        """The result payload the child sent (kinds other than run), else None."""
        outcome = self._outcome
        return outcome.payload if isinstance(outcome, protocol.ResultMsg) else None

    @property
    def error(self) -> protocol.ErrorMsg | None:
        """The error message the child sent when its job raised, else None."""
        outcome = self._outcome
        return outcome if isinstance(outcome, protocol.ErrorMsg) else None

    def start(self) -> "JobRunner":
        """Start the child and send it the job."""
        if self._proc is not None:
            raise RuntimeError("this JobRunner was already started")
        command = self._command if self._command is not None else worker_command()
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=_child_env())
        self._stage_since = self._last_msg = time.monotonic()
        self._send(self._request)
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
            self._parsing = True
            try:
                msg = protocol.parse_line(raw)
            except protocol.ProtocolError as exc:
                self._parsing = False
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
                self._parsing = False
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
        while self._threads[0].is_alive() and self._parsing:  # ... and decoded, however big its result
            self._threads[0].join(timeout=POLL_S)
        self._finish(self._build_result(proc.returncode))

    def _check_timeout(self, now: float) -> str | None:
        limit = self.timeout_s
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
        if isinstance(outcome, protocol.ResultMsg) and outcome.run is None:
            return RunResult(status="done", spec=self._spec_dict, model_identity=dict(self._identity),
                             created=self._created)
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
                limit = self.memory_limit_mb
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
                limit = self.memory_limit_mb
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
        return RunResult(status=status, reason=reason, spec=self._spec_dict,
                         metrics={k: v for k, v in metrics.items() if v}, model_identity=dict(self._identity),
                         created=self._created)


def execute_job(spec: JobSpec, store=None, on_message: OnMessage | None = None,
                cancel_event: threading.Event | None = None, *, study_id: int | None = None) -> RunResult:
    """Run `spec` in a worker and wait; setting `cancel_event` (or Ctrl-C) cancels it. The result (any status) is saved
    in `store` (a RunStore) when given, as a trial of study `study_id` when given, and returned with its run_id."""
    runner = JobRunner(spec, on_message=on_message).start()
    result = _wait_or_stop(runner, cancel_event, cancel_on_interrupt=True)
    if store is not None:
        result = dataclasses.replace(result, run_id=store.add_run(result, study_id=study_id))
    return result


def run_many(specs: list[JobSpec], store=None, on_message: OnMessage | None = None,
             cancel_event: threading.Event | None = None, study_id: int | None = None, *,
             on_result: Callable[[RunResult], None] | None = None, execute=None) -> list[RunResult]:
    """Run `specs` one after another, each in a fresh worker, and return their results in order.

    One cancel for all: setting `cancel_event` (or a job ending cancelled, as on Ctrl-C) cancels the running job
    and skips the rest, which come back with status "cancelled" and SKIPPED_REASON, unsaved. The jobs that ran
    are saved in `store` when given (as trials of `study_id` when given) and handed to `on_result` as each ends.
    `execute(spec, store, on_message, cancel_event)` stands in for execute_job (it then saves runs itself)."""
    cancel = cancel_event if cancel_event is not None else threading.Event()
    results: list[RunResult] = []
    for spec in specs:
        if cancel.is_set():
            results.append(skipped_run(spec))
            continue
        if execute is None:
            result = execute_job(spec, store, on_message, cancel, study_id=study_id)
        else:
            result = execute(spec, store, on_message, cancel)
        if result.status == "cancelled":
            cancel.set()
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def skipped_run(spec: JobSpec) -> RunResult:
    """The result of a job of a cancelled sequence that never started."""
    return RunResult(status="cancelled", reason=SKIPPED_REASON, spec=spec.to_dict(),
                     model_identity={"path": spec.model, "name": spec.model},
                     created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def execute_study(name: str, params: dict[str, Any], on_message: OnMessage | None = None,
                  cancel_event: threading.Event | None = None, timeout_s: float = STUDY_TIMEOUT_S,
                  memory_limit_mb: int = STUDY_MEMORY_LIMIT_MB) -> dict[str, Any]:
    """Run the registered study `name` (accelstudio.core.studies.registry) with `params` in a worker and return
    its result dict. Raises the typed AccelStudioError the study raised (UnknownStudy for a name the worker does
    not know), JobCancelled when `cancel_event` is set first, WorkerFailedError when the worker crashed, timed
    out, ran out of memory or the study raised another exception."""
    payload = {"name": name, "params": params, "memory_limit_mb": memory_limit_mb}
    return execute_payload("study", payload, f"study {name!r}", on_message, cancel_event, timeout_s,
                           memory_limit_mb)


def execute_apply(request, on_message: OnMessage | None = None, cancel_event: threading.Event | None = None,
                  timeout_s: float = JobSpec.timeout_s,
                  memory_limit_mb: int = JobSpec.memory_limit_mb) -> dict[str, Any]:
    """Compress and write a model as `request` (accelstudio.core.compress.apply_file.ApplyRequest) says, in a
    worker, and return apply_to_file's report. Raises like execute_study."""
    payload = {"request": request.to_dict(), "memory_limit_mb": memory_limit_mb}
    return execute_payload("apply", payload, Path(request.model).name, on_message, cancel_event, timeout_s,
                           memory_limit_mb)


def execute_payload(kind: str, payload: dict[str, Any], what: str, on_message: OnMessage | None = None,
                    cancel_event: threading.Event | None = None, timeout_s: float = STUDY_TIMEOUT_S,
                    memory_limit_mb: int = STUDY_MEMORY_LIMIT_MB) -> dict[str, Any]:
    """Run a job of `kind` (not "run") with `payload` in a worker and return its result payload; the child's
    typed error is raised again once, here. `what` names the job in messages ("study 'x'")."""
    from accelstudio.core.errors import JobCancelled
    from accelstudio.worker.errors import WorkerFailedError, rebuild_error

    runner = JobRunner(kind=kind, payload=payload, on_message=on_message, timeout_s=timeout_s,
                       memory_limit_mb=memory_limit_mb).start()
    result = _wait_or_stop(runner, cancel_event, cancel_on_interrupt=False)
    if result.status == "done" and runner.payload is not None:
        return runner.payload
    error = runner.error
    if result.status == "cancelled":
        raise JobCancelled(f"{what} was cancelled")
    if error is not None and error.kind == "user_error":
        raise rebuild_error(error)
    raise WorkerFailedError(f"{what}: {result.reason or 'the worker sent no result'}",
                            error.traceback if error is not None else str(result.metrics.get("traceback", "")))


def _wait_or_stop(runner: "JobRunner", cancel_event: threading.Event | None, cancel_on_interrupt: bool) -> RunResult:
    """Wait for a started runner; never leave its child behind. Ctrl-C cancels the job and, with
    `cancel_on_interrupt`, returns it as cancelled; otherwise every exception is raised again once it ended."""
    try:
        return wait_cancellable(runner, cancel_event)
    except KeyboardInterrupt:
        runner.cancel()
        result = runner.wait()
        if cancel_on_interrupt:
            return result
        raise
    except BaseException:
        runner.cancel()
        runner.wait()
        raise


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
