"""Accuracy and fidelity with honest uncertainty: batched prediction, non-finite outputs counted as wrong,
a paired interval and an exact McNemar test for the accuracy change against the baseline (the statistics
themselves live in accelstudio.core.measure.stats), and a description of what the outputs are.

Everything is vectorized over samples so that evaluation adds little to the backend's own time.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from accelstudio.core.data.dataset import Dataset
from accelstudio.core.errors import DatasetError
from accelstudio.core.progress import ProgressCallback, ProgressEvent, CancelToken, check_cancel
from accelstudio.core.measure.stats import (CI_LEVEL, mcnemar_exact, median_difference_ci, paired_accuracy_change,
                                    paired_counts, wilson_interval)

__all__ = ["accuracy_metrics", "fidelity_metrics", "paired_delta", "run_batches", "nonfinite_rows",
           "describe_outputs", "output_hint", "module_output_hint", "mcnemar_exact", "median_difference_ci", "wilson_interval", "CI_LEVEL"]

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


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


def accuracy_metrics(outputs: np.ndarray, labels: np.ndarray,
                     baseline_outputs: np.ndarray | None = None) -> dict[str, Any]:
    """Top-1 (and top-5 with >= 5 classes) accuracy as fractions, with a 95% Wilson interval.

    Rows with NaN/Inf count as wrong and are reported in `nonfinite_outputs`. With `baseline_outputs`,
    adds baseline_accuracy, accuracy_delta (points, new - baseline), accuracy_delta_ci (Newcombe's paired
    95% interval in points), mcnemar_p (exact test), discordant counts and delta_significant (see paired_delta)."""
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
        metrics.update(paired_delta(correct, base_correct))
        metrics["baseline_nonfinite_outputs"] = int(base_bad.sum())
    return metrics


def _topk_correct(cm: np.ndarray, labels: np.ndarray, k: int, bad: np.ndarray) -> np.ndarray:
    # The label is in the top k when fewer than k classes score strictly higher (ties favour the label).
    label_scores = cm[labels, np.arange(cm.shape[1])]
    higher = (cm > label_scores[None, :]).sum(axis=0)
    return (higher < k) & ~bad


def paired_delta(correct: np.ndarray, base_correct: np.ndarray) -> dict[str, Any]:
    """Accuracy change new - baseline in points on the same samples (see accelstudio.core.measure.stats): Newcombe's
    paired 95% interval, McNemar's exact p, the discordant counts and the verdict; delta_significant is True
    only when the exact test and the interval agree that the change is real."""
    change = paired_accuracy_change(*paired_counts(correct, base_correct))
    return {
        "baseline_accuracy": float(np.asarray(base_correct).mean()),
        "accuracy_delta": change.delta_pts,
        "accuracy_delta_ci": [change.lo_pts, change.hi_pts],
        "accuracy_delta_method": "newcombe-paired",
        "delta_significant": change.significant,
        "mcnemar_p": change.p_value,
        "discordant": {"baseline_only": change.lost, "new_only": change.gained},
    }


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


OUTPUT_KINDS = ("class_scores", "embedding")


def describe_outputs(outputs: np.ndarray, labeled: bool, hint: tuple[str, str] | None = None) -> dict[str, Any]:
    """What the model's outputs are, so fidelity can lead with the right figure: {"output_kind": "class_scores" or
    "embedding", "output_shape": per-sample dims, "output_reason": the rule that decided}.

    Rules, in order: labels given -> class scores; a `hint` (kind, reason) read from the graph by output_hint
    (the output's name or the op that makes it); one value per sample -> regression ("embedding"); more than one
    dim per sample (sequence of vectors, feature map) -> embedding; rows of unit length -> embedding; rows that
    are probabilities -> class scores; otherwise class scores (a [N, K] output is read as K class logits).
    "embedding" stands for any dense output where top-1 agreement means nothing: cosine and error lead."""
    arr = np.asarray(outputs)
    shape = [int(d) for d in arr.shape[1:]]
    if labeled:
        return _kind("class_scores", shape, "labels are given, so the outputs are class scores")
    if hint is not None:
        return _kind(hint[0], shape, hint[1])
    if int(np.prod(shape)) <= 1:
        return _kind("embedding", shape, "one value per sample: a regression output")
    core = [d for d in shape if d != 1]  # [1000, 1, 1] is one score per class, laid out as a map
    if len(core) > 1:
        return _kind("embedding", shape, f"{len(core)} dims per sample ({'x'.join(map(str, shape))}): "
                                         "a sequence or map, not one score per class")
    rows = _rows(arr).astype(np.float64, copy=False)
    rows = rows[np.isfinite(rows).all(axis=1)]
    if rows.shape[0] and np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-3):
        return _kind("embedding", shape, "every output row has unit length: a normalized embedding")
    if rows.shape[0] and _looks_like_probs(rows.T):
        return _kind("class_scores", shape, "output rows are probabilities: class scores")
    return _kind("class_scores", shape, f"{int(np.prod(shape))} values per sample, read as class scores")


_EMBEDDING_NAMES = ("emb", "hidden", "pool", "feat", "vector", "sentence", "encod", "token", "represent")
_SCORE_NAMES = ("logit", "prob", "score", "class", "label", "softmax")
# Ops that end embedding heads: normalization, pooling, L2 normalization, BERT's pooler activation.
_EMBEDDING_OPS = ("LayerNormalization", "ReduceMean", "ReduceSum", "LpNormalization", "Div", "Tanh",
                  "GlobalAveragePool", "SimplifiedLayerNormalization")
_SCORE_OPS = ("Softmax", "LogSoftmax", "Sigmoid")


def module_output_hint(module: Any) -> tuple[str, str] | None:
    """output_hint for a torch module: its last registered layer, when that is a normalization (an embedding
    head) or a softmax (class scores). Registration order usually is the order of forward; None otherwise."""
    last = None
    for _, layer in module.named_modules():
        if not list(layer.children()):
            last = getattr(layer, "original_name", None) or type(layer).__name__
    if last in ("LayerNorm", "RMSNorm"):
        return "embedding", f"the model ends with {last}: an embedding, not class scores"
    if last in ("Softmax", "LogSoftmax"):
        return "class_scores", f"the model ends with {last}: class scores"
    return None


def output_hint(onnx_model: Any) -> tuple[str, str] | None:
    """What an ONNX graph's first output is, read from its name ("sentence_embedding", "logits") or the op that
    makes it (LayerNormalization, pooling or L2 normalization: an embedding; Softmax: class scores); None when
    neither says (then describe_outputs reads the values). The name speaks first: it is the author's word."""
    graph = getattr(onnx_model, "graph", None)
    if graph is None or not graph.output:
        return None
    name = graph.output[0].name
    low = name.lower()
    if any(k in low for k in _SCORE_NAMES):
        return "class_scores", f"the output is named '{name}': class scores"
    if any(k in low for k in _EMBEDDING_NAMES):
        return "embedding", f"the output is named '{name}': an embedding"
    producer = next((n.op_type for n in graph.node if name in n.output), None)
    if producer in _SCORE_OPS:
        return "class_scores", f"the output comes from {producer}: class scores"
    if producer in _EMBEDDING_OPS:
        return "embedding", f"the output comes from {producer}: an embedding, not class scores"
    return None


def _kind(kind: str, shape: list[int], reason: str) -> dict[str, Any]:
    return {"output_kind": kind, "output_shape": shape, "output_reason": reason}


# Names used in the shared module overview.
evaluate_accuracy = accuracy_metrics
fidelity = fidelity_metrics
