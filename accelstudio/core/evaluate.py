"""Accuracy and fidelity with honest uncertainty: batched prediction, non-finite outputs counted as wrong,
a paired bootstrap interval and an exact McNemar test for the accuracy change against the baseline.

Everything is vectorized over samples so that evaluation adds little to the backend's own time.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from accelstudio.core.datasets import Dataset
from accelstudio.core.errors import DatasetError
from accelstudio.core.progress import ProgressCallback, ProgressEvent, CancelToken, check_cancel

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]
CI_LEVEL = 0.95
_Z95 = 1.959963984540054


def run_batches(predict: Predict, dataset: Dataset, batch: int, cancel: CancelToken | None = None,
                progress: ProgressCallback | None = None, pad_last: bool = False) -> np.ndarray:
    """Run `predict` over the data set in batches of `batch` samples and concatenate the outputs.

    Checks `cancel` between batches and reports stage "evaluate". With `pad_last`, a short last batch is
    padded by repeating its final sample (for models with a fixed batch size) and the padding is dropped."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    n = dataset.num_samples
    outputs = []
    for start in range(0, n, batch):
        check_cancel(cancel)
        stop = min(start + batch, n)
        feed = dataset.slice(start, stop)
        if pad_last and stop - start < batch:
            feed = {k: _pad(v, batch) for k, v in feed.items()}
        out = np.asarray(predict(feed))
        outputs.append(out[: stop - start])
        if progress is not None:
            progress(ProgressEvent("evaluate", stop / n, f"{stop}/{n} samples"))
    check_cancel(cancel)
    return np.concatenate(outputs, axis=0)


def _pad(arr: np.ndarray, size: int) -> np.ndarray:
    extra = np.repeat(arr[-1:], size - arr.shape[0], axis=0)
    return np.concatenate([arr, extra], axis=0)


def _rows(outputs: np.ndarray) -> np.ndarray:
    outputs = np.asarray(outputs)
    return outputs.reshape(outputs.shape[0], -1) if outputs.ndim != 2 else outputs


def _class_major(outputs: np.ndarray) -> np.ndarray:
    """Outputs as a contiguous (classes, samples) array. Reductions over a few classes per sample run an
    order of magnitude faster along the first axis of this layout than along the rows of (samples, classes)."""
    return np.ascontiguousarray(_rows(outputs).T)


def _nonfinite_cm(cm: np.ndarray) -> np.ndarray:
    if cm.dtype.kind not in "fc":
        return np.zeros(cm.shape[1], dtype=bool)
    return ~np.isfinite(cm).all(axis=0)


def nonfinite_rows(outputs: np.ndarray) -> np.ndarray:
    """Boolean mask of output rows (samples) holding any NaN or Inf."""
    return _nonfinite_cm(_class_major(outputs))


def _correct(outputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample top-1 correctness (non-finite rows wrong), the non-finite mask and the class-major scores."""
    cm = _class_major(outputs)
    bad = _nonfinite_cm(cm)
    if bad.any():
        cm = np.where(bad[None, :], -np.inf, cm)
    correct = (np.argmax(cm, axis=0) == labels) & ~bad
    return correct, bad, cm


def accuracy_metrics(outputs: np.ndarray, labels: np.ndarray, baseline_outputs: np.ndarray | None = None,
                     n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Top-1 (and top-5 with >= 5 classes) accuracy as fractions, with a 95% Wilson interval.

    Rows with NaN/Inf count as wrong and are reported in `nonfinite_outputs`. With `baseline_outputs`,
    adds baseline_accuracy, accuracy_delta (points, new - baseline), accuracy_delta_ci (paired bootstrap
    95% interval in points), delta_significant (the interval excludes 0) and mcnemar_p (exact test)."""
    labels = np.asarray(labels).astype(np.int64, copy=False)
    n = labels.shape[0]
    rows = _rows(outputs).shape[0]
    if n == 0 or rows != n:
        raise ValueError(f"need one output row per label: {rows} rows, {n} labels")
    width = _rows(outputs).shape[1]
    if labels.min() < 0 or labels.max() >= width:
        raise DatasetError(None, f"the labels go up to class {int(labels.max())}, but the model gives {width} "
                                 "scores per sample; use labels that match the model's classes")
    correct, bad, scores = _correct(outputs, labels)
    acc = float(correct.mean())
    metrics: dict[str, Any] = {"accuracy": acc, "accuracy_ci": wilson_interval(int(correct.sum()), n),
                               "n_eval": int(n), "nonfinite_outputs": int(bad.sum())}
    if scores.shape[0] >= 5:
        metrics["accuracy_top5"] = float(_topk_correct(scores, labels, 5, bad).mean())
    if baseline_outputs is not None:
        base_correct, base_bad, _ = _correct(baseline_outputs, labels)
        if base_correct.shape[0] != n:
            raise ValueError("baseline outputs and outputs have different numbers of rows")
        metrics.update(paired_delta(correct, base_correct, n_boot=n_boot, seed=seed))
        metrics["baseline_nonfinite_outputs"] = int(base_bad.sum())
    return metrics


def _topk_correct(cm: np.ndarray, labels: np.ndarray, k: int, bad: np.ndarray) -> np.ndarray:
    # The label is in the top k when fewer than k classes score strictly higher (ties favour the label).
    label_scores = cm[labels, np.arange(cm.shape[1])]
    higher = (cm > label_scores[None, :]).sum(axis=0)
    return (higher < k) & ~bad


def paired_delta(correct: np.ndarray, base_correct: np.ndarray, n_boot: int = 2000,
                 seed: int = 0) -> dict[str, Any]:
    """Accuracy change new - baseline in points with a paired bootstrap 95% interval and exact McNemar p.

    The per-sample difference takes only the values -1, 0, +1, so resampling n rows with replacement is the
    same as drawing multinomial counts of those three values: exact, and O(n_boot) instead of O(n_boot*n)."""
    n = correct.shape[0]
    diff = correct.astype(np.int8) - base_correct.astype(np.int8)
    worse, better = int((diff < 0).sum()), int((diff > 0).sum())
    probs = np.array([worse, n - worse - better, better], dtype=np.float64) / n
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, probs, size=n_boot)
    boot = (counts[:, 2] - counts[:, 0]) / n * 100.0
    alpha = (1.0 - CI_LEVEL) / 2
    lo, hi = (float(v) for v in np.quantile(boot, [alpha, 1.0 - alpha]))
    base_acc = float(base_correct.mean())
    return {
        "baseline_accuracy": base_acc,
        "accuracy_delta": (better - worse) / n * 100.0,
        "accuracy_delta_ci": [lo, hi],
        "delta_significant": bool(lo > 0 or hi < 0),
        "mcnemar_p": mcnemar_exact(worse, better),
        "discordant": {"baseline_only": worse, "new_only": better},
    }


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of min(b, c) out of b + c discordant pairs at p=1/2.

    Integer arithmetic up to 20,000 discordant pairs; beyond that the same sum in log space."""
    m, k_max = b + c, min(b, c)
    if m == 0:
        return 1.0
    if m <= 20_000:
        term, tail = 1, 1
        for k in range(k_max):
            term = term * (m - k) // (k + 1)  # C(m, k+1) from C(m, k), exact
            tail += term
        return min(1.0, 2 * tail / 2 ** m)
    j = np.arange(k_max, dtype=np.float64)
    log_terms = np.concatenate([[0.0], np.cumsum(np.log(m - j) - np.log(j + 1))])
    top = log_terms.max()
    log_tail = top + math.log(np.exp(log_terms - top).sum())
    return min(1.0, math.exp(math.log(2.0) + log_tail - m * math.log(2.0)))


def wilson_interval(successes: int, n: int) -> list[float]:
    """95% Wilson score interval for a proportion, as fractions [lo, hi]."""
    if n == 0:
        return [0.0, 1.0]
    p = successes / n
    z2 = _Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def fidelity_metrics(outputs: np.ndarray, baseline_outputs: np.ndarray) -> dict[str, Any]:
    """How closely the new outputs follow the baseline's, over rows finite in both: top-1 agreement,
    mean per-row cosine similarity, max absolute error, and mean KL(softmax(base) || softmax(new)).

    Outputs that already are probability rows (non-negative, summing to 1) are compared as given.
    `nonfinite_outputs` counts the new outputs' non-finite rows; None values mean no row was finite."""
    new, base = _class_major(outputs), _class_major(baseline_outputs)
    if new.shape != base.shape:
        raise ValueError(f"outputs {new.T.shape} and baseline outputs {base.T.shape} differ in shape")
    bad_new, bad_base = _nonfinite_cm(new), _nonfinite_cm(base)
    keep = ~(bad_new | bad_base)
    result: dict[str, Any] = {"nonfinite_outputs": int(bad_new.sum()), "n_compared": int(keep.sum())}
    if not keep.any():
        return {**result, "top1_agreement": None, "cosine": None, "max_abs_error": None, "kl_divergence": None}
    if not keep.all():
        new, base = new[:, keep], base[:, keep]
    new, base = new.astype(np.float64, copy=False), base.astype(np.float64, copy=False)
    result["top1_agreement"] = float((new.argmax(axis=0) == base.argmax(axis=0)).mean())
    result["cosine"] = float(_cosine(new, base).mean())
    result["max_abs_error"] = float(np.abs(new - base).max())
    result["kl_divergence"] = float(_kl(base, new).mean())
    return result


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample cosine similarity of class-major arrays; two all-zero outputs count as identical."""
    na, nb = np.sqrt((a * a).sum(axis=0)), np.sqrt((b * b).sum(axis=0))
    dots = (a * b).sum(axis=0)
    denom = na * nb
    cos = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
    cos[(na == 0) & (nb == 0)] = 1.0
    return np.clip(cos, -1.0, 1.0)


def _log_softmax(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample log-softmax and softmax of a class-major array, sharing one exp (in place: fresh
    allocations cost more than the arithmetic at these sizes)."""
    log_p = cm - cm.max(axis=0)
    p = np.exp(log_p)
    total = p.sum(axis=0)
    log_p -= np.log(total)
    p /= total
    return log_p, p


def _looks_like_probs(*arrays: np.ndarray) -> bool:
    return all(bool((a >= 0).all() and np.allclose(a.sum(axis=0), 1.0, atol=1e-3)) for a in arrays)


def _kl(p_raw: np.ndarray, q_raw: np.ndarray) -> np.ndarray:
    """Per-sample KL(p || q) of class-major logits (or probabilities, when both already are)."""
    if _looks_like_probs(p_raw, q_raw):
        p = p_raw
        log_p, log_q = np.log(np.clip(p_raw, 1e-12, None)), np.log(np.clip(q_raw, 1e-12, None))
    else:
        (log_p, p), (log_q, _) = _log_softmax(p_raw), _log_softmax(q_raw)
    log_p -= log_q
    log_p *= p
    return np.maximum(log_p.sum(axis=0), 0.0)  # rounding can give -1e-17 for identical rows


def median_difference_ci(a_ms: np.ndarray, b_ms: np.ndarray, n_boot: int = 1000,
                         seed: int = 0) -> tuple[float, float, float]:
    """Median(b) - median(a) with a bootstrap 95% interval, for per-call timings of two runs (ms).

    This captures per-call noise only; drift between runs taken at different times is not in it."""
    a, b = np.asarray(a_ms, dtype=np.float64), np.asarray(b_ms, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("both runs need per-call timings")
    n_boot = min(n_boot, max(200, 4_000_000 // max(a.size, b.size)))  # bound memory for long runs
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, a.size, (n_boot, a.size))], axis=1)
    mb = np.median(b[rng.integers(0, b.size, (n_boot, b.size))], axis=1)
    alpha = (1.0 - CI_LEVEL) / 2
    lo, hi = np.quantile(mb - ma, [alpha, 1.0 - alpha])
    return float(np.median(b) - np.median(a)), float(lo), float(hi)


# Names used in the shared module overview.
evaluate_accuracy = accuracy_metrics
fidelity = fidelity_metrics
