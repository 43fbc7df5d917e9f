"""A time-bounded mutation fuzzer for the model loader: does any damaged file crash or hang the loader, or
escape it with anything but a typed AccelStudioError?

    python benchmarks/fuzz_loader.py [--seconds 60] [--seed 0] [--batch 40] [--worker-every 25] [--json OUT]

Seeds are valid files made here (the bundled examples' ONNX files, torch.save state dicts in zip and legacy
form, safetensors weights). Each case stacks 1-3 mutations: bit flips, truncation, chunk duplication, byte
insertion, chunk deletion, "interesting" byte values. Cases run in batches through load_model + inspect_model
(what the GUI runs in its own process when a file is opened) in a child process per batch, so a crash or hang
is caught, attributed to its file and saved under <workdir>/findings/. Every --worker-every-th case also runs
as a full job through the real worker (accelstudio.worker.client.execute_job). The summary lists cases run,
outcomes by category, the loader crashes/hangs/unexpected exceptions found, and crashes of this (the parent)
process, which must stay zero: a parent crash ends the script without a summary and with a non-zero exit.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD_MEMORY_LIMIT = 4 * 1024**3  # address space of a loader child: a hostile size cannot take the machine
CASE_TIMEOUT_S = 30.0  # one file taking longer than this is a hang
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF)


# --- seeds and mutations ---------------------------------------------------------------------------------

def make_seeds(folder: Path) -> list[Path]:
    """Valid model files to mutate: ONNX examples, torch.save state dicts (zip, legacy), safetensors."""
    import torch
    from safetensors.torch import save_file

    from accelstudio.core.model.architectures import get_architecture
    from accelstudio.core.model.examples import get_example

    folder.mkdir(parents=True, exist_ok=True)
    seeds = []
    for name in ("digits-mlp", "digits-cnn"):
        seeds.append(Path(shutil.copy(get_example(name).onnx_path, folder / f"{name}.onnx")))
    state = get_architecture("digits-mlp").build().state_dict()
    for legacy in (False, True):
        path = folder / f"digits-mlp{'-legacy' if legacy else ''}.pt"
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        seeds.append(path)
    save_file(state, str(folder / "digits-mlp.safetensors"))
    seeds.append(folder / "digits-mlp.safetensors")
    return seeds


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """1-3 stacked random mutations of `data`, and their names."""
    buf = bytearray(data)
    names = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(("bitflip", "bitflip", "truncate", "duplicate", "insert", "delete", "interesting"))
        names.append(kind)
        n = len(buf)
        if n == 0:
            buf += bytes(rng.randrange(256) for _ in range(8))
            continue
        if kind == "bitflip":
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            del buf[rng.randrange(n):]
        elif kind == "duplicate":
            i = rng.randrange(n)
            chunk = buf[i:i + rng.randint(1, 4096)]
            j = rng.randrange(n + 1)
            buf[j:j] = chunk * rng.randint(1, 4)
        elif kind == "insert":
            j = rng.randrange(n + 1)
            buf[j:j] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif kind == "delete":
            i = rng.randrange(n)
            del buf[i:i + rng.randint(1, 256)]
        else:
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(n)] = rng.choice(INTERESTING)
    return bytes(buf), names


def write_case(seed: Path, folder: Path, index: int, rng: random.Random) -> Path:
    """A mutated copy of `seed` in `folder` (now and then under another model extension)."""
    data, _ = mutate(seed.read_bytes(), rng)
    suffix = seed.suffix if rng.random() > 0.1 else rng.choice((".onnx", ".pt", ".safetensors", ".pt2"))
    path = folder / f"case{index:06d}-{seed.stem}{suffix}"
    path.write_bytes(data)
    return path


# --- the loader child ------------------------------------------------------------------------------------

def classify(path: Path) -> str:
    """Load (and inspect) one file in this process: 'ok', 'error:<category>' or 'unexpected:<type>: <text>'."""
    from accelstudio.core.errors import AccelStudioError
    from accelstudio.core.model.inspect import inspect_model
    from accelstudio.core.model.loading import load_model

    try:
        inspect_model(load_model(path))
        return "ok"
    except AccelStudioError as exc:
        return f"error:{exc.category}"
    except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer hunts
        return f"unexpected:{type(exc).__name__}: {str(exc)[:200]}"


def child_main(files: list[str]) -> int:
    """Classify files in order, announcing each before it starts, so the parent can blame a crash."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_LIMIT, resource.RLIM_INFINITY))
    import accelstudio.core.model.inspect  # noqa: F401 - import before the first "start" line
    import accelstudio.core.model.loading  # noqa: F401

    for name in files:
        print(f"start\t{name}", flush=True)
        print(f"done\t{name}\t{classify(Path(name))}", flush=True)
    return 0


def run_batch(files: list[Path], outcomes: dict[Path, str]) -> None:
    """Classify `files` in child processes, restarting after a crash or hang; fills `outcomes`."""
    pending = list(files)
    while pending:
        proc = subprocess.Popen([sys.executable, __file__, "--child", *map(str, pending)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        current = None
        timer = _Killer(proc)
        timer.arm(CASE_TIMEOUT_S * 2)  # the first case also pays for the imports
        for line in proc.stdout:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "start":
                current = Path(parts[1])
                timer.arm(CASE_TIMEOUT_S)
            elif parts[0] == "done" and len(parts) == 3:
                outcomes[Path(parts[1])] = parts[2]
                current = None
        rc = proc.wait()
        timer.cancel()
        proc.stdout.close()
        done = set(outcomes)
        if current is not None:
            why = "hang" if timer.fired else f"crash:{_signal_name(rc)}"
            outcomes[current] = why
            done.add(current)
        remaining = [p for p in pending if p not in done]
        if remaining == pending:  # no progress (the child could not even start): give up on this batch
            for p in remaining:
                outcomes[p] = f"child-failed:rc={rc}"
            break
        pending = remaining


class _Killer:
    """Kills a process when armed time runs out (re-armed for each case)."""

    def __init__(self, proc: subprocess.Popen):
        import threading

        self.proc, self.fired = proc, False
        self._lock = threading.Lock()
        self._timer = None
        self._threading = threading

    def arm(self, seconds: float) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._threading.Timer(max(seconds, 0.1), self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        try:
            self.proc.kill()
        except OSError:
            pass

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer.join()


def _signal_name(rc: int) -> str:
    if rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return f"signal{-rc}"
    return f"exit{rc}"


# --- through the worker ----------------------------------------------------------------------------------

def worker_outcome(path: Path) -> str:
    """Run one case as a whole job in the real worker; the outcome's category."""
    from accelstudio.core.job import JobSpec, RuntimeSettings
    from accelstudio.worker.client import execute_job

    runtime = RuntimeSettings(runtime="torch" if path.suffix != ".onnx" else "onnxruntime", threads=1, warmup=1,
                              repeats=5, time_budget_s=0.3)
    spec = JobSpec(model=str(path), runtime=runtime, keep_artifact=False, max_eval_samples=32, timeout_s=60,
                   memory_limit_mb=4096)
    result = execute_job(spec)
    if result.status == "done":
        return "worker:done"
    m = result.metrics
    if m.get("error_category"):
        return f"worker:error:{m['error_category']}"
    if m.get("error_type"):
        return f"worker:unexpected:{m['error_type']}"
    reason = result.reason
    for key in ("SIGSEGV", "SIGABRT", "SIGKILL", "SIGBUS", "timed out", "out of memory", "exited with code"):
        if key in reason:
            return f"worker:{key}"
    return f"worker:{result.status}:{reason[:60]}"


# --- the parent ------------------------------------------------------------------------------------------

def fuzz(seconds: float, seed: int, batch: int, worker_every: int, workdir: Path) -> dict:
    """Run the fuzzer for `seconds`; returns the summary."""
    rng = random.Random(seed)
    seeds = make_seeds(workdir / "seeds")
    findings = workdir / "findings"
    findings.mkdir(parents=True, exist_ok=True)
    counts: collections.Counter[str] = collections.Counter()
    worker_counts: collections.Counter[str] = collections.Counter()
    bad: list[dict] = []
    start = time.monotonic()
    index = 0
    while time.monotonic() - start < seconds:
        folder = workdir / "batch"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        files = []
        for _ in range(batch):
            files.append(write_case(rng.choice(seeds), folder, index, rng))
            index += 1
        outcomes: dict[Path, str] = {}
        run_batch(files, outcomes)
        for path in files:
            outcome = outcomes.get(path, "missing")
            counts[outcome.split(": ")[0] if outcome.startswith("unexpected") else outcome] += 1
            if not (outcome == "ok" or outcome.startswith("error:")):
                kept = Path(shutil.copy(path, findings / path.name))
                bad.append({"file": str(kept), "outcome": outcome})
        for path in files[::worker_every] if worker_every else []:
            if time.monotonic() - start >= seconds:
                break
            outcome = worker_outcome(path)
            worker_counts[outcome] += 1
            if outcome.startswith(("worker:unexpected", "worker:SIG", "worker:exited")):
                kept = Path(shutil.copy(path, findings / f"worker-{path.name}"))
                bad.append({"file": str(kept), "outcome": outcome})
        shutil.rmtree(folder, ignore_errors=True)
    loader_crashes = sum(v for k, v in counts.items() if k.startswith(("crash:", "hang")))
    unexpected = sum(v for k, v in counts.items() if k.startswith("unexpected"))
    return {"seconds": round(time.monotonic() - start, 1), "seed": seed, "cases": sum(counts.values()),
            "worker_cases": sum(worker_counts.values()), "outcomes": dict(counts.most_common()),
            "worker_outcomes": dict(worker_counts.most_common()), "loader_crashes_or_hangs": loader_crashes,
            "unexpected_exceptions": unexpected, "findings": bad, "parent_crashes": 0}


def print_summary(summary: dict) -> None:
    print(f"fuzzed for {summary['seconds']} s (seed {summary['seed']}): {summary['cases']} cases through the "
          f"loader, {summary['worker_cases']} through the worker")
    print("loader outcomes:")
    for key, n in summary["outcomes"].items():
        print(f"  {n:6d}  {key}")
    print("worker outcomes:")
    for key, n in summary["worker_outcomes"].items():
        print(f"  {n:6d}  {key}")
    print(f"loader crashes or hangs: {summary['loader_crashes_or_hangs']}")
    print(f"unexpected exceptions: {summary['unexpected_exceptions']}")
    for item in summary["findings"][:20]:
        print(f"  finding: {item['outcome']}  {item['file']}")
    print(f"parent crashes: {summary['parent_crashes']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=40, help="cases per loader child process")
    parser.add_argument("--worker-every", type=int, default=25, help="run every N-th case through the worker "
                                                                     "(0: never)")
    parser.add_argument("--workdir", type=Path, help="where cases and findings go (default: a new temp folder)")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="accelstudio-fuzz-"))
    summary = fuzz(args.seconds, args.seed, args.batch, args.worker_every, workdir)
    summary["workdir"] = str(workdir)
    print_summary(summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
