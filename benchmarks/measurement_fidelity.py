"""Does the benchmark measure the model, not itself?

For the bundled digits-resnet on ONNX Runtime (fp32 and dynamic int8 per-channel; 2 threads by default, batch 1) the
pipeline's p50 (measure_latency through make_predictor) is compared with an independent tight loop
(perf_counter_ns around session.run on a session built here with the same options), interleaved round by
round in one process so that machine load hits both alike. The harness's own cost is also measured on a
no-op call. Goals: p50 within 5% of the tight loop; at most 20 us of overhead per call.

Writes benchmarks/results/measurement_fidelity.json. Exits non-zero only on error, never on a missed goal.
Usage: python benchmarks/measurement_fidelity.py [--rounds N] [--calls N] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "measurement_fidelity"
EXAMPLE = "digits-resnet"
BATCH = 1
GOAL_RATIO, GOAL_OVERHEAD_US = 0.05, 20.0
VARIANTS = {"fp32": {}, "dynamic-int8 per-channel": {"quantize": {"mode": "dynamic-int8", "per_channel": True}}}


def reference_session(model_bytes: bytes, threads: int):
    """An ONNX Runtime session built directly, with the options the pipeline documents."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def tight_loop(session, feed: dict, calls: int, warmup: int) -> list[float]:
    """Milliseconds per session.run, nothing else in the timed window."""
    run, now = session.run, time.perf_counter_ns
    for _ in range(warmup):
        run(None, feed)
    out = []
    for _ in range(calls):
        t0 = now()
        run(None, feed)
        out.append((now() - t0) / 1e6)
    return out


def compare_variant(recipe_dict: dict, rounds: int, calls: int, threads: int) -> dict:
    """Interleaved rounds of pipeline measurement and tight loop; pooled p50s, ratio and difference."""
    from accelstudio.core.measure.benchmark import measure_latency
    from accelstudio.core.compress.apply import apply_recipe
    from accelstudio.core.data.datasets import load_dataset
    from accelstudio.core.job import RuntimeSettings
    from accelstudio.core.model.loading import load_example
    from accelstudio.core.recipe import Recipe
    from accelstudio.core.measure.runtimes import make_predictor, onnx_bytes

    base = load_example(EXAMPLE, backend="onnx")
    recipe = Recipe.from_dict(recipe_dict)
    handle = base if recipe.is_identity else apply_recipe(base, recipe).handle
    x = load_dataset(None, handle).inputs["x"][:BATCH]
    settings = RuntimeSettings(runtime="onnxruntime", threads=threads, batch=BATCH, warmup=10, repeats=calls,
                               time_budget_s=600.0)
    predictor = make_predictor(handle, settings)
    session = reference_session(onnx_bytes(handle), threads)
    feed = {"x": np.ascontiguousarray(x)}
    pipeline, reference = [], []
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)  # alternate who goes first
        for which in order:
            if which == 0:
                pipeline.extend(measure_latency(predictor, feed, settings).samples_ms)
            else:
                reference.extend(tight_loop(session, feed, calls, settings.warmup))
    p_pipe, p_ref = float(np.median(pipeline)), float(np.median(reference))
    return {"recipe": recipe.describe(), "pipeline_p50_ms": p_pipe, "reference_p50_ms": p_ref,
            "ratio": p_pipe / p_ref, "difference_us": (p_pipe - p_ref) * 1000.0,
            "pipeline_p90_ms": float(np.percentile(pipeline, 90)),
            "reference_p90_ms": float(np.percentile(reference, 90)),
            "n_pipeline": len(pipeline), "n_reference": len(reference),
            "within_goal": abs(p_pipe / p_ref - 1.0) <= GOAL_RATIO}


def harness_overhead(calls: int = 20000) -> dict:
    """measure_latency on a call that does nothing: what the harness itself adds to each recorded time."""
    from accelstudio.core.measure.benchmark import measure_latency
    from accelstudio.core.job import RuntimeSettings

    class Noop:
        def bind(self, inputs):
            return lambda: None

        def timing_context(self):
            return contextlib.nullcontext()

    stats = measure_latency(Noop(), {}, RuntimeSettings(warmup=100, repeats=calls, time_budget_s=60.0))
    return {"p50_us": stats.p50_ms * 1000.0, "p99_us": stats.p99_ms * 1000.0, "n": stats.n,
            "within_goal": stats.p50_ms * 1000.0 <= GOAL_OVERHEAD_US}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16, help="interleaved rounds per variant (default 16)")
    parser.add_argument("--calls", type=int, default=30, help="timed calls per round and side (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    parser.add_argument("--results-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    info = common.header("measurement fidelity: pipeline p50 vs a tight session.run loop")
    watch = common.LoadWatch()
    overhead = harness_overhead()
    variants = {name: compare_variant(recipe, args.rounds, args.calls, args.threads) for name, recipe in VARIANTS.items()}
    print(f"harness overhead (no-op call): p50 {overhead['p50_us']:.3f} us, p99 {overhead['p99_us']:.3f} us "
          f"(goal <= {GOAL_OVERHEAD_US:g} us: {'met' if overhead['within_goal'] else 'MISSED'})")
    for name, v in variants.items():
        print(f"{EXAMPLE} {name:<26} pipeline p50 {v['pipeline_p50_ms']:.4f} ms  tight loop p50 "
              f"{v['reference_p50_ms']:.4f} ms  ratio {v['ratio']:.3f}  difference {v['difference_us']:+.1f} us "
              f"(goal within {GOAL_RATIO:.0%}: {'met' if v['within_goal'] else 'MISSED'})")
    fp32, int8 = variants["fp32"], variants["dynamic-int8 per-channel"]
    print(f"int8 / fp32 p50 (pipeline): {int8['pipeline_p50_ms'] / fp32['pipeline_p50_ms']:.3f}")
    print(watch.summary())
    doc = {"example": EXAMPLE, "threads": args.threads, "batch": BATCH, "rounds": args.rounds, "calls": args.calls,
           "goals": {"p50_ratio_within": GOAL_RATIO, "overhead_us_at_most": GOAL_OVERHEAD_US},
           "harness_overhead": overhead, "variants": variants,
           "environment": info["environment"], "machine": info, "load_average": watch.record()}
    common.write_results(NAME, doc, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
