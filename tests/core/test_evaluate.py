"""Accuracy, top-5, non-finite outputs, paired bootstrap interval, McNemar, fidelity and batched prediction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accelstudio.core.data.dataset import Dataset
from accelstudio.core.errors import DatasetError, JobCancelled
from accelstudio.core.measure.evaluate import (accuracy_metrics, fidelity_metrics, mcnemar_exact, median_difference_ci,
                                       nonfinite_rows, run_batches, wilson_interval)
from accelstudio.core.progress import Cancel


def onehot_logits(pred: np.ndarray, classes: int = 10) -> np.ndarray:
    out = np.zeros((len(pred), classes), dtype=np.float32)
    out[np.arange(len(pred)), pred] = 1.0
    return out


def classifier_outputs(n: int = 1000, classes: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), labels] += 2.5
    return logits, labels


def test_accuracy_exact_on_hand_made_case():
    labels = np.array([0, 1, 2, 3])
    outputs = onehot_logits(np.array([0, 1, 0, 3]), classes=4)
    m = accuracy_metrics(outputs, labels)
    assert m["accuracy"] == 0.75 and m["n_eval"] == 4 and m["nonfinite_outputs"] == 0
    assert "accuracy_top5" not in m  # fewer than 5 classes
    lo, hi = m["accuracy_ci"]
    assert lo < 0.75 < hi


def test_labels_beyond_the_output_width_are_a_dataset_error():
    with pytest.raises(DatasetError, match="up to class 7, but the model gives 4 scores"):
        accuracy_metrics(onehot_logits(np.array([0, 1]), classes=4), np.array([0, 7]))


def test_top5_counts_label_among_five_best():
    scores = np.tile(np.arange(10, dtype=np.float32), (3, 1))  # class 9 best, then 8, 7, ...
    m = accuracy_metrics(scores, np.array([9, 5, 4]))
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert m["accuracy_top5"] == pytest.approx(2 / 3)  # 9 and 5 are in the top 5; 4 is sixth


def test_nonfinite_rows_are_flagged_and_wrong():
    labels = np.array([0, 1, 2, 3])
    outputs = onehot_logits(labels, classes=6) * 10
    outputs[1, 1] = np.nan  # would be correct by argmax rules if NaN were ignored
    outputs[3, 0] = np.inf
    assert nonfinite_rows(outputs).tolist() == [False, True, False, True]
    m = accuracy_metrics(outputs, labels)
    assert m["nonfinite_outputs"] == 2 and m["accuracy"] == 0.5 and m["accuracy_top5"] == 0.5
    assert all(math.isfinite(v) for v in (m["accuracy"], m["accuracy_top5"]))


def test_identical_predictions_give_zero_delta_with_ci_containing_zero():
    logits, labels = classifier_outputs()
    m = accuracy_metrics(logits, labels, baseline_outputs=logits.copy())
    assert m["accuracy_delta"] == 0.0 and m["baseline_accuracy"] == m["accuracy"]
    lo, hi = m["accuracy_delta_ci"]
    assert lo <= 0.0 <= hi and not m["delta_significant"] and m["mcnemar_p"] == 1.0


def test_large_injected_drop_is_significant():
    logits, labels = classifier_outputs()
    worse = logits.copy()
    wrong_class = (labels[:200] + 1) % 10
    worse[np.arange(200)] = onehot_logits(wrong_class) * 100  # first 200 samples now wrong
    m = accuracy_metrics(worse, labels, baseline_outputs=logits)
    expected = (m["accuracy"] - m["baseline_accuracy"]) * 100
    assert m["accuracy_delta"] == pytest.approx(expected) and m["accuracy_delta"] < -10
    lo, hi = m["accuracy_delta_ci"]
    assert lo < m["accuracy_delta"] < hi < 0 and m["delta_significant"]
    assert m["mcnemar_p"] < 1e-6


def test_small_change_on_few_samples_is_not_significant():
    logits, labels = classifier_outputs(n=300)
    base_pred = logits.argmax(1)
    worse = logits.copy()
    flip = np.flatnonzero(base_pred == labels)[:2]  # two samples become wrong
    worse[flip] = onehot_logits((labels[flip] + 1) % 10) * 100
    m = accuracy_metrics(worse, labels, baseline_outputs=logits)
    assert m["accuracy_delta"] == pytest.approx(-200 / 300)
    assert not m["delta_significant"] and m["mcnemar_p"] == pytest.approx(0.5)


def test_mcnemar_exact_matches_binomial():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)
    assert 0 < mcnemar_exact(5000, 5400) < 0.01
    # both the integer path and the log-space path (over 20,000 pairs) agree with the normal approximation
    assert mcnemar_exact(10_000, 10_001) == pytest.approx(1.0)
    assert mcnemar_exact(10_000, 10_400) == pytest.approx(_normal_two_sided(10_000, 10_400), rel=0.05)
    assert mcnemar_exact(5_000, 5_400) == pytest.approx(_normal_two_sided(5_000, 5_400), rel=0.05)


def _normal_two_sided(b: int, c: int) -> float:
    z = (abs(b - c) - 1) / math.sqrt(b + c)
    return math.erfc(z / math.sqrt(2))


def test_wilson_interval_bounds():
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_fidelity_perfect_for_identical_outputs():
    logits, _ = classifier_outputs(n=200)
    f = fidelity_metrics(logits, logits.copy())
    assert f["top1_agreement"] == 1.0 and f["cosine"] == pytest.approx(1.0)
    assert f["max_abs_error"] == 0.0 and f["kl_divergence"] == pytest.approx(0.0, abs=1e-12)
    assert f["nonfinite_outputs"] == 0


def test_fidelity_kl_nonnegative_and_grows_with_noise():
    logits, _ = classifier_outputs(n=500)
    rng = np.random.default_rng(3)
    small = fidelity_metrics(logits + rng.normal(scale=0.05, size=logits.shape), logits)
    large = fidelity_metrics(logits + rng.normal(scale=2.0, size=logits.shape), logits)
    assert 0 <= small["kl_divergence"] < large["kl_divergence"]
    assert small["top1_agreement"] > large["top1_agreement"] and small["cosine"] > large["cosine"]


def test_fidelity_skips_nonfinite_rows_and_handles_probabilities():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(5), size=20)
    new = probs.copy()
    new[0, 0] = np.nan
    f = fidelity_metrics(new, probs)
    assert f["nonfinite_outputs"] == 1 and f["n_compared"] == 19 and f["kl_divergence"] == pytest.approx(0.0)
    empty = fidelity_metrics(np.full((2, 3), np.nan), np.zeros((2, 3)))
    assert empty["top1_agreement"] is None and empty["nonfinite_outputs"] == 2


def _dataset(n: int) -> Dataset:
    x = np.arange(n, dtype=np.float32).reshape(n, 1)
    return Dataset({"x": x}, np.zeros(n, dtype=np.int64), "test", False, n)


def test_run_batches_concatenates_in_order_and_reports_progress():
    seen, events = [], []

    def predict(feed):
        seen.append(len(feed["x"]))
        return np.concatenate([feed["x"], -feed["x"]], axis=1)

    out = run_batches(predict, _dataset(10), batch=4, progress=events.append)
    assert seen == [4, 4, 2] and out.shape == (10, 2) and np.array_equal(out[:, 0], np.arange(10))
    assert [e.stage for e in events] == ["evaluate"] * 3 and events[-1].fraction == 1.0


def test_run_batches_pads_last_batch_for_fixed_batch_models():
    def predict(feed):
        assert len(feed["x"]) == 4
        return feed["x"] * 2

    out = run_batches(predict, _dataset(10), batch=4, pad_last=True)
    assert out.shape == (10, 1) and np.array_equal(out[:, 0], np.arange(10) * 2)


def test_run_batches_checks_cancel_between_batches():
    cancel = Cancel()
    calls = []

    def predict(feed):
        calls.append(1)
        if len(calls) == 2:
            cancel.set()
        return feed["x"]

    with pytest.raises(JobCancelled):
        run_batches(predict, _dataset(100), batch=10, cancel=cancel)
    assert len(calls) == 2


def test_median_difference_ci_separates_real_difference_from_noise():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 0.05, 300)
    diff, lo, hi = median_difference_ci(a, rng.normal(1.0, 0.05, 300))
    assert lo <= 0 <= hi
    diff, lo, hi = median_difference_ci(a, rng.normal(0.8, 0.05, 300))
    assert hi < 0 and diff == pytest.approx(-0.2, abs=0.03)
