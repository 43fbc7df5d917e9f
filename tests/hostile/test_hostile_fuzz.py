"""Mutation fuzzing of the model loader: a few hundred seeded mutations in this process (only typed
AccelStudioErrors may escape load_model), and the time-bounded fuzzer script (slow)."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.model.loading import load_model

FUZZER = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_loader.py"


def _fuzzer_module():
    spec = importlib.util.spec_from_file_location("fuzz_loader", FUZZER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_in_process_mutations_only_raise_typed_errors(tmp_path):
    fz = _fuzzer_module()
    seeds = fz.make_seeds(tmp_path / "seeds")
    rng = random.Random(20240611)
    outcomes: dict[str, int] = {}
    for index in range(300):
        seed = seeds[index % len(seeds)]
        path = fz.write_case(seed, tmp_path, index, rng)
        try:
            load_model(path)
            outcome = "ok"
        except AccelStudioError as exc:
            assert path.name in str(exc), str(exc)
            outcome = exc.category
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{path.name} ({seed.name} mutated): {type(exc).__name__}: {exc}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        path.unlink()
    print(f"\nin-process mutations by outcome: {outcomes}")
    assert sum(outcomes.values()) == 300 and len(outcomes) >= 2


def test_mutations_are_seeded_and_varied():
    fz = _fuzzer_module()
    data = bytes(range(256)) * 8
    first = [fz.mutate(data, random.Random(5)) for _ in range(3)]
    assert first == [fz.mutate(data, random.Random(5)) for _ in range(3)]
    kinds = {k for i in range(200) for k in fz.mutate(data, random.Random(i))[1]}
    assert kinds == {"bitflip", "truncate", "duplicate", "insert", "delete", "interesting"}


@pytest.mark.slow
def test_fuzzer_for_20_seconds(tmp_path):
    report = tmp_path / "fuzz.json"
    proc = subprocess.run([sys.executable, str(FUZZER), "--seconds", "20", "--seed", "1", "--batch", "20", "--worker-every", "10",
                           "--workdir", str(tmp_path / "work"), "--json", str(report)],
                          capture_output=True, text=True, timeout=280)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "parent crashes: 0" in proc.stdout
    summary = json.loads(report.read_text())
    assert summary["cases"] >= 20 and summary["worker_cases"] >= 1
    assert summary["loader_crashes_or_hangs"] == 0, summary["findings"]
    assert summary["unexpected_exceptions"] == 0, summary["findings"]
