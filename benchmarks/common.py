"""Helpers shared by the benchmark scripts: where results go, what machine made them, how goals are printed.

Every script writes one JSON document to benchmarks/results/<name>.json (atomically: a temporary file in the
same folder, then os.replace), holding its figures, its goals, the machine description from
accelstudio.core.measure.environment.collect_environment and the load average before and after the run, because on
a shared machine the load decides how far a figure can be trusted.

Scripts import this module as `common` after putting their own folder first on sys.path (see `use_common` in
each script), so they run as `python benchmarks/<script>.py` from anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_text(load: list[float] | None = None) -> str:
    """'load 2.53/3.36/3.15 (1/5/15 min) on 2 cores', or a note that the OS gives none."""
    load = load_average() if load is None else load
    if not load:
        return f"load average unknown, {cores()} cores"
    return f"load {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} (1/5/15 min) on {cores()} cores"


class LoadWatch:
    """Load averages sampled at the start, at each `sample()` and at the end of a run."""

    def __init__(self) -> None:
        self.samples: list[list[float]] = [load_average()]

    def sample(self) -> list[float]:
        """Record the current load average and return it."""
        now = load_average()
        self.samples.append(now)
        return now

    def record(self) -> dict[str, Any]:
        """{"start", "end", "max_1min", "cores"} for the JSON document (takes a last sample)."""
        self.sample()
        ones = [s[0] for s in self.samples if s]
        return {"start": self.samples[0], "end": self.samples[-1], "max_1min": max(ones) if ones else None,
                "cores": cores()}

    def summary(self) -> str:
        """One line for the console, e.g. 'load at start 2.5/3.4/3.1, at end ...; 1-min max 4.6 on 2 cores'."""
        rec = self.record()
        fmt = lambda s: "/".join(f"{v:.2f}" for v in s) if s else "unknown"  # noqa: E731
        peak = f"{rec['max_1min']:.2f}" if rec["max_1min"] is not None else "unknown"
        return f"load at start {fmt(rec['start'])}, at end {fmt(rec['end'])}; 1-min max {peak} on {rec['cores']} cores"


def machine(probe_runtimes: bool = False) -> dict[str, Any]:
    """The machine description stored with every result: collect_environment plus a one-line summary."""
    from accelstudio.core.measure.environment import collect_environment, summary_line

    env = collect_environment(probe_runtimes=probe_runtimes)
    return {"summary": summary_line(env), "cpu_model": env["cpu"]["model"], "environment": env}


def cpu_line(info: dict[str, Any] | None = None) -> str:
    """'AMD EPYC (avx2 avx512f avx512_vnni avx512_bf16), 2 cores' for console headers and the README table."""
    info = info or machine()
    cpu = info["environment"]["cpu"]
    feats = cpu.get("features", {})
    flags = [k for k, v in cpu.get("flags", {}).items() if v]
    flags += [k for k in ("avx512_bf16", "avx512_fp16") if feats.get(k)]
    return f"{cpu.get('model', 'unknown CPU')} ({' '.join(flags) or 'no SIMD flags known'}), {cpu.get('logical_cores')} cores"


def goal(label: str, value: float | None, target: float, unit: str = "", higher_is_better: bool = False,
         fmt: str = ".3g") -> dict[str, Any]:
    """Compare `value` with `target`, print one line and return {"value", "target", "unit", "met",
    "direction"}. A missing value (None) counts as not met and prints why."""
    direction = ">=" if higher_is_better else "<="
    if value is None:
        met = False
        shown = "not measured"
    else:
        met = value >= target if higher_is_better else value <= target
        shown = f"{value:{fmt}}{unit}"
    print(f"{label}: {shown} (goal {direction} {target:{fmt}}{unit}: {'met' if met else 'MISSED'})")
    return {"value": value, "target": target, "unit": unit.strip(), "direction": direction, "met": bool(met)}


def header(title: str) -> dict[str, Any]:
    """Print the script's title, the CPU and the load; return the machine description."""
    info = machine()
    print(f"== {title} ==")
    print(f"machine: {cpu_line(info)}; {load_text()}")
    return info


def write_results(name: str, doc: dict[str, Any], results_dir: Path | None = None) -> Path:
    """Write `doc` (plus "created") to <results_dir>/<name>.json atomically; returns the path."""
    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    doc = {**doc, "created": doc.get("created") or time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, default=_json_default)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"wrote {path}")
    return path


def _json_default(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def run_python(code_or_args: Iterable[str], env: dict[str, str] | None = None, timeout: float = 600.0,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python <args>` in a child process (same interpreter, repository root as cwd) and return the
    completed process; its stdout/stderr are captured as text. Raises RuntimeError with the child's stderr
    tail when it fails."""
    cmd = [sys.executable, *code_or_args]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cmd, cwd=str(cwd or REPO_ROOT), env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"child process {' '.join(cmd[1:3])} ... exited {proc.returncode}:\n{tail}")
    return proc


def last_json_line(text: str) -> Any:
    """The last line of `text` that parses as JSON (children print their result that way)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") or line.startswith("["):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ValueError("the child process printed no JSON result")
