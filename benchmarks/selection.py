"""How speedups.py chooses a best recipe and decides whether a goal is met, kept apart so it can be tested.

The rules, in order:

* **Data.** Recipes are *chosen* on a validation split carved from the training data (`validation_split`,
  stratified, fixed seed) and *reported* on the test split, which plays no part in the choice. Recovery
  (fine-tuning, distillation) trains on the training split minus the validation part. The bundled models
  themselves were trained on the whole training split (resources/examples/train_examples.py), so validation
  accuracy is optimistic in absolute terms; it is only used to rank recipes by the change they cause.
* **Timing.** The interleaved timing rounds are split too: even rounds rank the recipes, odd rounds give the
  reported speed-up and its interval, so the reported figure is not the lucky draw that won the ranking.
* **Choice** (`select_best`). A recipe can win only when it is faster than the reference *beyond noise* (the
  lower bound of its selection interval is above 1.0) and its validation accuracy change is no worse than
  -max_drop points; among those the highest selection speed-up wins. The fp32 baselines never win: a run in
  which nothing is faster beyond noise says so instead of naming a "best" recipe.
* **Goal** (`meets_goal`). Met only when the intervals support it on the test data: the lower bound of the
  speed-up interval is at least the target and the lower bound of the accuracy-change interval is at least
  -max_drop points. Otherwise it says which part is not shown, and for the accuracy part how many test
  samples would be needed at the observed change and disagreement rate (`samples_needed`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

GOAL_EXAMPLE, GOAL_SPEEDUP, GOAL_DROP_PTS = "digits-resnet", 3.0, 1.0  # speedups.py's goal, vs fp32 ORT
Z95 = 1.959963984540054
VALIDATION_FRACTION = 0.2
VALIDATION_SEED = 1  # the train/test split itself used seed 0
NOISE_FLOOR = 1.0  # a speed-up whose interval reaches down to this is "within noise" of the reference


def validation_split(labels: np.ndarray, fraction: float = VALIDATION_FRACTION,
                     seed: int = VALIDATION_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, validation indices) into `labels`: per class, round(fraction * count) samples (at least
    one when the class has two or more) go to validation, drawn with a fixed seed; both index arrays sorted."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        k = int(round(fraction * idx.size))
        if idx.size >= 2:
            k = min(max(k, 1), idx.size - 1)
        else:
            k = 0
        val.append(rng.permutation(idx)[:k])
    val_idx = np.sort(np.concatenate(val)) if val else np.array([], dtype=np.int64)
    fit_idx = np.setdiff1d(np.arange(labels.size), val_idx)
    return fit_idx, val_idx


def median_ratio(base_rounds: list, var_rounds: list) -> float | None:
    """p50 of the reference's calls over p50 of the variant's calls (> 1: the variant is faster)."""
    if not base_rounds or not var_rounds:
        return None
    b = np.median(np.concatenate([np.asarray(r, dtype=float) for r in base_rounds]))
    v = np.median(np.concatenate([np.asarray(r, dtype=float) for r in var_rounds]))
    return float(b / v) if v > 0 else None


def round_bootstrap(base_rounds: list, var_rounds: list, n_boot: int = 400, seed: int = 0) -> list[float]:
    """95% interval of p50(reference)/p50(variant), resampling whole rounds (round i of both is one pair:
    they ran side by side). Empty with fewer than two rounds."""
    k = min(len(base_rounds), len(var_rounds))
    if k < 2:
        return []
    rng = np.random.default_rng(seed)
    b = [np.asarray(r, dtype=float) for r in base_rounds[:k]]
    v = [np.asarray(r, dtype=float) for r in var_rounds[:k]]
    ratios = []
    for _ in range(n_boot):
        idx = rng.integers(0, k, k)
        ratios.append(np.median(np.concatenate([b[i] for i in idx])) / np.median(np.concatenate([v[i] for i in idx])))
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    return [float(lo), float(hi)]


def speed_verdict(ci: list[float] | None) -> str:
    """'faster', 'slower' or 'within noise' from a speed-up interval ('unknown' without one)."""
    if not ci:
        return "unknown"
    if ci[0] > NOISE_FLOOR:
        return "faster"
    if ci[1] < NOISE_FLOOR:
        return "slower"
    return "within noise"


def select_best(rows: list[dict[str, Any]], max_drop_pts: float) -> dict[str, Any]:
    """Choose the best recipe from `rows` using selection data only.

    Each row needs "key", "select_speedup" and "select_speedup_ci95" (even timing rounds, against the
    reference) and "val_accuracy_delta_pts" (validation split); rows marked "baseline" never win. Returns
    {"key": winner or None, "reason": why, "eligible": keys that passed both tests}."""
    eligible, noise, inaccurate = [], [], []
    for r in rows:
        if r.get("baseline") or r.get("select_speedup") is None or r.get("val_accuracy_delta_pts") is None:
            continue
        if r["val_accuracy_delta_pts"] < -max_drop_pts:
            inaccurate.append(r["key"])
        elif speed_verdict(r.get("select_speedup_ci95")) != "faster":
            noise.append(r["key"])
        else:
            eligible.append(r)
    if not eligible:
        return {"key": None, "eligible": [], "reason": (
            f"no recipe is faster than the reference beyond noise with a validation accuracy change no worse than "
            f"-{max_drop_pts:g} pts ({len(noise)} within noise or slower, {len(inaccurate)} too inaccurate)")}
    win = max(eligible, key=lambda r: r["select_speedup"])
    return {"key": win["key"], "eligible": [r["key"] for r in eligible], "reason": (
        f"fastest of {len(eligible)} recipes faster beyond noise with a validation change >= -{max_drop_pts:g} pts")}


def samples_needed(delta_pts: float, n: int, discordant: int, max_drop_pts: float,
                        z: float = Z95) -> int | None:
    """Test samples for the lower bound of the accuracy change to reach -max_drop_pts, if the observed change
    and disagreement rate held: n >= z^2 * var / (delta + margin)^2, with var the variance of the per-sample
    difference (-1, 0, +1). None when the observed change is already at or below -max_drop_pts (no number of
    samples would show it); `n` itself when the current samples suffice. A normal-approximation estimate."""
    if n <= 0:
        return None
    delta, margin = delta_pts / 100.0, max_drop_pts / 100.0
    if delta + margin <= 0:
        return None
    var = max(discordant / n - delta * delta, 0.0)
    return max(math.ceil(z * z * var / (delta + margin) ** 2), n)


def meets_goal(speedup: float | None, speedup_ci: list[float] | None, delta_pts: float | None,
               delta_ci: list[float] | None, n_test: int, discordant: int, goal_speedup: float,
               max_drop_pts: float) -> dict[str, Any]:
    """Whether a recipe meets "speed-up >= goal_speedup at an accuracy drop <= max_drop_pts" with the
    intervals supporting both. Returns {"met", "speed_shown", "accuracy_shown", "samples_needed", "text"}."""
    speed_shown = bool(speedup_ci) and speedup_ci[0] >= goal_speedup
    acc_shown = bool(delta_ci) and delta_ci[0] >= -max_drop_pts
    needed = samples_needed(delta_pts, n_test, discordant, max_drop_pts) if delta_pts is not None else None
    parts = []
    if speedup is None or not speedup_ci:
        parts.append("speed-up not measured with an interval")
    elif not speed_shown:
        parts.append(f"speed-up >= {goal_speedup:g}x not shown: {speedup:.2f}x "
                     f"[{speedup_ci[0]:.2f}, {speedup_ci[1]:.2f}]")
    if delta_pts is None or not delta_ci:
        parts.append("accuracy change not measured")
    elif not acc_shown:
        if needed is None:
            parts.append(f"accuracy drop {-delta_pts:.2f} pts [{delta_ci[0]:+.2f}, {delta_ci[1]:+.2f}] exceeds "
                         f"{max_drop_pts:g} pt; more test samples would not change that")
        else:
            more = (f"about {needed:,} would be needed at this change and disagreement rate" if needed > n_test
                    else "the interval is borderline at this size; more samples would settle it")
            parts.append(f"accuracy drop <= {max_drop_pts:g} pt not shown with {n_test} test samples "
                         f"(change {delta_pts:+.2f} pts [{delta_ci[0]:+.2f}, {delta_ci[1]:+.2f}]); {more}")
    met = speed_shown and acc_shown
    if met:
        text = (f"met: {speedup:.2f}x [{speedup_ci[0]:.2f}, {speedup_ci[1]:.2f}] >= {goal_speedup:g}x and "
                f"accuracy change {delta_pts:+.2f} pts [{delta_ci[0]:+.2f}, {delta_ci[1]:+.2f}] on {n_test} "
                "test samples")
    else:
        text = "not met: " + "; ".join(parts)
    return {"met": met, "speed_shown": speed_shown, "accuracy_shown": acc_shown, "samples_needed": needed,
            "text": text}
