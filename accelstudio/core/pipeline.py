"""The job pipeline shared by the CLI and the GUI: load, data, compress, export, benchmark, evaluate.

`run_job` runs in the worker process (accelstudio.worker); exceptions propagate and the worker turns them
into failed runs. Each stage reports ProgressEvents under its own name, so the parent can time stages out.

Where the recipe runs: on the runtime's own format, as planned by core/compress/plan.py (shared with
`accelstudio apply`). A torch model measured on ONNX Runtime is pruned as a torch module (structured pruning
needs it), exported to ONNX in memory, and then quantized with ONNX Runtime's quantizer, because quantized
torch modules do not export. Bundled examples load their shipped ONNX file for ONNX Runtime, except when the
recipe prunes channels (that needs the torch form).

Sizes: size_bytes and baseline_size_bytes are the in-memory bytes of all parameters as inspect_model counts
them (the same rule for both, so they compare); artifact_bytes is the size of the saved optimized file.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from accelstudio.core.job import JobSpec, RunResult
from accelstudio.core.progress import CancelToken, ProgressCallback, ProgressEvent, check_cancel
from accelstudio.core.recipe import Recipe

EVAL_BATCH = 64
BASELINE_KNOBS = ("runtime", "graph_opt_level", "spinning")  # what JobSpec.baseline_runtime may set
STAGES = ("load", "data", "compress", "export", "benchmark", "evaluate")  # "profile", "compile" after benchmark when asked


class _Stages:
    """Forwards progress under a fixed stage name (sub-stage events from callees are renamed)."""

    def __init__(self, progress: ProgressCallback | None):
        self.progress = progress

    def emit(self, stage: str, fraction: float, text: str = "", partial: dict | None = None) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(stage, fraction, text, partial or {}))

    def within(self, stage: str, lo: float = 0.0, hi: float = 1.0) -> ProgressCallback | None:
        if self.progress is None:
            return None

        def forward(ev: ProgressEvent) -> None:
            text = ev.text if ev.stage == stage else f"{ev.stage}: {ev.text}"
            self.emit(stage, lo + (hi - lo) * ev.fraction, text, ev.partial)

        return forward


def run_job(spec: JobSpec, progress: ProgressCallback | None = None,
            cancel: CancelToken | None = None) -> RunResult:
    """Run one job and return its RunResult (status "done"); user errors raise AccelStudioError subclasses,
    cancellation raises JobCancelled."""
    from accelstudio.core.measure.environment import collect_environment
    from accelstudio.core.measure.runtimes import check_runtime

    st = _Stages(progress)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    settings = spec.runtime
    notes: list[str] = []
    check_runtime(settings)

    st.emit("load", 0.0, f"opening {spec.model}")
    base, load_ms, identity = _load(spec)
    check_runtime(settings, base)
    _check_feasible(spec, base)
    st.emit("load", 1.0, f"opened {identity['name']} in {load_ms:.0f} ms", {"model_identity": identity})
    check_cancel(cancel)

    st.emit("data", 0.0, "loading data")
    run_data = _load_data(spec, base)
    base = _with_shapes(base, run_data.plan)
    dataset = run_data.eval
    notes.extend(run_data.notes)
    st.emit("data", 1.0, f"{dataset.num_samples} samples from {dataset.source}; input shapes "
            + ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in run_data.plan.call_shapes().items()))
    check_cancel(cancel)

    st.emit("compress", 0.0, spec.recipe.describe())
    comp, layers, warnings = _compress(spec, base, run_data, st.within("compress"), cancel)
    st.emit("compress", 1.0, "done")
    check_cancel(cancel)

    artifact = None
    if spec.keep_artifact:
        st.emit("export", 0.0, "saving the optimized model")
        artifact = _save_artifact(comp, settings.runtime, spec.recipe, notes)
        st.emit("export", 1.0, str(artifact) if artifact else "not saved")
        check_cancel(cancel)

    metrics: dict[str, Any] = {"load_ms": load_ms, "data": run_data.record}
    per_call = run_data.plan.layout == "per-call"
    measured = replace(settings, batch=1 if per_call else run_data.plan.batch)  # rows per call, as fed
    bench_inputs = _batch_inputs(dataset, measured.batch)
    if per_call:  # one sample is one whole call: drop the sample axis
        bench_inputs = {k: v[0] for k, v in bench_inputs.items()}
    predictor, first_out = _first_call(comp, measured, bench_inputs, metrics, st, run_data.plan)
    metrics.update(_benchmark(predictor, bench_inputs, measured, st, cancel))
    latencies = metrics.pop("samples_ms")
    if spec.baseline_latency:  # the unchanged model timed side by side with this one (core/measure/interleaved.py)
        metrics["interleaved"] = _interleaved(spec, base, predictor, measured, bench_inputs, per_call, st, cancel)
    if settings.profile:  # after the timed calls, so the profiler's overhead never enters the latency figures
        metrics.update(_profile(comp, measured, bench_inputs, st, cancel))
    if settings.compile:  # a compiled form timed against the eager one, interleaved (core/measure/compile_step.py)
        from accelstudio.core.measure.compile_step import compile_metrics

        metrics["compile"] = compile_metrics(comp, measured, bench_inputs, st.within("compile"), cancel)

    if spec.evaluate:
        evaluated = _PerCall(predictor) if per_call else predictor
        metrics.update(_evaluate(spec, base, evaluated, dataset, st.within("evaluate"), cancel, notes, per_call))
    else:
        from accelstudio.core.measure.evaluate import nonfinite_rows

        metrics["nonfinite_outputs"] = int(nonfinite_rows(first_out).sum())
    metrics.update(_sizes(base, comp, artifact, notes))
    _add_notes(metrics, dataset, spec, notes)
    metrics["notes"] = notes + list(predictor.notes)
    return RunResult(
        status="done", spec=spec.to_dict(), metrics=metrics, latencies_ms=latencies,
        layers=[_layer_dict(r) for r in layers], warnings=[_warning_dict(w) for w in warnings],
        environment=collect_environment(settings), model_identity=identity,
        artifact=str(artifact) if artifact else None, created=created,
    )


# --- stages ----------------------------------------------------------------------------------------------

def _load(spec: JobSpec):
    from accelstudio.core.model.loading import EXAMPLE_PREFIX, file_sha256, open_model

    backend = None
    if spec.model.startswith(EXAMPLE_PREFIX):
        backend = "onnx" if spec.runtime.runtime == "onnxruntime" and not _needs_torch(spec.recipe) else "torch"
    start = time.perf_counter()
    handle = open_model(spec.model, trust=spec.trust, backend=backend)
    load_ms = (time.perf_counter() - start) * 1000.0
    source = Path(handle.source) if handle.source is not None else None
    sha = file_sha256(source) if source is not None and source.is_file() else None
    identity = model_identity(spec.model, handle.name, str(source) if source else spec.model, sha)
    return handle, load_ms, identity


def _check_feasible(spec: JobSpec, handle) -> None:
    """Refuse a recipe the model's format cannot take here, in one sentence, before any work."""
    from accelstudio.core.compress.feasibility import check_handle_feasible

    check_handle_feasible(handle, spec.runtime.runtime, spec.runtime.device, spec.recipe)


def model_identity(ref: str, name: str, path: str, sha256: str | None) -> dict[str, Any]:
    """What a run measured: path, sha256 and name of the file opened, and `key`, the model's identity for
    comparisons. A bundled example is "example:<name>" whatever form (ONNX or torch weights) the recipe needed,
    so its pruned and quantized runs meet the same baseline; a user's file is "sha256:<hash>" of its bytes."""
    from accelstudio.core.model.loading import EXAMPLE_PREFIX

    if ref.startswith(EXAMPLE_PREFIX):
        key = ref
    elif sha256:
        key = f"sha256:{sha256}"
    else:
        key = f"path:{path}"
    return {"path": path, "sha256": sha256, "name": name, "key": key}


def _needs_torch(recipe: Recipe) -> bool:
    """Structured pruning and recovery (training) need the torch form of a bundled example."""
    return (recipe.prune.active and recipe.prune.method == "l1-structured") or recipe.recovery.active


def _load_data(spec: JobSpec, handle):
    """Evaluation, calibration and training data kept apart, and the concrete input shapes (run_data.py)."""
    from accelstudio.core.data.run_data import prepare_run_data

    return prepare_run_data(spec, handle)


def _with_shapes(handle, plan):
    """The model declaring the run's concrete input dims (tracing, export, calibration, FLOPs see them)."""
    from accelstudio.core.model.input_shapes import with_plan

    return with_plan(handle, plan)


def _compress(spec: JobSpec, base, run_data, progress, cancel):
    """The compressed handle (on the runtime's format), per-layer reports and warnings."""
    from accelstudio.core.compress.plan import plan_compression, run_plan

    target = "onnx" if spec.runtime.runtime == "onnxruntime" else base.backend
    plan = plan_compression(spec.recipe, base.backend, target)
    if not plan.steps:
        return base, (), ()
    train_data = run_data.train if run_data.train is not None else spec.train_data
    res = run_plan(plan, base, calib=run_data.calib, train_data=train_data, progress=progress, cancel=cancel,
                   guessed_dims=tuple(run_data.plan.guessed_dims))
    return res.handle, res.layers, res.warnings


def _save_artifact(handle, runtime: str, recipe: Recipe, notes: list[str]) -> Path | None:
    """Save the optimized model under artifacts_dir()/<timestamp-uuid>/; a failure becomes a note."""
    from accelstudio.core.errors import AccelStudioError
    from accelstudio.core.compress.export import export_model
    from accelstudio.core.paths import artifacts_dir

    folder = artifacts_dir() / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    suffixes = [".onnx"] if handle.backend == "onnx" else [".pt", ".safetensors"]
    errors = []
    for suffix in suffixes:
        path = folder / f"model{suffix}"
        try:
            export_model(handle, path, recipe=recipe)
            return path
        except AccelStudioError as exc:
            errors.append(str(exc))
    notes.append("optimized model not saved: " + "; ".join(errors))
    return None


def _batch_inputs(dataset, batch: int) -> dict[str, np.ndarray]:
    """The first `batch` samples (repeated when the data set is smaller), the benchmark's fixed inputs."""
    n = dataset.num_samples
    idx = np.arange(batch) % n
    return {k: np.ascontiguousarray(v[idx]) for k, v in dataset.inputs.items()}


def _first_call(handle, settings, inputs, metrics: dict, st: _Stages, plan):
    """_cold_start; a model that fails on guessed input dims gets the guess named and how to set the dims."""
    from accelstudio.core.errors import AccelStudioError
    from accelstudio.core.model.inspect import InputShapeError

    try:
        return _cold_start(handle, settings, inputs, metrics, st)
    except AccelStudioError:
        raise
    except Exception as exc:
        if not plan.guessed_dims:
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        first = text if len(text) <= 300 else f"{text[:140]} ... {text[-150:]}"
        shapes = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in plan.call_shapes().items())
        raise InputShapeError(f"the model failed on input shapes that were guessed ({shapes}; guessed "
                              f"{', '.join(plan.guessed_dims)}): {first}; give the sizes it takes with "
                              "--input-shape NAME=DIMS, or data with --data") from None


def _cold_start(handle, settings, inputs, metrics: dict, st: _Stages):
    """Create the predictor and run it once; cold_start_ms covers both. metrics["execution"] records what
    actually ran (device, providers, threads); a run on another device than requested is refused
    (DeviceMismatchError), also when only the first output shows it."""
    from accelstudio.core.measure.runtimes import check_execution, make_predictor

    st.emit("benchmark", 0.0, f"starting {settings.runtime} on {settings.device}")
    predictor = make_predictor(handle, settings)
    start = time.perf_counter()
    first = predictor.run(inputs)
    first_ms = (time.perf_counter() - start) * 1000.0
    metrics["cold_start_ms"] = predictor.cold_start_ms + first_ms
    metrics["first_call_ms"] = first_ms
    metrics["execution"] = predictor.execution()
    check_execution(settings, metrics["execution"], predictor.name)
    return predictor, first


def _benchmark(predictor, inputs, settings, st: _Stages, cancel) -> dict[str, Any]:
    """Latency statistics plus metrics["machine"]: the machine's load while the calls were timed (the run
    report turns a busy record into a warning)."""
    from accelstudio.core.measure.benchmark import measure_latency
    from accelstudio.core.measure.machine_load import finish_window, sample_cpu

    before = sample_cpu()
    stats = measure_latency(predictor, inputs, settings, progress=st.within("benchmark"), cancel=cancel)
    machine = finish_window(before)
    out = stats.to_metrics()
    out["samples_ms"] = list(stats.samples_ms)
    out["machine"] = machine
    st.emit("benchmark", 1.0, f"p50 {stats.p50_ms:.3f} ms over {stats.n} calls")
    return out


def _interleaved(spec: JobSpec, base, predictor, measured, inputs, per_call: bool, st: _Stages,
                 cancel) -> dict[str, Any]:
    """metrics["interleaved"]: the run against the unchanged model on the same runtime, settings and inputs,
    timed in alternating blocks (a baseline run is its own baseline: ratio 1 without timing it twice)."""
    from accelstudio.core.measure.interleaved import interleaved_speedup

    st.emit("benchmark", 1.0, "timing the unchanged model interleaved with this one")
    knobs = {k: v for k, v in spec.baseline_runtime.items() if k in BASELINE_KNOBS}
    base_settings = replace(measured, **knobs)
    if spec.recipe.is_identity and base_settings == measured:
        return {"ratio": 1.0, "lo": 1.0, "hi": 1.0, "verdict": "baseline", "n": 0,
                "method": "the run is the baseline"}
    base_predictor = _predictor(base, base_settings, False)
    try:
        return interleaved_speedup(lambda: predictor.run(inputs), lambda: base_predictor.run(inputs), measured,
                                   cancel)
    finally:
        del base_predictor


def _profile(handle, settings, inputs, st: _Stages, cancel) -> dict[str, Any]:
    """metrics["profile"] of the measured model on the same runtime, threads and inputs; a model the profiler
    cannot take keeps its measured run and gets metrics["profile_error"] instead."""
    from accelstudio.core.errors import AccelStudioError, JobCancelled
    from accelstudio.core.measure.profile import profile_model

    st.emit("profile", 0.0, "profiling operators")
    try:
        profile = profile_model(handle, settings, inputs, progress=st.within("profile"), cancel=cancel)
    except JobCancelled:
        raise
    except AccelStudioError as exc:
        return {"profile_error": str(exc)}
    out: dict[str, Any] = {"profile": profile}
    st.emit("profile", 0.8, "measuring this machine's roofs (cached after the first time)")
    try:
        out["roofline"] = _roofline(handle, settings, inputs, profile, cancel)
    except JobCancelled:
        raise
    except Exception as exc:  # inspection of unusual graphs raises many types; the profile stands alone
        out["roofline_error"] = f"{type(exc).__name__}: {exc}"
    st.emit("profile", 1.0, f"{len(profile['layers'])} rows, {profile['total_ms']:.3f} ms per call")
    return out


def _roofline(handle, settings, inputs, profile: dict, cancel) -> dict[str, Any]:
    """metrics["roofline"]: the profiled layers under this machine's ceilings at the run's threads and shapes."""
    from accelstudio.core.measure.ceilings import measure_ceilings
    from accelstudio.core.measure.roofline import layer_work, roofline

    ceilings = measure_ceilings(settings.threads, cancel=cancel)
    work = layer_work(handle, {k: tuple(np.shape(v)) for k, v in inputs.items()})
    return roofline(profile, work, ceilings)


def _predictor(handle, settings, per_call: bool):
    """make_predictor, fed one sample at a time when a sample is one whole call (input_shapes.py)."""
    from accelstudio.core.measure.runtimes import make_predictor

    predictor = make_predictor(handle, settings)
    return _PerCall(predictor) if per_call else predictor


class _PerCall:
    """A predictor for models whose inputs have no common batch axis: the data holds a sample axis in
    front of each call's inputs, so each sample is run on its own and the outputs stacked."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(inputs.values())))
        return np.stack([np.asarray(self.inner.run({k: v[i] for k, v in inputs.items()})) for i in range(n)])


def _evaluate(spec: JobSpec, base, predictor, dataset, progress, cancel, notes: list[str],
              per_call: bool = False) -> dict[str, Any]:
    """Outputs of the compressed and the uncompressed model on the same samples and runtime, compared."""
    from accelstudio.core.measure.evaluate import (accuracy_metrics, describe_outputs, fidelity_metrics,
                                                   module_output_hint, output_hint, run_batches)

    batch, pad = (EVAL_BATCH, False) if per_call else _eval_batch(base)
    half = progress if spec.recipe.is_identity else _scaled(progress, 0.0, 0.5)
    outputs = run_batches(predictor.run, dataset, batch, cancel, half, pad_last=pad)
    if spec.recipe.is_identity:
        base_outputs = outputs
    else:
        base_predictor = _predictor(base, replace(spec.runtime, batch=batch), per_call)
        base_outputs = run_batches(base_predictor.run, dataset, batch, cancel, _scaled(progress, 0.5, 1.0),
                                   pad_last=pad)
        del base_predictor
    metrics: dict[str, Any] = {}
    if dataset.labels is not None:
        metrics.update(accuracy_metrics(outputs, dataset.labels, base_outputs))
    fid = fidelity_metrics(outputs, base_outputs)
    metrics["fidelity"] = {k: fid[k] for k in ("top1_agreement", "cosine", "max_abs_error", "kl_divergence")}
    metrics["fidelity"]["n_compared"] = fid["n_compared"]
    hint = output_hint(base.onnx_model) if base.backend == "onnx" else module_output_hint(base.module)
    metrics["fidelity"].update(describe_outputs(base_outputs, dataset.labels is not None, hint))
    metrics["nonfinite_outputs"] = fid["nonfinite_outputs"]
    metrics["n_eval"] = int(dataset.num_samples)
    if fid["nonfinite_outputs"]:
        notes.append(f"{fid['nonfinite_outputs']} of {dataset.num_samples} outputs hold NaN or Inf: they count as "
                     "wrong and are left out of the fidelity figures")
    return metrics


def _eval_batch(handle) -> tuple[int, bool]:
    """Evaluation batch size: the model's fixed batch dimension if it has one (pad the last batch)."""
    from accelstudio.core.model.input_shapes import batch_layout

    layout, fixed = batch_layout(handle.inputs)
    if layout == "fixed":
        return fixed, True
    return EVAL_BATCH, False


def _scaled(progress, lo: float, hi: float):
    if progress is None:
        return None
    return lambda ev: progress(replace(ev, fraction=lo + (hi - lo) * ev.fraction))


def _sizes(base, comp, artifact: Path | None, notes: list[str]) -> dict[str, Any]:
    """Parameters, bytes, FLOPs and sparsity before and after. Counted after the measurement, so a model
    that inspection cannot handle loses only these figures (with a note), never the measured run."""
    from accelstudio.core.model.inspect import inspect_model

    try:
        before, after = inspect_model(base), inspect_model(comp)
    except Exception as exc:  # inspection of unusual graphs raises many types
        notes.append(f"size, parameters and FLOPs not counted: {type(exc).__name__}: {exc}")
        return {"artifact_bytes": artifact.stat().st_size} if artifact is not None and artifact.exists() else {}
    notes.extend(f"inspection: {w}" for w in dict.fromkeys(before.warnings + after.warnings))
    weights = sum(int(np.prod(layer.weight_shape)) for layer in after.layers)
    zeros = sum(int(layer.zeros) for layer in after.layers)
    out = {"size_bytes": after.total_bytes, "baseline_size_bytes": before.total_bytes,
           "params": after.total_params, "baseline_params": before.total_params,
           "flops": after.total_flops, "baseline_flops": before.total_flops,
           "sparsity": zeros / weights if weights else 0.0}
    if artifact is not None and artifact.exists():
        out["artifact_bytes"] = artifact.stat().st_size
    return out


def _add_notes(metrics: dict, dataset, spec: JobSpec, notes: list[str]) -> None:
    from accelstudio.core.measure.benchmark import MIN_STABLE_CALLS

    if metrics.get("n", 0) < MIN_STABLE_CALLS:
        notes.append(f"only {metrics.get('n')} timed calls: too few for stable percentiles; raise repeats or the "
                     "time budget")
    elif not metrics.get("stable", True):
        notes.append(f"latency spread p90/p50 = {metrics['spread_ratio']:.2f} over {metrics['n']} calls: the "
                     "machine was busy; measure again before trusting small differences")
    if spec.evaluate and dataset.labels is None:
        what = "synthesized inputs" if dataset.synthesized else f"unlabeled data ({dataset.source})"
        notes.append(f"no labels ({what}): only fidelity to the uncompressed model is reported; "
                     "give a labeled .npz (arrays per input + 'labels') for accuracy")


def _layer_dict(report) -> dict[str, Any]:
    return {"name": report.name, "requested": report.requested, "achieved": report.achieved,
            "params_before": report.params_before, "params_after": report.params_after}


def _warning_dict(w) -> dict[str, Any]:
    return {"code": w.code, "message": w.message, "advice": w.advice, "control": w.control}
