"""A stand-in for `python -m accelstudio.worker` that misbehaves on its protocol pipe, for hostile tests.

Usage: python fake_worker.py MODE. It reads the job line from stdin first, like the real worker. Modes:
  garbage-then-exit    garbage lines (binary, deep JSON, wrong types), one valid progress, exit 0, no result
  garbage-then-result  garbage lines, then a valid result line (status done)
  mistyped-result      a result line whose run fields have the wrong JSON types
  close-and-hang       closes its stdout, then never ends (the parent must time out)
  endless-garbage      writes garbage lines forever and never a valid message (the parent must time out)
  no-newline-exit      writes a megabyte without a newline, then exits 3
"""

from __future__ import annotations

import json
import os
import sys
import time

GARBAGE = [
    b"hello\n", b"\x00\xff\xfe\x80 binary junk\n", b"[" * 50_000 + b"\n", b'{"type": "progress"}\n',
    b'{"type": "progress", "stage": "load", "fraction": NaN}\n', b'{"type": "result", "run": []}\n',
    b'{"type": "error", "kind": "user_error", "message": 5}\n', b'{"type": "nope"}\n', b"\n",
    b'{"type": "progress", "stage": "load", "fraction": 0.5, "partial": ' + b"[" * 50_000 + b"}\n",
]
PROGRESS = b'{"type": "progress", "stage": "load", "fraction": 0.5, "text": "fake", "partial": {}}\n'
RESULT = {"status": "done", "reason": "", "spec": {}, "metrics": {"p50_ms": 1.0}, "latencies_ms": [1.0],
          "layers": [], "warnings": [], "environment": {}, "model_identity": {"path": "fake", "name": "fake"}}


def write(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def main(mode: str) -> int:
    sys.stdin.buffer.readline()
    if mode == "close-and-hang":
        os.close(1)
        while True:
            time.sleep(3600)
    if mode == "endless-garbage":
        while True:
            write(b"garbage " * 64 + b"\n")
    if mode == "no-newline-exit":
        write(b"x" * (1 << 20))
        return 3
    for line in GARBAGE:
        write(line)
    write(PROGRESS)
    if mode == "garbage-then-result":
        write(json.dumps({"type": "result", "run": RESULT}).encode() + b"\n")
    elif mode == "mistyped-result":
        write(json.dumps({"type": "result", "run": {**RESULT, "metrics": 5, "spec": "x", "layers": {}}}).encode()
              + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
