"""The inspect child: opens one trusted model file, inspects it, writes its data-only snapshot, and exits.

    python -m accelstudio.worker.inspect_child FOLDER [BACKEND]
    <frozen app> --inspect-worker FOLDER [BACKEND]

It speaks the job protocol (accelstudio.worker.child): a JobSpec line on stdin (model, trust, memory limit),
then progress ("load", "inspect", "snapshot"), result or error messages on a private copy of stdout, so the
parent supervises it with the same JobRunner as jobs (stage timeouts, cancel, crash signals). The file's code
runs only in this process; the parent reads back FOLDER (accelstudio.core.compress.snapshot), never a pickle.

On an error it also writes FOLDER/error.json (type, category, path, detail, message) so that the parent can
raise the same typed error. A "cancel" line or the end of stdin ends the process at once: it holds nothing
worth saving, and the parent removes FOLDER.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import threading
from pathlib import Path

from accelstudio.worker import protocol
from accelstudio.worker.child import Channel, apply_memory_limit, error_message, make_progress, take_stdout

ERROR_FILE = "error.json"
EXIT_CANCELLED = 3


def main(argv: list[str] | None = None) -> int:
    """Inspect the model named by the JobSpec on stdin into the folder given as the first argument."""
    args = sys.argv[1:] if argv is None else argv
    channel = take_stdout()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides about cancelling on Ctrl-C
    faulthandler.enable(file=sys.stderr)
    code = run(channel, args)
    sys.stderr.flush()
    os._exit(code)  # no library teardown after the result was sent


def run(channel: Channel, args: list[str]) -> int:
    """Read the spec, snapshot the model, send the result or the error; the exit code."""
    from accelstudio.core.job import JobSpec, RunResult

    line = sys.stdin.buffer.readline()
    try:
        if not 1 <= len(args) <= 2:
            raise ValueError(f"expected FOLDER [BACKEND] as arguments, got {args}")
        folder, backend = Path(args[0]), (args[1] if len(args) == 2 else None)
        spec = JobSpec.from_dict(json.loads(line))
    except (ValueError, AttributeError, TypeError, KeyError) as exc:
        channel.send(protocol.ErrorMsg("exception", "ProtocolError", f"bad inspect request: {exc}"))
        return 2
    channel.send(protocol.ProgressMsg("startup", 0.0, "inspect worker started"))
    exit_on_cancel()
    try:
        apply_memory_limit(spec.memory_limit_mb)
        from accelstudio.core.compress.snapshot import snapshot_model

        summary = snapshot_model(spec.model, folder, trust=spec.trust, backend=backend,
                                 progress=make_progress(channel))
        result = RunResult(status="done", spec=spec.to_dict(), model_identity={"path": spec.model,
                                                                               "name": summary.name})
        channel.send(protocol.ResultMsg(result.to_dict()))
    except BaseException as exc:  # everything, MemoryError included, becomes one error message
        msg = error_message(exc)
        write_error(folder, exc, msg.category)
        channel.send(msg)
    return 0


def exit_on_cancel() -> threading.Thread:
    """A daemon thread that ends the process on a "cancel" line or when stdin closes (the parent is gone)."""

    def read() -> None:
        for raw in sys.stdin.buffer:
            if raw.strip().decode("utf-8", "replace") == protocol.CANCEL_LINE:
                break
        os._exit(EXIT_CANCELLED)

    thread = threading.Thread(target=read, name="accelstudio-inspect-cancel", daemon=True)
    thread.start()
    return thread


def write_error(folder: Path, exc: BaseException, category: str) -> None:
    """Record the exception's type and parts in FOLDER/error.json (best effort)."""
    record = {"type": type(exc).__name__, "category": category, "message": str(exc),
              "path": str(getattr(exc, "path", "") or ""), "detail": str(getattr(exc, "detail", "") or "")}
    try:
        tmp = folder / f".{ERROR_FILE}.tmp"
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, folder / ERROR_FILE)
    except (OSError, ValueError, MemoryError):
        pass  # the parent still gets the protocol error


if __name__ == "__main__":
    main()
