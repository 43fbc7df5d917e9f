"""Messages between the worker child and its parent: one JSON object per line on a pipe the child keeps
for nothing else (its stdout and stray library prints go to stderr instead).

Parent -> child (on the child's stdin): one request line, then "cancel" lines:
    {"kind": "run" | "inspect" | "study" | "apply", "payload": {...}}
        run      payload: a JobSpec dict; the result carries "run" (a RunResult dict)
        inspect  payload: {"model", "trust", "backend", "memory_limit_mb"}; the result's payload is the model's
                 data-only snapshot (accelstudio.core.compress.snapshot.snapshot_payload)
        study    payload: {"name", "params", "memory_limit_mb"}; the result's payload is the study's result dict
        apply    payload: {"request": ApplyRequest dict, "memory_limit_mb"}; the result's payload is the report
                 of what was written (accelstudio.core.compress.apply_file.apply_to_file)
Child -> parent:
    {"type": "progress", "stage": str, "fraction": float, "text": str, "partial": {...}}
    {"type": "result", "run": <RunResult dict>}          (kind run)
    {"type": "result", "payload": {...}}                 (the other kinds)
    {"type": "error", "kind": "exception" | "user_error", "category": str, "message": str, "traceback": str,
     "error_type": str (the exception's class name), "fields": {"path"?, "detail"?, "field"?}}
The parent's client also hands its callback one parent-side message when the job is over:
    {"type": "finished", "run": <RunResult dict>}   (never sent over the pipe)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Union

# An inspect result carries the model's float32 weights (base64): a line may be as large as a big model.
MAX_LINE_BYTES = 1024 * 1024 * 1024
JOB_KINDS = ("run", "inspect", "study", "apply")
CANCEL_LINE = "cancel"
ERROR_KINDS = ("exception", "user_error")
RUN_STATUSES = ("done", "failed", "cancelled")
# JSON types of a result's run fields (RunResult.to_dict()); a result with others is garbage, not a run
_RUN_FIELD_TYPES = {"status": str, "reason": str, "spec": dict, "metrics": dict, "latencies_ms": list,
                    "layers": list, "warnings": list, "environment": dict, "model_identity": dict}


class ProtocolError(ValueError):
    """A line from the worker that is not a valid message; the text says why."""


@dataclass(frozen=True)
class Request:
    """What the parent asks one child to do: a job `kind` (one of JOB_KINDS) and its JSON payload."""

    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ProgressMsg:
    """A stage's progress (fraction 0-1 within the stage), a line of text and optional partial results."""

    stage: str
    fraction: float
    text: str = ""
    partial: dict[str, Any] = field(default_factory=dict)
    type: str = "progress"


@dataclass(frozen=True)
class ResultMsg:
    """The job's result: `run`, a RunResult dict, for kind run; `payload`, a JSON object, for the other kinds."""

    run: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None
    type: str = "result"


@dataclass(frozen=True)
class ErrorMsg:
    """The job raised: `kind` user_error for AccelStudioError (the message is for the user), exception for
    anything else; `category` is the error's category or the exception type name."""

    kind: str
    category: str
    message: str
    traceback: str = ""
    error_type: str = ""  # the exception's class name, so that the parent can raise the same type
    fields: dict[str, str] = field(default_factory=dict)  # its path, detail, field attributes where it has them
    type: str = "error"


@dataclass(frozen=True)
class FinishedMsg:
    """Parent-side only: the run is over (any status) and this is its final RunResult dict."""

    run: dict[str, Any]
    type: str = "finished"


Message = Union[ProgressMsg, ResultMsg, ErrorMsg, FinishedMsg]
_TYPES = {"progress": ProgressMsg, "result": ResultMsg, "error": ErrorMsg}


def to_dict(msg: Message) -> dict[str, Any]:
    """The message as a JSON-safe dict (with its "type")."""
    return asdict(msg)


def encode(msg: Message) -> str:
    """One protocol line (ending in a newline). Non-finite floats become null so every line is strict JSON."""
    return json.dumps(_finite(to_dict(msg)), separators=(",", ":"), allow_nan=False) + "\n"


def encode_request(kind: str, payload: dict[str, Any]) -> str:
    """The request line the parent writes first on the child's stdin; ValueError for an unknown kind."""
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}; expected one of {', '.join(JOB_KINDS)}")
    return json.dumps({"kind": kind, "payload": payload}, separators=(",", ":")) + "\n"


def parse_request(line: str | bytes) -> Request:
    """The request on the child's first stdin line; ProtocolError says what is wrong with it."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"request is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
        raise ProtocolError('request must be a JSON object {"kind": ..., "payload": {...}}')
    kind = data.get("kind")
    if kind not in JOB_KINDS:
        raise ProtocolError(f"unknown job kind {kind!r}; expected one of {', '.join(JOB_KINDS)}")
    return Request(kind, data["payload"])


def parse_line(line: str | bytes) -> Message:
    """Parse one line into a message; ProtocolError says what is wrong with a garbled or unknown line."""
    if isinstance(line, bytes):
        if len(line) > MAX_LINE_BYTES:
            raise ProtocolError(f"line of {len(line)} bytes exceeds the {MAX_LINE_BYTES}-byte limit")
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"line is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    text = line.strip()
    if not text:
        raise ProtocolError("empty line")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON ({exc.msg} at column {exc.colno}): {_clip(text)}") from None
    except RecursionError:  # thousands of nested brackets: the reader thread must survive any line
        raise ProtocolError(f"JSON nested too deeply: {_clip(text)}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"expected a JSON object, got {type(data).__name__}: {_clip(text)}")
    kind = data.get("type")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}; expected one of {', '.join(_TYPES)}")
    return _build(cls, data)


def _build(cls, data: dict[str, Any]) -> Message:
    if cls is ProgressMsg:
        stage, fraction = data.get("stage"), data.get("fraction")
        if not isinstance(stage, str) or not stage:
            raise ProtocolError("progress message without a stage name")
        if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 <= fraction <= 1.0001:
            raise ProtocolError(f"progress fraction must be a number in [0, 1], got {fraction!r}")
        text, partial = data.get("text", ""), data.get("partial", {})
        if not isinstance(text, str) or not isinstance(partial, dict):
            raise ProtocolError("progress text must be a string and partial an object")
        return ProgressMsg(stage, float(min(fraction, 1.0)), text, partial)
    if cls is ResultMsg:
        run, payload = data.get("run"), data.get("payload")
        if run is None and isinstance(payload, dict):
            return ResultMsg(payload=payload)
        if not isinstance(run, dict) or "status" not in run:
            raise ProtocolError("result message without a run object holding a status")
        wrong = [k for k, kind in _RUN_FIELD_TYPES.items() if k in run and not isinstance(run[k], kind)]
        if wrong or run["status"] not in RUN_STATUSES:
            raise ProtocolError(f"result message with a bad status or mistyped fields: {', '.join(wrong) or 'status'}")
        return ResultMsg(run)
    kind, message, fields = data.get("kind"), data.get("message"), data.get("fields") or {}
    if kind not in ERROR_KINDS or not isinstance(message, str):
        raise ProtocolError(f"error message needs kind in {ERROR_KINDS} and a message string")
    if not isinstance(fields, dict):
        raise ProtocolError("error message fields must be an object")
    return ErrorMsg(kind, str(data.get("category", "")), message, str(data.get("traceback", "") or ""),
                    str(data.get("error_type", "") or ""), {str(k): str(v) for k, v in fields.items()})


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _finite(value.item())
    return value


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
