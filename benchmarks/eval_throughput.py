"""Does accuracy evaluation cost more than the backend's own inference? The product's evaluation path against a
plain batched loop over the same ONNX Runtime session.

For digits-cnn and digits-resnet (shipped ONNX models, test set repeated to --samples samples, batch 64,
2 threads by default):

* product: run_batches(predictor.run, dataset, 64) on the pipeline's predictor (make_predictor), then
  accuracy_metrics(outputs, labels, baseline_outputs) as the job pipeline calls it (Wilson interval, paired
  bootstrap and McNemar test against the baseline outputs);
* raw: for each batch session.run(None, {"x": batch})[0] on the same session, concatenate, argmax == labels.

Both sides run in interleaved rounds in this one process (order alternating per round), so machine load hits
them alike. Goal: product time / raw time <= 1.2 (the median over rounds of the per-round ratio).

Writes benchmarks/results/eval_throughput.json. Exits non-zero only on an error, never on a missed goal.
Usage: python benchmarks/eval_throughput.py [--quick] [--rounds N] [--samples 3000] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "eval_throughput"
EXAMPLES = ("digits-cnn", "digits-resnet")
GOAL_RATIO = 1.2
BATCH = 64
AUTO_MIN_ROUNDS, AUTO_MAX_ROUNDS, AUTO_BUDGET_S = 3, 41, 25.0  # --rounds 0: as many rounds as fit the budget


def repeated_dataset(example: str, samples: int):
    """The example's ONNX handle and its test set repeated (cyclically) to `samples` samples."""
    from accelstudio.core.data.dataset import Dataset
    from accelstudio.core.data.datasets import load_dataset
    from accelstudio.core.model.loading import load_example

    handle = load_example(example, backend="onnx")
    ds = load_dataset(None, handle)
    idx = np.arange(samples) % ds.num_samples
    inputs = {k: np.ascontiguousarray(v[idx]) for k, v in ds.inputs.items()}
    return handle, Dataset(inputs, ds.labels[idx], f"{ds.source} x{samples / ds.num_samples:.1f}", False, samples)


def product_eval(predictor, dataset, baseline_outputs) -> float:
    """Seconds for the product's evaluation: run_batches + accuracy_metrics (with the baseline comparison)."""
    from accelstudio.core.measure.evaluate import accuracy_metrics, run_batches

    start = time.perf_counter()
    outputs = run_batches(predictor.run, dataset, BATCH)
    accuracy_metrics(outputs, dataset.labels, baseline_outputs)
    return time.perf_counter() - start


def raw_eval(session, dataset) -> float:
    """Seconds for a plain loop of session.run over the same batches and a top-1 accuracy."""
    x, labels = dataset.inputs["x"], dataset.labels
    name = session.get_inputs()[0].name
    run = session.run
    start = time.perf_counter()
    outs = [run(None, {name: x[i:i + BATCH]})[0] for i in range(0, len(x), BATCH)]
    float((np.concatenate(outs).argmax(axis=1) == labels).mean())
    return time.perf_counter() - start


def compare(example: str, samples: int, rounds: int, threads: int) -> dict:
    """Interleaved rounds of both sides on one example; medians, ratio and per-round ratios."""
    from accelstudio.core.measure.evaluate import accuracy_metrics, run_batches
    from accelstudio.core.job import RuntimeSettings
    from accelstudio.core.measure.runtimes import make_predictor

    handle, dataset = repeated_dataset(example, samples)
    predictor = make_predictor(handle, RuntimeSettings(runtime="onnxruntime", threads=threads, batch=BATCH))
    session = predictor.session
    baseline_outputs = run_batches(predictor.run, dataset, BATCH)  # the baseline outputs; warms the session
    accuracy_metrics(baseline_outputs, dataset.labels, baseline_outputs)  # its first call allocates (~30 ms)
    product, raw = [], []
    deadline = time.perf_counter() + AUTO_BUDGET_S
    r = 0
    while (r < rounds) if rounds > 0 else (r < AUTO_MIN_ROUNDS or (time.perf_counter() < deadline
                                                                    and r < AUTO_MAX_ROUNDS)):
        if r % 2 == 0:
            product.append(product_eval(predictor, dataset, baseline_outputs))
            raw.append(raw_eval(session, dataset))
        else:
            raw.append(raw_eval(session, dataset))
            product.append(product_eval(predictor, dataset, baseline_outputs))
        r += 1
    ratios = np.asarray(product) / np.asarray(raw)
    p, q = float(np.median(product)), float(np.median(raw))
    # the goal figure: the median of the per-round ratios (each round pairs the two sides in time)
    return {"example": example, "samples": samples, "batch": BATCH, "threads": threads, "rounds": r,
            "product_s": product, "raw_s": raw, "product_median_s": p, "raw_median_s": q,
            "ratio": float(np.median(ratios)), "ratio_of_medians": p / q,
            "round_ratio_min": float(ratios.min()), "round_ratio_max": float(ratios.max()),
            "product_samples_per_s": samples / p, "raw_samples_per_s": samples / q}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits-cnn only, 640 samples, 2 rounds")
    parser.add_argument("--rounds", type=int, default=0,
                        help=f"interleaved rounds (default 0: {AUTO_MIN_ROUNDS} to {AUTO_MAX_ROUNDS}, as many as fit "
                             f"{AUTO_BUDGET_S:g} s per example)")
    parser.add_argument("--samples", type=int, default=3000, help="samples per evaluation (default 3000)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads (default 2)")
    parser.add_argument("--results-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    examples = ["digits-cnn"] if args.quick else list(EXAMPLES)
    if args.quick:
        args.samples, args.rounds = 640, 2
    info = common.header("evaluation throughput: product path vs a plain session.run loop")
    watch = common.LoadWatch()
    results, goals = {}, {}
    for example in examples:
        res = compare(example, args.samples, args.rounds, args.threads)
        watch.sample()
        results[example] = res
        print(f"{example}: {args.samples} samples, batch {BATCH}: product {res['product_median_s']:.3f} s "
              f"({res['product_samples_per_s']:.0f}/s), raw loop {res['raw_median_s']:.3f} s "
              f"({res['raw_samples_per_s']:.0f}/s); per-round ratios {res['round_ratio_min']:.3f}.."
              f"{res['round_ratio_max']:.3f}")
        goals[example] = common.goal(f"{example}: product / raw evaluation time (median of rounds)", res["ratio"], GOAL_RATIO, "x",
                                     fmt=".3f")
    print(watch.summary())
    doc = {"quick": bool(args.quick), "goal": {"ratio_at_most": GOAL_RATIO}, "examples": results,
           "result": goals, "machine": info, "load_average": watch.record()}
    common.write_results(NAME, doc, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
