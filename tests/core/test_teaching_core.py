"""Core pieces behind the lessons: the pruning mask of one layer, Amdahl's law, the transfer experiment."""

from __future__ import annotations

import numpy as np
import pytest

from accelstudio.core.compress.apply import apply_recipe, prunable_weights
from accelstudio.core.compress.prune_mask import layer_mask, mask_image, split_histogram
from accelstudio.core.errors import JobCancelled
from accelstudio.core.job import RunResult
from accelstudio.core.model.loading import load_example
from accelstudio.core.recipe import PruneSpec, Recipe
from accelstudio.core.studies.scaling import (batch_throughput, fit_amdahl, fit_parallel_share, stream_throughput,
                                              thread_scaling)
from accelstudio.core.studies.transfer import TransferError, few_shot_indices, run_transfer


@pytest.mark.parametrize("spec", [PruneSpec(amount=0.6), PruneSpec(amount=0.4, scope="layer"),
                                  PruneSpec(amount=0.5, method="2:4"), PruneSpec(amount=0.3, method="random")])
def test_mask_split_counts_equal_the_pruned_layers_zero_count(spec):
    handle = load_example("digits-cnn", "torch")
    weights, _ = prunable_weights(handle)
    pruned = apply_recipe(handle, Recipe(prune=spec)).handle
    after = {w.name: w.array for w in prunable_weights(pruned)[0]}
    for name in ("conv2", "fc1"):
        mask = layer_mask(weights, name, spec)
        edges, kept, removed = split_histogram(mask)
        assert removed.sum() == mask.removed_count == int((after[name] == 0).sum())
        assert kept.sum() + removed.sum() == after[name].size
        assert len(edges) == len(kept) + 1
        assert np.array_equal(mask.removed, after[name] == 0)


def test_mask_image_is_small_and_counts_shares():
    handle = load_example("digits-mlp", "torch")
    weights, _ = prunable_weights(handle)
    mask = layer_mask(weights, "fc1", PruneSpec(amount=0.5, scope="layer"))
    image = mask_image(mask, max_side=16)
    assert image.shape[0] <= 16 and image.shape[1] <= 16
    assert abs(float(image.mean()) - 0.5) < 0.05


def test_structured_mask_removes_whole_rows_with_smallest_norms():
    handle = load_example("digits-cnn", "torch")
    weights, _ = prunable_weights(handle)
    mask = layer_mask(weights, "conv1", PruneSpec(amount=0.5, method="l1-structured", scope="layer"))
    rows = mask.removed.reshape(mask.removed.shape[0], -1)
    assert rows.all(axis=1).sum() == 8 and mask.exact
    norms = np.abs(mask.weights.reshape(16, -1)).sum(axis=1)
    assert norms[rows.all(axis=1)].max() <= norms[~rows.all(axis=1)].min()


def test_amdahl_fit_recovers_the_parallel_share():
    p = 0.8
    threads = [1, 2, 4, 8]
    speedups = [1 / ((1 - p) + p / n) for n in threads]
    assert fit_parallel_share(threads, speedups) == pytest.approx(p, abs=1e-9)
    fit = fit_amdahl([{"threads": n, "speedup": s, "lo": s * 0.9, "hi": s * 1.1} for n, s in zip(threads, speedups)])
    assert fit.p_lo < fit.p < fit.p_hi and fit.p == pytest.approx(p)
    assert fit.max_speedup == pytest.approx(5.0)
    assert fit.speedup(4) == pytest.approx(speedups[2])
    with pytest.raises(ValueError):
        fit_parallel_share([1], [1.0])


def _run(threads, batch, latencies, streams=1, concurrent=None):
    metrics = {"p50_ms": float(np.median(latencies)), "throughput": batch * 1000 / float(np.mean(latencies)),
               "execution": {"threads": threads}}
    if concurrent:
        metrics["throughput_concurrent"] = concurrent
    return RunResult(status="done", spec={"runtime": {"threads": threads, "batch": batch, "streams": streams}},
                     metrics=metrics, latencies_ms=list(latencies))


def test_scaling_tables_from_runs():
    rng = np.random.default_rng(0)
    runs = [_run(1, 1, 2.0 + rng.normal(0, 0.01, 200)), _run(2, 1, 1.2 + rng.normal(0, 0.01, 200)),
            _run(2, 8, 5.0 + rng.normal(0, 0.01, 100)), _run(1, 1, 1.0 + rng.normal(0, 0.01, 50), streams=2,
                                                               concurrent=1800.0)]
    points = thread_scaling(runs)
    assert [p["threads"] for p in points] == [1, 2]
    assert points[1]["speedup"] == pytest.approx(2.0 / 1.2, rel=0.02) and points[1]["verdict"] == "faster"
    assert fit_amdahl(points).p == pytest.approx(0.8, abs=0.03)
    assert [r["batch"] for r in batch_throughput(runs)] == [1, 8]
    assert stream_throughput(runs)[0]["throughput"] == 1800.0


def test_transfer_trains_three_networks_with_progress_and_honest_data():
    events = []
    result = run_transfer({"source_epochs": 2, "target_epochs": 3, "shots": 3}, progress=events.append)
    phases = result["phases"]
    assert set(phases) == {"source", "transfer", "scratch"}
    assert phases["transfer"]["trained_params"] < phases["scratch"]["trained_params"]
    assert phases["transfer"]["train_samples"] == 15 and result["data"]["target_samples"] == 15
    assert phases["scratch"]["n"] == result["data"]["target_eval_samples"] > 100
    assert [e.partial["phase"] for e in events].count("transfer") == 3
    assert events[-1].fraction == pytest.approx(1.0)
    assert phases["source"]["accuracy"] > 0.5  # a real training on digits 0-4


def test_transfer_cancel_and_bad_settings():
    class Soon:
        calls = 0

        def is_set(self):
            Soon.calls += 1
            return Soon.calls > 5

    with pytest.raises(JobCancelled):
        run_transfer({"source_epochs": 50}, cancel=Soon())
    with pytest.raises(TransferError):
        run_transfer({"shots": 0})
    labels = np.array([5] * 4 + [6] * 10)
    with pytest.raises(TransferError, match="digit 5"):
        few_shot_indices(labels, (5, 6), 5, 0)
