"""Analysis and console output of benchmarks/speedups.py: per-variant figures, the recipe chosen on validation
data and its held-out figures, and the goal line. The rules themselves live in selection.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import selection
from selection import GOAL_DROP_PTS, GOAL_EXAMPLE, GOAL_SPEEDUP

ORT = "onnxruntime"


def validation_dataset(handle, val_idx: np.ndarray):
    """The validation samples of the training split, shaped for `handle`'s input (labels included)."""
    from accelstudio.core.data.dataset import Dataset
    from accelstudio.core.data.training import recovery_data

    full = recovery_data(handle)
    inputs = {k: np.ascontiguousarray(v[val_idx]) for k, v in full["inputs"].items()}
    return Dataset(inputs, full["labels"][val_idx], "digits_split.npz train_images (validation part)", False,
                   int(val_idx.size))


def split_indices() -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices into the bundled training split (selection.validation_split)."""
    from accelstudio.core.model.examples import resources_dir

    with np.load(resources_dir() / "data" / "digits_split.npz") as npz:
        labels = npz["train_labels"]
    return selection.validation_split(labels)


# ------------------------------------------------------------------------------------------------ analysis

BASELINE_KEYS = ("ort:fp32", "torch:fp32", "ort:fp32-export")  # references, never "best recipes"


def analyse(example: str, entries: list[dict], timings: dict[str, dict], folder: Path,
            left_out: dict | None = None) -> dict:
    """Per-variant figures, the recipe chosen on validation data, and its figures on the test data."""
    from accelstudio.core.measure.benchmark import stats_from_samples
    from accelstudio.core.data.datasets import load_dataset
    from accelstudio.core.model.loading import load_example

    base = load_example(example, backend="onnx")
    labels = load_dataset(None, base).labels
    val_labels = validation_dataset(base, split_indices()[1]).labels
    rows = []
    for e in entries:
        row = {k: e.get(k) for k in ("key", "runtime", "label", "recipe", "size_bytes", "file_bytes", "build_s",
                                     "warnings", "error")}
        row["baseline"] = e["key"] in BASELINE_KEYS
        t = timings.get(e["key"])
        if t and t["rounds"]:
            stats = stats_from_samples(np.concatenate([np.asarray(r) for r in t["rounds"]]))
            row.update(p50_ms=stats.p50_ms, p90_ms=stats.p90_ms, p99_ms=stats.p99_ms, mean_ms=stats.mean_ms,
                       n=stats.n, rounds=len(t["rounds"]), spread_ratio=stats.spread_ratio,
                       cold_start_ms=t["cold_start_ms"])
        rows.append({k: v for k, v in row.items() if v is not None})
    by_key = {r["key"]: r for r in rows}
    for r in rows:
        _speedups(r, by_key, timings)
        _accuracy(r, example, labels, folder, "")
        _accuracy(r, example, val_labels, folder, "val_")
    choice = selection.select_best(rows, GOAL_DROP_PTS)
    best = _reported(by_key[choice["key"]], example) if choice["key"] else None
    return {"best": best, "selection": choice, "left_out": left_out or {},
            "meets_goal": bool(best and best["goal"]["met"]) if example == GOAL_EXAMPLE else None,
            "variants": rows}


def _speedups(row: dict, by_key: dict, timings: dict) -> None:
    """Speed-ups against the same runtime's fp32 and against fp32 ONNX Runtime (all rounds, for the table),
    and against fp32 ONNX Runtime on even rounds (selection) and odd rounds (report)."""
    if "p50_ms" not in row:
        return
    rounds = timings[row["key"]]["rounds"]
    own = "ort:fp32" if row["runtime"] == ORT else "torch:fp32"
    if own in by_key and "p50_ms" in by_key[own]:
        row["speedup_vs_runtime_fp32"] = by_key[own]["p50_ms"] / row["p50_ms"]
        row["speedup_ci95"] = selection.round_bootstrap(timings[own]["rounds"], rounds)
    if "ort:fp32" in by_key and "p50_ms" in by_key["ort:fp32"]:
        ref = timings["ort:fp32"]["rounds"]
        row["speedup_vs_ort_fp32"] = by_key["ort:fp32"]["p50_ms"] / row["p50_ms"]
        row["speedup_vs_ort_fp32_ci95"] = selection.round_bootstrap(ref, rounds)
        row["verdict_vs_ort_fp32"] = selection.speed_verdict(row["speedup_vs_ort_fp32_ci95"])
        row["vs_ort_interleaved"] = row["runtime"] == ORT
        row["select_speedup"] = selection.median_ratio(ref[0::2], rounds[0::2])
        row["select_speedup_ci95"] = selection.round_bootstrap(ref[0::2], rounds[0::2])
        row["report_speedup"] = selection.median_ratio(ref[1::2], rounds[1::2])
        row["report_speedup_ci95"] = selection.round_bootstrap(ref[1::2], rounds[1::2])


def _accuracy(row: dict, example: str, labels, folder: Path, prefix: str) -> None:
    """Accuracy change against the same runtime's fp32 outputs on the test ("") or validation ("val_") split."""
    from accelstudio.core.measure.evaluate import accuracy_metrics

    own = "ort:fp32" if row["runtime"] == ORT else "torch:fp32"
    suffix = ".val.npy" if prefix else ".npy"
    path = folder / f"{example}-{row['key'].replace(':', '_')}{suffix}"
    base_path = folder / f"{example}-{own.replace(':', '_')}{suffix}"
    if not path.exists() or not base_path.exists():
        return
    m = accuracy_metrics(np.load(path), labels, np.load(base_path))
    disc = m.get("discordant", {})
    row.update({f"{prefix}accuracy": m["accuracy"], f"{prefix}baseline_accuracy": m["baseline_accuracy"],
                f"{prefix}accuracy_delta_pts": m["accuracy_delta"], f"{prefix}accuracy_delta_ci95":
                m["accuracy_delta_ci"], f"{prefix}accuracy_drop_pts": -m["accuracy_delta"],
                f"{prefix}delta_significant": m["delta_significant"], f"{prefix}mcnemar_p": m.get("mcnemar_p"),
                f"{prefix}discordant": disc, f"{prefix}n_eval": m["n_eval"],
                f"{prefix}nonfinite_outputs": m["nonfinite_outputs"]})


def _reported(row: dict, example: str) -> dict:
    """The chosen recipe's figures on held-out data (test split, odd timing rounds) and the goal verdict."""
    disc = row.get("discordant") or {}
    n_disc = int(disc.get("baseline_only", 0)) + int(disc.get("new_only", 0))
    goal = selection.meets_goal(row.get("report_speedup"), row.get("report_speedup_ci95"),
                                row.get("accuracy_delta_pts"), row.get("accuracy_delta_ci95"),
                                int(row.get("n_eval", 0)), n_disc, GOAL_SPEEDUP, GOAL_DROP_PTS)
    return {"recipe": row["label"], "key": row["key"], "runtime": row["runtime"],
            "speedup": row.get("report_speedup"), "speedup_ci95": row.get("report_speedup_ci95"),
            "speedup_rounds": "odd rounds (the even ones chose the recipe)",
            "vs_ort_interleaved": row.get("vs_ort_interleaved"),
            "accuracy_delta_pts": row.get("accuracy_delta_pts"), "accuracy_delta_ci95": row.get("accuracy_delta_ci95"),
            "accuracy_drop_pts": row.get("accuracy_drop_pts"), "discordant": disc, "n_test": row.get("n_eval"),
            "mcnemar_p": row.get("mcnemar_p"),
            "validation": {"accuracy_delta_pts": row.get("val_accuracy_delta_pts"),
                           "accuracy_delta_ci95": row.get("val_accuracy_delta_ci95"), "n": row.get("val_n_eval"),
                           "speedup": row.get("select_speedup"), "speedup_ci95": row.get("select_speedup_ci95")},
            "goal": goal if example == GOAL_EXAMPLE else None,
            "summary": _summary(row)}


def _summary(row: dict) -> str:
    """'2.10x [1.90, 2.31] vs fp32 ORT (odd rounds); test accuracy change -0.28 pts [-0.83, +0.00], n=360'."""
    speed, ci = row.get("report_speedup"), row.get("report_speedup_ci95")
    delta, dci = row.get("accuracy_delta_pts"), row.get("accuracy_delta_ci95")
    speed_text = f"{speed:.2f}x {_ci(ci, '.2f')}".strip() if speed is not None else "speed-up not measured"
    acc_text = (f"test accuracy change {delta:+.2f} pts {_ci(dci, '+.2f')}, n={row.get('n_eval')}"
                if delta is not None else "accuracy not measured")
    return f"{speed_text} vs fp32 ORT (odd rounds); {acc_text}"


# ------------------------------------------------------------------------------------------------- output

def _ci(ci, fmt: str) -> str:
    return f"[{ci[0]:{fmt}}, {ci[1]:{fmt}}]" if ci else ""


def print_example(example: str, res: dict) -> None:
    """A table of the variants, then the chosen recipe and its held-out figures."""
    print(f"\n{example}: p50 at batch 1; speed-up vs fp32 ONNX Runtime [95% CI over rounds] and verdict; "
          "accuracy change vs the same runtime's fp32 on the validation and the test split [paired 95% CI]")
    print(f"  {'variant':<32}{'p50 ms':>9}{'x ORT':>7} {'[95% CI]':<15}{'verdict':<13}{'val d':>7}"
          f"{'test d':>8} {'[95% CI]':<16}{'size KB':>8}")
    nan = float("nan")
    for r in res["variants"]:
        if "error" in r:
            print(f"  {r['key']:<32} not built: {r['error'][:110]}")
            continue
        print(f"  {r['key']:<32}{r.get('p50_ms', nan):>9.4f}{r.get('speedup_vs_ort_fp32', nan):>7.2f} "
              f"{_ci(r.get('speedup_vs_ort_fp32_ci95'), '.2f'):<15}{r.get('verdict_vs_ort_fp32', ''):<13}"
              f"{r.get('val_accuracy_delta_pts', nan):>+7.2f}{r.get('accuracy_delta_pts', nan):>+8.2f} "
              f"{_ci(r.get('accuracy_delta_ci95'), '+.1f'):<16}{(r.get('size_bytes') or 0) / 1024:>8.1f}")
    for key, why in res.get("left_out", {}).items():
        print(f"  {key:<32} left out: {why}")
    best = res["best"]
    if best is None:
        print(f"  chosen on validation: none; {res['selection']['reason']}")
        return
    print(f"  chosen on validation: {best['key']} ({best['recipe']}); on held-out data: {best['speedup']:.2f}x "
          f"{_ci(best['speedup_ci95'], '.2f')} vs fp32 ORT, test accuracy change {best['accuracy_delta_pts']:+.2f} "
          f"pts {_ci(best['accuracy_delta_ci95'], '+.2f')} (n={best['n_test']})")


def goal_verdict(res: dict) -> dict:
    """Print the digits-resnet goal line: met only when both intervals support it; else what is not shown."""
    best = res["best"]
    label = f"{GOAL_EXAMPLE}: >= {GOAL_SPEEDUP:g}x over fp32 ONNX Runtime at an accuracy drop <= {GOAL_DROP_PTS:g} pt"
    if best is None:
        g = {"met": False, "text": f"not met: {res['selection']['reason']}"}
    else:
        g = dict(best["goal"])
        g["recipe"] = best["recipe"]
    fast = [r for r in res["variants"] if not r.get("baseline") and (r.get("speedup_vs_ort_fp32_ci95") or [0])[0]
            >= GOAL_SPEEDUP]
    losing = [r for r in fast if (r.get("accuracy_delta_ci95") or [0])[0] < -GOAL_DROP_PTS]
    g["recipes_fast_enough"] = [r["key"] for r in fast]
    g["fast_but_accuracy_not_shown"] = [r["key"] for r in losing]
    print(f"{label}: {g['text']}")
    return g
