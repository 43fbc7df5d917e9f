"""`accelstudio run`: compress a model, measure its latency and accuracy in an isolated worker, store the run.

Exit 0 when the run is done; 1 when it failed or was cancelled (the reason is printed, never a traceback);
2 for errors in the command line itself (bad recipe flags, an unknown runtime).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from accelstudio.cli import runs_format as fmt
from accelstudio.cli.model_args import UsageError, add_model_arguments, model_from_args
from accelstudio.cli.profile_format import profile_lines
from accelstudio.cli.recipe_args import add_data_arguments, add_recipe_arguments, recipe_from_args, shapes_from_args
from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import COMPILE_BACKENDS, DEVICES, GRAPH_OPT_LEVELS, RUNTIMES, JobSpec, RunResult, \
    RuntimeSettings

JSON_METRICS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "iqr_ms", "min_ms", "n", "stable",
                "spread_ratio", "throughput", "throughput_concurrent", "cold_start_ms", "load_ms", "accuracy",
                "accuracy_top5", "baseline_accuracy", "accuracy_delta", "accuracy_delta_ci", "delta_significant",
                "n_eval", "fidelity", "nonfinite_outputs", "size_bytes", "baseline_size_bytes", "artifact_bytes",
                "params", "baseline_params", "flops", "baseline_flops", "sparsity", "notes", "data", "execution",
                "machine", "compile")


PROFILE_METRICS = ("profile", "profile_error", "roofline", "roofline_error")


def register(subparsers) -> None:
    """Add the `run` command."""
    p = subparsers.add_parser(
        "run", help="compress a model and measure latency and accuracy (isolated worker)",
        description="Apply a recipe, then measure latency (warm-up discarded, every call timed) and accuracy "
                    "against the uncompressed model, in a separate process. The run is saved in the store.")
    add_model_arguments(p)
    add_recipe_arguments(p)
    g = p.add_argument_group("measurement")
    g.add_argument("--runtime", choices=RUNTIMES,
                   help="default: onnxruntime for ONNX models and examples, torch for torch files")
    g.add_argument("--device", choices=DEVICES, default="cpu")
    g.add_argument("--provider", metavar="NAME", help="ONNX Runtime execution provider (default: the device's)")
    g.add_argument("--threads", type=int, default=0, metavar="N", help="intra-op threads (0 = all cores)")
    add_ort_knob_arguments(g)
    g.add_argument("--batch", type=int, default=1, metavar="N")
    g.add_argument("--warmup", type=int, default=10, metavar="N", help="discarded calls before timing")
    g.add_argument("--repeats", type=int, default=200, metavar="N", help="timed calls (at most)")
    g.add_argument("--time-budget", type=float, default=3.0, metavar="S", help="stop timing after S seconds")
    g.add_argument("--streams", type=int, default=1, metavar="N", help="also measure throughput with N threads")
    g.add_argument("--timeout", type=float, default=600.0, metavar="S", help="per-stage time limit")
    g.add_argument("--memory-limit", type=int, default=8192, metavar="MB", help="worker memory cap (0 = none)")
    g.add_argument("--profile", action="store_true",
                   help="after timing, profile each operator and place layers under this machine's roofs")
    p.add_argument("--data", metavar="FILE", help="labeled .npz (arrays per input + labels) or image folder")
    add_data_arguments(p)
    p.add_argument("--max-samples", type=int, default=2000, metavar="N", help="evaluate at most N samples")
    p.add_argument("--no-eval", action="store_true", help="measure latency only")
    p.add_argument("--no-artifact", action="store_true", help="do not keep the optimized model file")
    p.add_argument("--trust", action="store_true",
                   help="allow formats that can run code when loaded (TorchScript, torch.export, pickle)")
    p.add_argument("--store", metavar="PATH", help="run store (default: $ACCELSTUDIO_STORE or the data folder)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run_run)


def run_run(args: argparse.Namespace) -> int:
    """Build the job, run it in a worker, store and print the result; exit 1 unless it is done."""
    from accelstudio.core.paths import default_store_path
    from accelstudio.core.runs.store import RunStore
    from accelstudio.worker.client import execute_job

    spec = build_spec(args)
    store = RunStore(args.store or default_store_path())
    progress = None if args.json else _stage_printer()
    result = execute_job(spec, store=store, on_message=progress)
    baseline = _stored_baseline(store, result)
    if args.json:
        print(json.dumps(json_document(result, baseline), indent=2, default=str))
    else:
        print(format_result(result, baseline))
    if result.status != "done":
        print(f"error: run {result.status}: {result.reason}", file=sys.stderr)
        return 1
    return 0


def build_spec(args: argparse.Namespace) -> JobSpec:
    """The JobSpec the command line describes (validates the recipe and the numbers)."""
    model = model_from_args(args)
    for name in ("batch", "repeats", "streams"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1")
    if args.threads < 0 or args.warmup < 0 or args.time_budget <= 0:
        raise UsageError("--threads and --warmup must be >= 0 and --time-budget > 0")
    runtime = args.runtime or default_runtime(model)
    settings = RuntimeSettings(runtime=runtime, device=args.device, threads=args.threads, batch=args.batch,
                               warmup=args.warmup, repeats=args.repeats, time_budget_s=args.time_budget,
                               streams=args.streams, provider=args.provider, **ort_knobs_from_args(args),
                               profile=bool(getattr(args, "profile", False)))
    train_data = str(Path(args.train_data).resolve()) if getattr(args, "train_data", None) else None
    calib = str(Path(args.calib).resolve()) if getattr(args, "calib", None) else None
    spec = JobSpec(model=model, recipe=recipe_from_args(args), runtime=settings, data=args.data,
                   train_data=train_data, calib_data=calib, input_shapes=shapes_from_args(args),
                   allow_train_overlap=bool(getattr(args, "allow_train_overlap", False)), trust=args.trust,
                   evaluate=not args.no_eval, max_eval_samples=args.max_samples, timeout_s=args.timeout,
                   memory_limit_mb=args.memory_limit, keep_artifact=not args.no_artifact)
    return precheck_spec(spec)


SPINNING = {"on": True, "off": False, "default": None}


def add_ort_knob_arguments(g) -> None:
    """ONNX Runtime's thread knobs and the compiled form to measure next to eager (argument group `g`)."""
    g.add_argument("--intra-threads", type=int, metavar="N",
                   help="ONNX Runtime intra-op threads when they should differ from --threads (0 = all cores)")
    g.add_argument("--inter-threads", type=int, default=1, metavar="N",
                   help="ONNX Runtime inter-op threads; more than 1 turns on its parallel executor (default 1)")
    g.add_argument("--spinning", choices=tuple(SPINNING), default="off",
                   help="ONNX Runtime thread spinning between calls: off (default: spinning threads slow other "
                        "work on the machine), on, or ONNX Runtime's own default (on)")
    g.add_argument("--graph-opt", choices=GRAPH_OPT_LEVELS, default="all",
                   help="ONNX Runtime graph optimization level (default all)")
    g.add_argument("--compile", choices=COMPILE_BACKENDS, metavar="BACKEND",
                   help="also measure a compiled form next to the eager one, interleaved, with its compile time "
                        f"and calls to pay it back: {', '.join(COMPILE_BACKENDS)} (inductor: torch.compile; "
                        "ort-levels: ONNX Runtime's graph optimization levels against 'disabled')")


def ort_knobs_from_args(args: argparse.Namespace) -> dict:
    """The RuntimeSettings fields of add_ort_knob_arguments (UsageError for negative thread counts)."""
    intra = getattr(args, "intra_threads", None)
    inter = getattr(args, "inter_threads", 1)
    if (intra is not None and intra < 0) or inter < 0:
        raise UsageError("--intra-threads and --inter-threads must be >= 0 (0 = all cores)")
    return {"intra_threads": intra, "inter_threads": inter, "spinning": SPINNING[getattr(args, "spinning", "off")],
            "graph_opt_level": getattr(args, "graph_opt", "all"), "compile": getattr(args, "compile", None) or ""}


def precheck_spec(spec: JobSpec) -> JobSpec:
    """Refuse, before the worker starts, what can be known from the file alone: a recipe the model's format
    cannot take (feasibility.py), and for ONNX files input shapes or a batch the graph cannot take. A shape
    given without a name is bound to the model's single input. Everything is checked again in the worker."""
    from dataclasses import replace

    from accelstudio.core.compress.feasibility import check_job_feasible, sniff_model_format

    fmt = sniff_model_format(spec.model)
    if fmt is not None:
        backend = "onnx" if fmt == "onnx" else "torch"
        check_job_feasible(fmt, backend, spec.runtime.runtime, spec.runtime.device, spec.recipe,
                           model_name=Path(spec.model).name)
    if fmt == "onnx":
        from accelstudio.core.compress.feasibility import onnx_file_inputs
        from accelstudio.core.model.input_shapes import name_unnamed, plan_shapes

        handle = onnx_file_inputs(spec.model)
        if handle is not None:
            shapes = name_unnamed(spec.input_shapes, [s.name for s in handle.inputs])
            plan_shapes(handle, spec.runtime.batch, shapes)
            spec = replace(spec, input_shapes={k: list(v) for k, v in shapes.items()})
    return spec


def default_runtime(model: str) -> str:
    """onnxruntime for examples and ONNX files (by content, else extension), torch for anything else."""
    if model.startswith("example:"):
        return "onnxruntime"
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        return "onnxruntime"
    try:
        from accelstudio.core.model.loading_common import read_head, sniff_content

        if path.is_file() and sniff_content(read_head(path), path.stat().st_size) == "onnx":
            return "onnxruntime"
    except (AccelStudioError, OSError):
        pass  # the worker reports unreadable files properly
    return "torch"


def _stage_printer():
    """A progress callback printing each new stage to stderr (called from the runner's thread)."""
    seen: set[str] = set()

    def on_message(msg) -> None:
        stage = getattr(msg, "stage", None)
        if msg.type == "progress" and stage not in seen and stage != "startup":
            seen.add(stage)
            print(f"[{stage}] {msg.text}", file=sys.stderr, flush=True)

    return on_message


def _stored_baseline(store, result: RunResult) -> RunResult | None:
    """The like-for-like baseline of a finished run among the stored runs (None when there is none)."""
    from accelstudio.core.runs.baseline import find_baseline

    if result.status != "done":
        return None
    try:
        return find_baseline(store.list_runs(), result)
    except AccelStudioError:
        return None


def json_document(result: RunResult, baseline: RunResult | None = None) -> dict[str, Any]:
    """The --json output: status, reason, run_id, what ran, the headline metrics, the run report (verdicts
    against `baseline`, its like-for-like baseline run), warnings, layers."""
    from accelstudio.core.runs.report import build_report

    m = result.metrics
    spec = result.spec or {}
    doc: dict[str, Any] = {"status": result.status, "reason": result.reason, "run_id": result.run_id,
                           "model": result.model_identity.get("name") or spec.get("model"),
                           "model_sha256": result.model_identity.get("sha256"),
                           "recipe": spec.get("recipe"), "runtime": spec.get("runtime")}
    doc.update({k: m.get(k) for k in JSON_METRICS})
    doc.update({k: m[k] for k in PROFILE_METRICS if k in m})
    doc["report"] = build_report(result, baseline).to_dict()
    doc.update({"warnings": result.warnings, "layers": result.layers, "artifact": result.artifact,
                "created": result.created})
    if "traceback" in m:
        doc["traceback"] = m["traceback"]
    return doc


def format_result(result: RunResult, baseline: RunResult | None = None) -> str:
    """The human summary printed by `accelstudio run`, read through the run report against `baseline`."""
    from accelstudio.core.runs.report import build_report

    rep = build_report(result, baseline)
    spec = result.spec or {}
    head = (f"run {result.run_id if result.run_id is not None else '-'}: {result.status}   "
            f"{result.model_identity.get('name') or spec.get('model')}   {rep.settings}   recipe: "
            f"{fmt.recipe_text(result) or '-'}")
    lines = [head]
    if result.status != "done":
        lines.append(f"reason: {result.reason}")
        return "\n".join(lines)
    if rep.broken is not None:
        lines.append(f"*** {rep.broken.text()} ***")
    lat = rep.latency
    stable = "stable" if lat.stable else "UNSTABLE (noisy machine or short run)"
    lines.append(f"latency     p50 {fmt.fmt_ms(lat.p50_ms)} ms  p90 {fmt.fmt_ms(lat.p90_ms)} ms  "
                 f"p99 {fmt.fmt_ms(lat.p99_ms)} ms   (n={lat.n}, p90/p50 {_num(lat.spread_ratio)}, {stable})")
    m = result.metrics
    tput = f"throughput  {fmt.fmt_rate(lat.throughput)} samples/s"
    if m.get("throughput_concurrent"):
        tput += f"   {fmt.fmt_rate(m['throughput_concurrent'])} samples/s with {m.get('streams')} streams"
    lines.append(tput)
    lines.append(f"cold start  {fmt.fmt_ms(lat.cold_start_ms)} ms (model load {fmt.fmt_ms(lat.load_ms)} ms)")
    lines.append(_speed_line(rep))
    compiled = m.get("compile") if isinstance(m.get("compile"), dict) else None
    if compiled:
        lines.extend(f"compile     {line}" for line in compiled.get("lines") or ())
    lines.extend(_quality_lines(rep))
    sz = rep.sizes
    lines.append(f"size        {fmt.fmt_bytes(sz.size_bytes)} (baseline {fmt.fmt_bytes(sz.baseline_size_bytes)})"
                 f"   params {fmt.fmt_count(sz.params)} (baseline {fmt.fmt_count(sz.baseline_params)})"
                 f"   sparsity {fmt.fmt_pct(sz.sparsity)}")
    lines.append(f"data        {rep.data.describe()}")
    if rep.data.shapes_text():
        guessed = rep.data.guessed_text()
        lines.append(f"inputs      {rep.data.shapes_text()}" + (f"   {guessed} (set --input-shape)" if guessed else ""))
    if rep.data.calib:
        lines.append(f"calibration {rep.data.calib}")
    for w in result.warnings:
        lines.append(f"warning [{w.get('control')}]: {w.get('message')}"
                     + (f"\n    -> {w['advice']}" if w.get("advice") else ""))
    lines.extend(f"WARNING: {w}" for w in rep.warnings)
    lines.extend(f"note: {n}" for n in rep.notes)
    other = baseline if baseline is not None and baseline.run_id != result.run_id else None
    lines.extend(profile_lines(m, other.metrics if other else None, other.run_id if other else None))
    if result.artifact:
        lines.append(f"optimized model: {result.artifact}")
    return "\n".join(lines)


def _speed_line(rep) -> str:
    if rep.is_baseline:
        return "speed-up    this run is the baseline of its settings"
    if rep.speedup is not None and rep.baseline is not None:
        return f"speed-up    {rep.speedup.text()} vs baseline {rep.baseline.describe()}"
    return f"speed-up    - ({rep.baseline_note})"


def _quality_lines(rep) -> list[str]:
    q = rep.quality
    lines = []
    if q.headline == "accuracy":
        base = f"baseline {fmt.fmt_pct(q.baseline_accuracy)}; " if q.baseline_accuracy is not None else ""
        change = f"change {q.change.text()}" if q.change else "no paired change"
        lines.append(f"accuracy    {fmt.fmt_pct(q.accuracy)} ({base}{change}; n={q.n_eval})")
    elif q.headline:
        lines.append(f"quality     {q.headline_text()} (no labels: fidelity to the uncompressed model; "
                     f"{q.output_reason})")
    if q.agreement is not None or q.cosine is not None:
        lines.append(f"fidelity    top-1 agreement {fmt.fmt_pct(q.agreement)}, cosine {_num(q.cosine, 4)}, "
                     f"max abs error {_num(q.max_abs_error, 4)}, KL {_num(q.kl_divergence, 5)}")
    if q.nonfinite_outputs:
        lines.append(f"NaN/Inf     {q.nonfinite_outputs} outputs are not finite")
    return lines


def _num(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"
