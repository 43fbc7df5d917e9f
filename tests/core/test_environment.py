"""The environment record: JSON-safe, with CPU flags, cores, threads, versions and the run's device."""

from __future__ import annotations

import json

from accelstudio.core.measure import environment
from accelstudio.core.job import RuntimeSettings


def test_record_has_the_fields_runs_are_compared_by():
    env = environment.collect_environment(RuntimeSettings(runtime="torch", threads=1, batch=4))
    json.dumps(env, allow_nan=False)  # storable as strict JSON
    cpu = env["cpu"]
    assert set(cpu["flags"]) == {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx"}
    assert all(isinstance(v, bool) for v in cpu["flags"].values())
    assert cpu["logical_cores"] >= 1 and cpu["available_cores"] >= 1
    assert env["threads"] == 1 and env["runtime"] == "torch" and env["device"] == "cpu" and env["batch"] == 4
    assert env["versions"]["accelstudio"] and env["versions"]["numpy"] and env["python"]
    assert "CPUExecutionProvider" in env["ort_providers"]
    assert isinstance(env["torch"]["cuda_available"], bool)


def test_all_threads_when_settings_ask_for_zero():
    env = environment.collect_environment(RuntimeSettings(threads=0), probe_runtimes=False)
    assert env["threads"] == env["cpu"]["available_cores"] and "torch" not in env


def test_cpuinfo_fallback_parser(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: fpu avx2 avx_vnni amx_tile\n"
                    "physical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 1\nphysical id\t: 0\ncore id\t\t: 0\n\n"
                    "processor\t: 2\nphysical id\t: 0\ncore id\t\t: 1\n")
    monkeypatch.setattr(environment, "_CPUINFO", info)
    parsed = environment._parse_cpuinfo()
    assert parsed["model_name"] == "Example CPU 9000"
    assert parsed["avx2"] and parsed["avx_vnni"] and parsed["amx"] and not parsed["avx512f"]
    assert environment.physical_cores() == 2


def test_summary_line_tolerates_partial_records():
    line = environment.summary_line({"cpu": {"model": "X"}, "threads": 2})
    assert line.startswith("X, 2 threads") and ", ," not in line


def test_threads_resolve_to_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr(environment, "_available_cores", lambda: 3)
    assert environment.resolve_threads(0) == 3 and environment.resolve_threads(5) == 5
    assert environment.collect_environment(RuntimeSettings(threads=0), probe_runtimes=False)["threads"] == 3


def test_what_actually_ran_wins_over_the_request():
    ran = {"device": "cpu", "providers": ["CPUExecutionProvider"], "threads": 1}
    env = environment.collect_environment(RuntimeSettings(threads=0), probe_runtimes=False, execution=ran)
    assert env["threads"] == 1 and env["device"] == "cpu" and env["execution"] == ran
