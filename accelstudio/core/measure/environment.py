"""The environment record stored with every run, so a number can be traced to the machine and versions
that produced it: CPU and its SIMD flags, cores and threads, OS, Python, library versions, devices."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from accelstudio.core.job import RuntimeSettings

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx")
PACKAGES = ("accelstudio", "torch", "onnxruntime", "onnx", "numpy")
_CPUINFO = Path("/proc/cpuinfo")


def collect_environment(settings: RuntimeSettings | None = None, probe_runtimes: bool = True,
                        execution: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-safe description of where a run executes.

    Keys: cpu {model, flags {avx2, avx512f, avx512_vnni, avx_vnni, amx}, logical_cores, physical_cores,
    available_cores}, threads (used by the run: settings.threads resolved by `resolve_threads`, the number
    the runtimes are given), os, platform, machine, python, versions {package: version}, env_threads (OMP/MKL
    variables), and with `probe_runtimes` ort_providers (available, not necessarily used) and torch
    {cuda_available, cuda_device, num_threads} (imports torch and onnxruntime). With `settings`: runtime,
    device, batch, provider. With `execution` (a predictor's record of what actually ran, as in
    metrics["execution"]): that record under "execution", and its device and threads win."""
    env: dict[str, Any] = {
        "cpu": cpu_record(),
        "os": platform.system(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "versions": package_versions(),
        "env_threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
        "memory_total_mb": _memory_total_mb(),
    }
    available = env["cpu"]["available_cores"]
    env["threads"] = resolve_threads(settings.threads) if settings is not None else available
    if settings is not None:
        env.update({"runtime": settings.runtime, "device": settings.device, "batch": settings.batch,
                    "provider": settings.provider})
    if execution:
        env["execution"] = dict(execution)
        env["threads"] = execution.get("threads", env["threads"])
        env["device"] = execution.get("device", env.get("device"))
    if probe_runtimes:
        env["ort_providers"] = _ort_providers()
        env["torch"] = _torch_record()
        if settings is not None and settings.device == "cuda":
            env["device_name"] = (env["torch"] or {}).get("cuda_device")
    return env


def cpu_record() -> dict[str, Any]:
    """CPU model, the SIMD flags that matter for int8/fp16 inference, and core counts."""
    features, source = _features()
    return {
        "model": features.get("model_name") or platform.processor() or "unknown CPU",
        "flags": {flag: bool(features.get(flag, False)) for flag in CPU_FLAGS},
        "features": features,
        "features_source": source,
        "logical_cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "available_cores": _available_cores(),
    }


def _features() -> tuple[dict[str, Any], str]:
    try:
        from accelstudio.core.measure.hardware import cpu_features
    except ImportError:
        return _parse_cpuinfo(), "cpuinfo"
    return cpu_features(), "hardware.cpu_features"


def _parse_cpuinfo() -> dict[str, Any]:
    """Flags and model name straight from /proc/cpuinfo (empty where that file does not exist)."""
    flags: set[str] = set()
    model = ""
    for line in _read_cpuinfo().splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key == "model name" and not model:
            model = value.strip()
    found = {flag: flag in flags for flag in ("avx2", "avx512f", "avx512_vnni", "avx_vnni")}
    found["amx"] = bool(flags & {"amx_tile", "amx_int8"})
    return {"model_name": model, **found}


def _read_cpuinfo() -> str:
    try:
        return _CPUINFO.read_text(errors="replace")
    except OSError:
        return ""


def physical_cores() -> int | None:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo; None where that is not available."""
    pairs = set()
    phys = "0"
    for line in _read_cpuinfo().splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            phys = value.strip()
        elif key == "core id":
            pairs.add((phys, value.strip()))
    return len(pairs) or None


def resolve_threads(threads: int) -> int:
    """The thread count a run uses: `threads` when positive, else (0 = "all") the cores this process may
    run on (its CPU affinity, which a container or taskset can narrow below os.cpu_count()). Both runtimes
    are given this one number, and the run records it."""
    return int(threads) if threads > 0 else _available_cores()


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide the numbers, read without importing them."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if versions["accelstudio"] is None:
        from accelstudio import __version__

        versions["accelstudio"] = __version__
    return versions


def _memory_total_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _ort_providers() -> list[str] | None:
    try:
        import onnxruntime
    except Exception:  # noqa: BLE001 - a broken install is recorded as "unknown", never fatal here
        return None
    return list(onnxruntime.get_available_providers())


def _torch_record() -> dict[str, Any] | None:
    try:
        import torch
    except Exception:  # noqa: BLE001 - as above
        return None
    record: dict[str, Any] = {"num_threads": torch.get_num_threads(), "cuda_available": False,
                              "cuda_device": None, "cuda_version": torch.version.cuda}
    try:
        if torch.cuda.is_available():
            record["cuda_available"] = True
            record["cuda_device"] = torch.cuda.get_device_name(torch.cuda.current_device())
    except Exception:  # noqa: BLE001 - a driver problem must not fail the run record
        pass
    return record


def summary_line(env: dict[str, Any]) -> str:
    """One line such as 'AMD EPYC, 2 threads, avx2 avx512f, torch 2.13.0, onnxruntime 1.32.0'."""
    cpu = env.get("cpu", {})
    flags = " ".join(k for k, v in cpu.get("flags", {}).items() if v) or "no SIMD flags known"
    versions = env.get("versions", {})
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if v and k in ("torch", "onnxruntime"))
    device = env.get("device_name") or cpu.get("model", "unknown CPU")
    parts = [device, f"{env.get('threads', '?')} threads", flags, libs, f"Python {env.get('python', '?')}"]
    return ", ".join(p for p in parts if p)
