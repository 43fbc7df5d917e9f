"""The worker child: reads one request line {"kind", "payload"} from stdin, runs the job of that kind (the
table in accelstudio.worker.kinds), streams protocol messages, exits.

    python -m accelstudio.worker        <frozen app> --worker

The protocol goes to a private duplicate of the original stdout; file descriptor 1 (and so sys.stdout and
any C library's printf) is pointed at stderr, so nothing else can write into the message channel.
Further stdin lines saying "cancel" set the job's cancel token; end of stdin (the parent is gone) does too.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time

from accelstudio.worker import protocol
from accelstudio.worker.errors import error_message

# Virtual address space torch + onnxruntime need to import and run a small model here, with the thread
# stacks and malloc arenas of a few threads; a lower limit fails at import with a confusing error.
MIN_MEMORY_LIMIT_MB = 1536

# Test-only fault injection: make the child hang in, or raise at the start of, the named stage.
HANG_STAGE_ENV = "ACCELSTUDIO_TEST_HANG_STAGE"
RAISE_STAGE_ENV = "ACCELSTUDIO_TEST_RAISE_STAGE"


class Channel:
    """The protocol pipe: whole lines, written under a lock so threads cannot interleave them."""

    def __init__(self, fd: int):
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._lock = threading.Lock()

    def send(self, msg: protocol.Message) -> None:
        data = protocol.encode(msg).encode("utf-8")
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[self._file.write(view):]


def take_stdout() -> Channel:
    """Keep the real stdout for the protocol and send everything else written to fd 1 to stderr."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    return Channel(proto_fd)


def apply_memory_limit(limit_mb: int) -> None:
    """Cap the address space (RLIMIT_AS) at `limit_mb` (0: no cap; values below MIN_MEMORY_LIMIT_MB are raised
    to it, since torch cannot even be imported under less). Not applied to CUDA jobs (see run)."""
    if limit_mb <= 0:
        return
    import resource

    limit = max(int(limit_mb), MIN_MEMORY_LIMIT_MB) * 1024 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


EXIT_CANCELLED = 3


def watch_stdin(cancel, exit_at_once: bool = False) -> threading.Thread:
    """A daemon thread that sets `cancel` on a "cancel" line or when stdin closes; with `exit_at_once` it ends
    the process instead (for jobs that hold nothing worth saving and cannot check a cancel token)."""

    def read() -> None:
        for raw in sys.stdin.buffer:
            if raw.strip().decode("utf-8", "replace") == protocol.CANCEL_LINE:
                break
        if exit_at_once:
            os._exit(EXIT_CANCELLED)
        cancel.set()  # a cancel line, or the parent closed the pipe or died: stop working

    thread = threading.Thread(target=read, name="accelstudio-cancel", daemon=True)
    thread.start()
    return thread


def make_progress(channel: Channel):
    """A progress callback that streams events, with the test-only fault hooks."""
    hang, fail = os.environ.get(HANG_STAGE_ENV), os.environ.get(RAISE_STAGE_ENV)

    def progress(event) -> None:
        if event.stage == fail:
            raise RuntimeError(f"test fault raised in stage '{event.stage}'")
        channel.send(protocol.ProgressMsg(event.stage, float(min(max(event.fraction, 0.0), 1.0)), event.text,
                                          event.partial))
        if event.stage == hang:
            while True:
                time.sleep(3600)

    return progress


def main() -> int:
    """Run one job from stdin; always exits through os._exit so library teardown cannot crash after the
    result was sent."""
    channel = take_stdout()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides about cancelling on Ctrl-C
    faulthandler.enable(file=sys.stderr)
    code = run(channel)
    sys.stderr.flush()
    os._exit(code)


def run(channel: Channel) -> int:
    """Read the request, run the job of its kind, send its result or error; the exit code (0 unless the
    request was bad)."""
    from accelstudio.worker.kinds import KINDS

    try:
        request = protocol.parse_request(sys.stdin.buffer.readline())
        kind = KINDS[request.kind]
        limit = kind.memory_limit_mb(request.payload)
    except (protocol.ProtocolError, KeyError, ValueError, AttributeError, TypeError) as exc:
        reason = exc if isinstance(exc, protocol.ProtocolError) else f"{type(exc).__name__}: {exc}"
        channel.send(protocol.ErrorMsg("exception", "ProtocolError", f"bad request on stdin: {reason}",
                                       error_type="ProtocolError"))
        return 2
    channel.send(protocol.ProgressMsg("startup", 0.0, f"worker started ({request.kind})"))
    try:
        apply_memory_limit(limit)
        from accelstudio.core.progress import Cancel

        cancel = Cancel()
        watch_stdin(cancel, exit_at_once=kind.exit_on_cancel)
        channel.send(kind.handler(request.payload, make_progress(channel), cancel))
    except BaseException as exc:  # everything, MemoryError included, becomes one error message
        try:
            channel.send(error_message(exc))
        except MemoryError:
            channel.send(protocol.ErrorMsg("exception", "MemoryError", "out of memory", error_type="MemoryError"))
    return 0
