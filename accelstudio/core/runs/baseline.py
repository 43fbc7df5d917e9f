"""Which run a result is compared with: a baseline of the same model identity, runtime, device, threads and batch
(and input shapes and CPU, when both runs record them), never another.

Model identity (`model_key`): a bundled example is "example:<name>" whatever form its recipe needed (the ONNX
file for a plain ONNX Runtime run, the torch weights for structured pruning or recovery); a user's file is
"sha256:<hash of its bytes>". Runs stored before the identity key existed are read by the same rule from what
they hold (the spec's "example:" reference, else the file hash, else the path).

Threads are compared as resolved: what the run recorded as actually used (metrics["execution"]["threads"]),
else the environment record's thread count, else the requested number (0 = all cores). ONNX Runtime runs also
compare their other knobs (inter-op threads, spinning, graph optimization level; `runtime_knobs`), read from the
execution record, else the spec, else what runs measured before the knobs existed (1 inter-op thread, spinning
off, all optimizations).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from accelstudio.core.job import JobSpec, RunResult

EXAMPLE_PREFIX = "example:"
MATCH_FIELDS = ("model", "runtime", "device", "threads", "batch")
KNOB_FIELDS = ("inter_threads", "spinning", "graph_opt_level")  # ONNX Runtime only
KNOB_DEFAULTS = {"inter_threads": 1, "spinning": False, "graph_opt_level": "all"}  # what older runs measured


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def runtime_spec(run: RunResult) -> dict:
    """The run's requested runtime settings ({} when missing)."""
    return _dict(_dict(run.spec).get("runtime"))


def model_key(run: RunResult) -> str:
    """The model identity of a run (see the module doc); '' when nothing identifies it."""
    ident = _dict(run.model_identity)
    if ident.get("key"):
        return str(ident["key"])
    ref = _dict(run.spec).get("model")
    if isinstance(ref, str) and ref.startswith(EXAMPLE_PREFIX):
        return ref
    if ident.get("sha256"):
        return f"sha256:{ident['sha256']}"
    if ident.get("path"):
        return f"path:{ident['path']}"
    return f"name:{ident['name']}" if ident.get("name") else ""


def model_ref(run: RunResult) -> str | None:
    """How to open the run's model again ("example:<name>" or the file path)."""
    ref = _dict(run.spec).get("model")
    return ref if isinstance(ref, str) and ref else _dict(run.model_identity).get("path")


def resolved_threads(run: RunResult) -> int | None:
    """Intra-op threads the run actually used (see the module doc); None when unknown."""
    for value in (_dict(_dict(run.metrics).get("execution")).get("threads"), _dict(run.environment).get("threads"),
                  runtime_spec(run).get("threads")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def resolved_device(run: RunResult) -> str | None:
    """The device the run actually ran on (execution record), else the one requested."""
    executed = _dict(_dict(run.metrics).get("execution")).get("device")
    return executed if isinstance(executed, str) and executed else runtime_spec(run).get("device")


def runtime_knobs(run: RunResult) -> dict[str, Any]:
    """The ONNX Runtime knobs a run measured with (see the module doc); {} for the torch runtimes, which take
    none of them."""
    if runtime_spec(run).get("runtime") != "onnxruntime":
        return {}
    executed, requested = _dict(_dict(run.metrics).get("execution")), runtime_spec(run)
    out = {}
    for name in KNOB_FIELDS:
        value = executed.get(name, requested.get(name, KNOB_DEFAULTS[name]))
        if name == "spinning" and value is None and name not in executed:
            value = True  # requested ORT's default: spinning on
        out[name] = value
    return out


def input_shapes(run: RunResult) -> dict | None:
    """The concrete input shapes the run was measured with, when recorded."""
    shapes = _dict(_dict(run.metrics).get("data")).get("input_shapes")
    return shapes if isinstance(shapes, dict) and shapes else None


def comparison_key(run: RunResult) -> dict[str, Any]:
    """The fields two runs must share to be compared: model identity, runtime, device, threads, batch, and
    for ONNX Runtime its knobs (inter-op threads, spinning, graph optimization level)."""
    rt = runtime_spec(run)
    return {"model": model_key(run), "runtime": rt.get("runtime"), "device": resolved_device(run),
            "threads": resolved_threads(run), "batch": rt.get("batch"), **runtime_knobs(run)}


def mismatches(run: RunResult, other: RunResult) -> list[str]:
    """The like-for-like fields in which `other` differs from `run` (empty: comparable). Input shapes and the
    CPU count only when both runs record them (a store copied from another machine holds foreign runs)."""
    mine, theirs = comparison_key(run), comparison_key(other)
    out = [f for f in MATCH_FIELDS if mine[f] != theirs[f] or mine[f] in (None, "")]
    out += [f.replace("_", " ") for f in KNOB_FIELDS if mine.get(f) != theirs.get(f)]
    a, b = input_shapes(run), input_shapes(other)
    if a is not None and b is not None and a != b:
        out.append("input shapes")
    cpu_a, cpu_b = cpu_model(run), cpu_model(other)
    if cpu_a and cpu_b and cpu_a != cpu_b:
        out.append("machine (CPU)")
    return out


def cpu_model(run: RunResult) -> str | None:
    """The CPU the run was measured on, from its environment record."""
    model = _dict(_dict(run.environment).get("cpu")).get("model")
    return model if isinstance(model, str) and model else None


def is_baseline_run(run: RunResult) -> bool:
    """True when the run measured the model unchanged (the identity recipe)."""
    from accelstudio.core.errors import AccelStudioError
    from accelstudio.core.recipe import Recipe

    recipe = _dict(run.spec).get("recipe")
    if not isinstance(recipe, dict):
        return False
    try:
        return Recipe.from_dict(recipe).is_identity
    except (AccelStudioError, TypeError, ValueError, AttributeError):
        return False


def find_baseline(runs: Iterable[RunResult], run: RunResult) -> RunResult | None:
    """The finished baseline run like-for-like with `run` (same model identity, runtime, device, resolved
    threads, batch, and input shapes when recorded), the nearest in time to keep machine drift small; None
    when there is none. A baseline run is its own baseline."""
    if is_baseline_run(run) and run.status == "done":
        return run
    pool = [r for r in runs if r.status == "done" and is_baseline_run(r) and not mismatches(run, r)]
    if not pool:
        return None
    here = run.run_id if run.run_id is not None else max((r.run_id or 0) for r in pool) + 1
    return min(pool, key=lambda r: (abs((r.run_id or 0) - here), -(r.run_id or 0)))


def describe_settings(run: RunResult) -> str:
    """'onnxruntime on cpu, 2 threads, batch 1' (resolved threads and device); ONNX Runtime knobs that differ
    from the defaults are added ('..., 2 inter-op threads, spinning, graph opt basic')."""
    key = comparison_key(run)
    threads = key["threads"]
    thread_text = "all cores" if threads == 0 else f"{threads} thread{'s' if threads != 1 else ''}" \
        if threads is not None else "? threads"
    text = f"{key['runtime'] or '?'} on {key['device'] or '?'}, {thread_text}, batch {key['batch'] or '?'}"
    return text + "".join(f", {part}" for part in _knob_text(key))


def _knob_text(key: dict[str, Any]) -> list[str]:
    parts = []
    if key.get("inter_threads") not in (None, 1):
        parts.append(f"{key['inter_threads']} inter-op threads")
    if key.get("spinning"):
        parts.append("spinning")
    if key.get("graph_opt_level") not in (None, "all"):
        parts.append(f"graph opt {key['graph_opt_level']}")
    return parts


def baseline_spec(run: RunResult) -> JobSpec:
    """The job that measures `run`'s model unchanged with the same runtime, device, batch, data and input shapes
    requested, and the thread count the run actually used, so that its result is `run`'s like-for-like baseline."""
    from accelstudio.core.recipe import Recipe

    spec = JobSpec.from_dict(_dict(run.spec))
    threads = resolved_threads(run)
    runtime = spec.runtime if threads is None else dataclasses.replace(spec.runtime, threads=threads)
    runtime = dataclasses.replace(runtime, compile="")  # the baseline measures the eager model only
    return dataclasses.replace(spec, recipe=Recipe(), runtime=runtime)
