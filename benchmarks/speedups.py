"""What do the product's recipes buy on this machine? Speed-ups and accuracy changes of the bundled examples.

For each bundled example (digits-mlp, digits-cnn, digits-resnet) the fp32 baseline and the product's recipes
(dynamic int8 per-tensor / per-channel, static int8 QDQ minmax, fp16, bf16 on torch, structured pruning 30/50/70%
with and without int8, structured pruning with fine-tuning / distillation before int8) are built once in this
process with apply_recipe (cached for the run), then timed at batch 1 with the same thread count:

* each runtime (ONNX Runtime, torch eager) runs in its own child process, so one runtime's threads never slow
  the other's calls;
* inside a child, every variant of an example is timed in interleaved rounds (round r: each variant in turn,
  starting one further along each round, a block of calls through accelstudio.core.benchmark.measure_latency),
  so machine load hits the baseline and the variants alike;
* the children run in alternating segments (ORT, torch, ORT, torch...), so the cross-runtime ratio (a torch
  variant against the fp32 ONNX Runtime baseline) also sees the load of the whole run; it is still a comparison
  of two processes, not of interleaved calls, and is labelled so.

Per variant: p50/p90/p99, speed-up against the fp32 baseline of the same runtime (with a 95% bootstrap interval
over rounds) and against fp32 ONNX Runtime, accuracy change against the same runtime's fp32 outputs with its
paired-bootstrap 95% interval (accuracy_metrics), size in memory and on disk. Goal: for digits-resnet a recipe
with >= 3x over fp32 ONNX Runtime at an accuracy drop <= 1.0 point.

Writes benchmarks/results/speedups.json. Exits non-zero only on an error, never on a missed goal.
Usage: python benchmarks/speedups.py [--quick] [--examples digits-cnn ...] [--threads 2] [--rounds 8]
       [--segments 2] [--block-ms 120] [--recovery-epochs 2] [--no-recovery] [--omp-wait-policy PASSIVE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "speedups"
EXAMPLES = ("digits-mlp", "digits-cnn", "digits-resnet")
GOAL_EXAMPLE, GOAL_SPEEDUP, GOAL_DROP_PTS = "digits-resnet", 3.0, 1.0
ORT, TORCH = "onnxruntime", "torch"
EVAL_BATCH = 64
STRUCTURED = (0.3, 0.5, 0.7)
# Recovered recipes: (structured amount, method) per example; epochs come from --recovery-epochs. digits-resnet
# gets the two amounts that recovered best in trials (fine-tuning beat distillation there; its training costs
# minutes on 2 cores).
RECOVERY = {"digits-mlp": ((0.5, "finetune"), (0.5, "distill")),
            "digits-cnn": ((0.5, "finetune"), (0.5, "distill")),
            "digits-resnet": ((0.5, "finetune"), (0.6, "finetune"))}

# Variants left out of a full run, with the reason (recorded in the JSON).
LEFT_OUT = {"digits-resnet": {"torch:fp16": "torch fp16 convolutions have no fast CPU kernel without avx512_fp16: "
                                            "measured 1.4 s per batch-1 call (about 60x fp32) and 85 s per batch "
                                            "of 64, too slow to time and evaluate within the run"}}


@dataclass(frozen=True)
class Variant:
    """One thing to time: a recipe (JSON form) on a runtime. `key` is unique within its example."""

    key: str
    runtime: str
    recipe: dict = field(default_factory=dict)
    reexport: bool = False  # ONNX Runtime: the torch model exported by to_onnx_handle, not the shipped .onnx

    def label(self) -> str:
        from accelstudio.core.recipe import Recipe

        return Recipe.from_dict(self.recipe).describe()


def _q(mode: str, per_channel: bool = True, **extra) -> dict:
    return {"mode": mode, "per_channel": per_channel, **extra}


def _prune(amount: float) -> dict:
    return {"amount": amount, "method": "l1-structured"}


def variants_for(example: str, quick: bool = False, recovery_epochs: int = 2,
                 recovery: bool = True) -> list[Variant]:
    """The variants timed for `example` (the fp32 baselines first)."""
    if quick:
        return [Variant("ort:fp32", ORT), Variant("ort:dyn-pc", ORT, {"quantize": _q("dynamic-int8")})]
    conv = example != "digits-mlp"
    int8 = _q("static-int8", calibration="minmax") if conv else _q("dynamic-int8")
    torch_int8 = _q("static-int8", calibration="minmax") if conv else _q("dynamic-int8")
    # ort:fp32-export is the graph every pruned ORT variant starts from (torch -> to_onnx_handle): it tells the
    # export's own effect apart from the pruning's.
    out = [Variant("ort:fp32", ORT), Variant("torch:fp32", TORCH), Variant("ort:fp32-export", ORT, reexport=True)]
    for rt, tag in ((ORT, "ort"), (TORCH, "torch")):
        out += [Variant(f"{tag}:dyn-pt", rt, {"quantize": _q("dynamic-int8", per_channel=False)}),
                Variant(f"{tag}:dyn-pc", rt, {"quantize": _q("dynamic-int8")}),
                Variant(f"{tag}:static-pc", rt, {"quantize": _q("static-int8", calibration="minmax")})]
        if f"{tag}:fp16" not in LEFT_OUT.get(example, {}):
            out.append(Variant(f"{tag}:fp16", rt, {"quantize": {"mode": "fp16"}}))
    out.append(Variant("torch:bf16", TORCH, {"quantize": {"mode": "bf16"}}))
    for a in STRUCTURED:
        pct = int(a * 100)
        out += [Variant(f"ort:s{pct}", ORT, {"prune": _prune(a)}),
                Variant(f"ort:s{pct}+int8", ORT, {"prune": _prune(a), "quantize": int8})]
    out += [Variant("torch:s50", TORCH, {"prune": _prune(0.5)}),
            Variant("torch:s50+int8", TORCH, {"prune": _prune(0.5), "quantize": torch_int8})]
    if recovery and recovery_epochs > 0:
        for a, method in RECOVERY[example]:
            rec = {"method": method, "epochs": recovery_epochs}
            tag = f"s{int(a * 100)}+{method}{recovery_epochs}"
            out += [Variant(f"ort:{tag}", ORT, {"prune": _prune(a), "recovery": rec}),
                    Variant(f"ort:{tag}+int8", ORT, {"prune": _prune(a), "recovery": rec, "quantize": int8})]
        a, method = RECOVERY[example][0]
        rec = {"method": method, "epochs": recovery_epochs}
        out.append(Variant(f"torch:s{int(a * 100)}+{method}{recovery_epochs}+int8", TORCH,
                           {"prune": _prune(a), "recovery": rec, "quantize": torch_int8}))
    return out


# ------------------------------------------------------------------------------------------------ building

class Builder:
    """Builds variants with the product's functions, caching the shared steps (pruned and recovered torch
    modules, their ONNX exports) for the run, and saves each one for the child processes."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._cache: dict = {}

    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def base(self, example: str, backend: str):
        from accelstudio.core.loading import load_example

        return self._cached(("base", example, backend), lambda: load_example(example, backend=backend))

    def pruned(self, example: str, recipe: dict):
        """The torch handle after pruning (and recovery) only."""
        from accelstudio.core.compress import apply_recipe
        from accelstudio.core.recipe import Recipe

        stage = {k: recipe[k] for k in ("prune", "recovery") if k in recipe}
        key = ("pruned", example, json.dumps(stage, sort_keys=True))
        return self._cached(key, lambda: apply_recipe(self.base(example, "torch"), Recipe.from_dict(stage)))

    def build(self, example: str, variant: Variant):
        """(handle, handle before quantization, warning texts) for `variant`, built as the job pipeline does."""
        from accelstudio.core.compress import apply_recipe
        from accelstudio.core.export import to_onnx_handle
        from accelstudio.core.recipe import Recipe

        recipe = variant.recipe
        quant = Recipe.from_dict({"quantize": recipe["quantize"]}) if "quantize" in recipe else None
        warnings: list = []
        if variant.reexport:
            handle = self._cached(("onnx", example, "{}"), lambda: to_onnx_handle(self.base(example, "torch")))
        elif "prune" in recipe:
            res = self.pruned(example, recipe)
            handle, warnings = res.handle, list(res.warnings)
            if variant.runtime == ORT:
                key = ("onnx", example, json.dumps({k: recipe[k] for k in ("prune", "recovery") if k in recipe},
                                                   sort_keys=True))
                handle = self._cached(key, lambda: to_onnx_handle(res.handle))
        else:
            handle = self.base(example, "onnx" if variant.runtime == ORT else "torch")
        before_quant = handle
        if quant is not None:
            res = apply_recipe(handle, quant)
            handle, warnings = res.handle, warnings + list(res.warnings)
        return handle, before_quant, [w.message for w in warnings if w.code != "hardware"]

    def save(self, example: str, index: int, handle, before_quant, entry: dict) -> Path:
        """Write the variant for a child process: .onnx bytes or a pickled torch module. Modules that do not
        pickle (torch.fx GraphModules from static int8) are saved before quantization and the child
        quantizes them again with the same recipe (entry["requantize"])."""
        path = self.folder / f"{example}-{index}.{'onnx' if handle.backend == 'onnx' else 'pt'}"
        if handle.backend == "onnx":
            path.write_bytes(handle.onnx_model.SerializeToString())
            return path
        import torch

        try:
            torch.save(handle.module, path)
        except Exception:  # see the docstring
            torch.save(before_quant.module, path)
            entry["requantize"] = entry["recipe"]["quantize"]
        return path


def build_all(examples: list[str], variants: dict[str, list[Variant]], folder: Path) -> dict[str, list[dict]]:
    """Build and save every variant; per example a list of entries {variant fields, path, sizes, build_s,
    warnings, error}."""
    from accelstudio.core.inspect import inspect_model

    builder = Builder(folder)
    built: dict[str, list[dict]] = {}
    for example in examples:
        entries = []
        for i, v in enumerate(variants[example]):
            entry = {"key": v.key, "runtime": v.runtime, "recipe": v.recipe,
                     "label": v.label() + (" (re-exported from torch)" if v.reexport else "")}
            start = time.perf_counter()
            try:
                handle, before_quant, warnings = builder.build(example, v)
                path = builder.save(example, i, handle, before_quant, entry)
                entry.update(path=str(path), file_bytes=path.stat().st_size, warnings=warnings,
                             size_bytes=_size_bytes(inspect_model, handle))
            except Exception as exc:  # a recipe this model or runtime cannot take is a result, not a crash
                entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["build_s"] = round(time.perf_counter() - start, 2)
            print(f"  built {example} {v.key:<28} {entry['build_s']:6.1f} s"
                  + (f"  FAILED: {entry['error'][:120]}" if "error" in entry else ""), flush=True)
            entries.append(entry)
        built[example] = entries
    return built


def _size_bytes(inspect_model, handle) -> int | None:
    try:
        return int(inspect_model(handle).total_bytes)
    except Exception:  # inspection of a quantized graph is best effort; the file size is still reported
        return None


# ------------------------------------------------------------------------------------------- child process

def child_main(manifest_path: Path, out_path: Path) -> int:
    """Time (and, when asked, evaluate) the variants of one runtime listed in the manifest."""
    manifest = json.loads(manifest_path.read_text())
    result: dict = {"examples": {}, "load": common.load_average()}
    for example, entries in manifest["examples"].items():
        result["examples"][example] = _child_example(example, entries, manifest)
    result["load_end"] = common.load_average()
    out_path.write_text(json.dumps(result))
    return 0


def _child_example(example: str, entries: list[dict], m: dict) -> dict:
    from accelstudio.core.benchmark import measure_latency
    from accelstudio.core.datasets import load_dataset
    from accelstudio.core.evaluate import run_batches
    from accelstudio.core.job import RuntimeSettings

    settings = RuntimeSettings(runtime=m["runtime"], threads=m["threads"], batch=1, warmup=1,
                               repeats=1, time_budget_s=60.0)
    preds, out = {}, {}
    for e in entries:
        handle = _child_handle(example, e)
        preds[e["key"]] = _make(handle, settings)
        out[e["key"]] = {"cold_start_ms": preds[e["key"]].cold_start_ms, "rounds": []}
    dataset = load_dataset(None, _child_handle(example, None, m["runtime"]))
    x = {k: np.ascontiguousarray(v[:1]) for k, v in dataset.inputs.items()}
    if m["evaluate"]:
        for key, p in preds.items():
            np.save(Path(m["outputs"]) / f"{example}-{key.replace(':', '_')}.npy",
                    run_batches(p.run, dataset, EVAL_BATCH))
    calls = {key: _calls_per_block(p, x, settings, m["block_ms"], m["max_calls"]) for key, p in preds.items()}
    keys = list(preds)
    for r in range(m["rounds"]):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            s = settings.__class__(**{**settings.to_dict(), "repeats": calls[key]})
            out[key]["rounds"].append(list(measure_latency(preds[key], x, s).samples_ms))
    return out


def _child_handle(example: str, entry: dict | None, runtime: str | None = None):
    from accelstudio.core.loading import load_example

    runtime = runtime or entry["runtime"]
    base = load_example(example, backend="onnx" if runtime == ORT else "torch")
    if entry is None:
        return base
    if runtime == ORT:
        import onnx

        return base.with_model(onnx_model=onnx.load(entry["path"]))
    import torch

    handle = base.with_model(module=torch.load(entry["path"], weights_only=False))  # written by this script
    if entry.get("requantize"):
        from accelstudio.core.compress import apply_recipe
        from accelstudio.core.recipe import Recipe

        handle = apply_recipe(handle, Recipe.from_dict({"quantize": entry["requantize"]})).handle
    return handle


def _make(handle, settings):
    from accelstudio.core.runtimes import make_predictor

    return make_predictor(handle, settings)


def _calls_per_block(predictor, x, settings, block_ms: float, max_calls: int) -> int:
    """Calls per timed block so that a block lasts about block_ms (after a short warm-up)."""
    call = predictor.bind(x)
    with predictor.timing_context():
        for _ in range(3):
            call()
        start = time.perf_counter()
        n = 0
        while n < 3 or (time.perf_counter() - start < 0.05 and n < max_calls):
            call()
            n += 1
        per_call_ms = (time.perf_counter() - start) * 1000.0 / n
    return int(max(2, min(max_calls, round(block_ms / max(per_call_ms, 1e-6)))))


def run_child(runtime: str, built: dict[str, list[dict]], args, folder: Path, evaluate: bool, segment: int) -> dict:
    """Run one child process for `runtime` over every built variant of that runtime."""
    examples = {ex: [e for e in entries if e["runtime"] == runtime and "error" not in e]
                for ex, entries in built.items()}
    examples = {ex: es for ex, es in examples.items() if es}
    if not examples:
        return {"examples": {}}
    manifest = {"runtime": runtime, "threads": args.threads, "rounds": args.rounds, "block_ms": args.block_ms,
                "max_calls": args.max_calls, "evaluate": evaluate, "outputs": str(folder), "examples": examples}
    mpath, opath = folder / f"manifest-{runtime}-{segment}.json", folder / f"result-{runtime}-{segment}.json"
    mpath.write_text(json.dumps(manifest))
    env = {"OMP_WAIT_POLICY": args.omp_wait_policy} if args.omp_wait_policy else {}
    start = time.perf_counter()
    common.run_python([str(Path(__file__).resolve()), "--child", str(mpath), "--child-out", str(opath)],
                      env=env, timeout=1800)
    print(f"  segment {segment + 1}: {runtime} child {time.perf_counter() - start:.0f} s, {common.load_text()}",
          flush=True)
    return json.loads(opath.read_text())


# ------------------------------------------------------------------------------------------------ analysis

def analyse(example: str, entries: list[dict], timings: dict[str, dict], folder: Path) -> dict:
    """Per-variant figures, the best recipe within the accuracy limit, and the goal verdict."""
    from accelstudio.core.benchmark import stats_from_samples
    from accelstudio.core.datasets import load_dataset
    from accelstudio.core.loading import load_example

    labels = load_dataset(None, load_example(example, backend="onnx")).labels
    rows = []
    for e in entries:
        row = {k: e.get(k) for k in ("key", "runtime", "label", "recipe", "size_bytes", "file_bytes", "build_s",
                                     "warnings", "error")}
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
        _accuracy(r, example, labels, folder)
    best = _best(rows)
    return {"best": best, "left_out": LEFT_OUT.get(example, {}), "meets_goal": bool(best and best["speedup"] >= GOAL_SPEEDUP)
            if example == GOAL_EXAMPLE else None, "variants": rows}


def _speedups(row: dict, by_key: dict, timings: dict) -> None:
    if "p50_ms" not in row:
        return
    own = "ort:fp32" if row["runtime"] == ORT else "torch:fp32"
    if own in by_key and "p50_ms" in by_key[own]:
        row["speedup_vs_runtime_fp32"] = by_key[own]["p50_ms"] / row["p50_ms"]
        row["speedup_ci95"] = _round_bootstrap(timings[own]["rounds"], timings[row["key"]]["rounds"])
    if "ort:fp32" in by_key and "p50_ms" in by_key["ort:fp32"]:
        row["speedup_vs_ort_fp32"] = by_key["ort:fp32"]["p50_ms"] / row["p50_ms"]
        row["vs_ort_interleaved"] = row["runtime"] == ORT


def _round_bootstrap(base_rounds: list, var_rounds: list, n_boot: int = 400, seed: int = 0) -> list[float]:
    """95% interval of p50(base)/p50(variant) resampling whole rounds (rounds are the paired unit)."""
    k = min(len(base_rounds), len(var_rounds))
    if k < 2:
        return []
    rng = np.random.default_rng(seed)
    b = [np.asarray(r) for r in base_rounds[:k]]
    v = [np.asarray(r) for r in var_rounds[:k]]
    ratios = []
    for _ in range(n_boot):
        idx = rng.integers(0, k, k)
        ratios.append(np.median(np.concatenate([b[i] for i in idx])) / np.median(np.concatenate([v[i] for i in idx])))
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    return [float(lo), float(hi)]


def _accuracy(row: dict, example: str, labels, folder: Path) -> None:
    from accelstudio.core.evaluate import accuracy_metrics

    own = "ort:fp32" if row["runtime"] == ORT else "torch:fp32"
    path = folder / f"{example}-{row['key'].replace(':', '_')}.npy"
    base_path = folder / f"{example}-{own.replace(':', '_')}.npy"
    if not path.exists() or not base_path.exists():
        return
    m = accuracy_metrics(np.load(path), labels, np.load(base_path))
    row.update(accuracy=m["accuracy"], baseline_accuracy=m["baseline_accuracy"],
               accuracy_delta_pts=m["accuracy_delta"], accuracy_delta_ci95=m["accuracy_delta_ci"],
               accuracy_drop_pts=-m["accuracy_delta"], delta_significant=m["delta_significant"],
               n_eval=m["n_eval"], nonfinite_outputs=m["nonfinite_outputs"])


def _best(rows: list[dict]) -> dict | None:
    """The fastest variant (against fp32 ONNX Runtime) whose accuracy drop is within the limit; the fp32
    baselines take part, so a run where no recipe beats them says so (best = baseline, 1.0x)."""
    ok = [r for r in rows if "speedup_vs_ort_fp32" in r and r.get("accuracy_drop_pts") is not None
          and r["accuracy_drop_pts"] <= GOAL_DROP_PTS]
    if not ok:
        return None
    r = max(ok, key=lambda r: r["speedup_vs_ort_fp32"])
    return {"recipe": r["label"], "key": r["key"], "runtime": r["runtime"], "speedup": r["speedup_vs_ort_fp32"],
            "accuracy_drop_pts": r["accuracy_drop_pts"], "accuracy_delta_ci95": r.get("accuracy_delta_ci95")}


# ------------------------------------------------------------------------------------------------- output

def print_example(example: str, res: dict) -> None:
    """A table of the variants, then the best recipe (and for the goal example the verdict)."""
    print(f"\n{example}: p50 at batch 1; speed-up vs fp32 of the same runtime [95% CI over rounds] and vs fp32 "
          "ONNX Runtime; accuracy change vs the same runtime's fp32 [paired bootstrap 95% CI]")
    print(f"  {'variant':<34}{'p50 ms':>9}{'x own':>7}{'  [95% CI]':<15}{'x ORT':>6}{'acc %':>7}"
          f"{'d pts':>7}{'  [95% CI]':<17}{'size KB':>9}")
    for r in res["variants"]:
        if "error" in r:
            print(f"  {r['key']:<34} not built: {r['error'][:110]}")
            continue
        ci = r.get("speedup_ci95") or []
        ci_text = f"  [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
        dci = r.get("accuracy_delta_ci95") or []
        dci_text = f"  [{dci[0]:+.1f}, {dci[1]:+.1f}]" if dci else ""
        print(f"  {r['key']:<34}{r.get('p50_ms', float('nan')):>9.4f}{r.get('speedup_vs_runtime_fp32', float('nan')):>7.2f}"
              f"{ci_text:<15}{r.get('speedup_vs_ort_fp32', float('nan')):>6.2f}"
              f"{100 * r.get('accuracy', float('nan')):>7.2f}{r.get('accuracy_delta_pts', float('nan')):>+7.2f}"
              f"{dci_text:<17}{(r.get('size_bytes') or 0) / 1024:>9.1f}")
    for key, why in res.get("left_out", {}).items():
        print(f"  {key:<34} left out: {why}")
    best = res["best"]
    if best:
        print(f"  best within {GOAL_DROP_PTS:g} pt: {best['key']} ({best['recipe']}): {best['speedup']:.2f}x vs fp32 "
              f"ORT, accuracy change {0.0 - best['accuracy_drop_pts']:+.2f} pts")
    else:
        print(f"  no variant stays within a {GOAL_DROP_PTS:g} pt accuracy drop")


def goal_verdict(res: dict) -> dict:
    """Print the digits-resnet goal line and, when missed, by how much and why."""
    best = res["best"]
    g = common.goal(f"{GOAL_EXAMPLE}: best speed-up at <= {GOAL_DROP_PTS:g} pt accuracy drop",
                    best["speedup"] if best else None, GOAL_SPEEDUP, "x", higher_is_better=True, fmt=".2f")
    if g["met"]:
        return g
    timed = [r for r in res["variants"] if "speedup_vs_ort_fp32" in r and "accuracy_drop_pts" in r]
    fast = [r for r in timed if r["speedup_vs_ort_fp32"] >= GOAL_SPEEDUP]
    why = []
    if best:
        why.append(f"the best accurate recipe ({best['recipe']}) reaches {best['speedup']:.2f}x, "
                   f"{GOAL_SPEEDUP - best['speedup']:.2f}x short")
    if fast:
        f = min(fast, key=lambda r: r["accuracy_drop_pts"])
        why.append(f"the recipes that reach {GOAL_SPEEDUP:g}x all lose too much accuracy; the least: {f['label']} "
                   f"({f['speedup_vs_ort_fp32']:.2f}x, drop {f['accuracy_drop_pts']:.1f} pts)")
    else:
        why.append(f"no recipe reaches {GOAL_SPEEDUP:g}x at any accuracy")
    g["shortfall"] = (GOAL_SPEEDUP - best["speedup"]) if best else None
    g["why"] = why
    for line in why:
        print(f"  why: {line}")
    return g


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits-mlp only, 2 variants, few calls")
    parser.add_argument("--examples", nargs="+", choices=EXAMPLES, help="examples to measure (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every runtime (default 2)")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds per segment (default 6)")
    parser.add_argument("--segments", type=int, default=2, help="alternating ORT/torch child runs (default 2)")
    parser.add_argument("--block-ms", type=float, default=100.0, help="time per variant per round (default 100)")
    parser.add_argument("--max-calls", type=int, default=200, help="most calls per block (default 200)")
    parser.add_argument("--recovery-epochs", type=int, default=4, help="epochs of fine-tuning/distillation")
    parser.add_argument("--no-recovery", action="store_true", help="leave out the recovered recipes")
    parser.add_argument("--omp-wait-policy", choices=("PASSIVE", "ACTIVE"), default=None,
                        help="OMP_WAIT_POLICY for the child processes (default: inherited)")
    parser.add_argument("--results-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, args.child_out)
    if args.quick:
        args.examples, args.rounds, args.segments, args.block_ms, args.max_calls = ["digits-mlp"], 2, 1, 10.0, 20
    return run(args)


def run(args) -> int:
    """Build, time in child processes, analyse, print, write JSON."""
    started = time.perf_counter()
    info = common.header("speed-ups of the product's recipes (batch 1)")
    watch = common.LoadWatch()
    examples = args.examples or list(EXAMPLES)
    variants = {ex: variants_for(ex, args.quick, args.recovery_epochs, not args.no_recovery) for ex in examples}
    folder = Path(tempfile.mkdtemp(prefix="accelstudio-speedups-"))
    try:
        print(f"building {sum(len(v) for v in variants.values())} variants ...", flush=True)
        t0 = time.perf_counter()
        built = build_all(examples, variants, folder)
        build_s = time.perf_counter() - t0
        watch.sample()
        runtimes = sorted({v.runtime for vs in variants.values() for v in vs})
        timings = {ex: {} for ex in examples}
        for seg in range(args.segments):
            order = runtimes if seg % 2 == 0 else runtimes[::-1]
            for rt in order:
                res = run_child(rt, built, args, folder, evaluate=seg == 0, segment=seg)
                watch.sample()
                for ex, per_key in res["examples"].items():
                    for key, t in per_key.items():
                        slot = timings[ex].setdefault(key, {"cold_start_ms": t["cold_start_ms"], "rounds": []})
                        slot["rounds"].extend(t["rounds"])
        results = {ex: analyse(ex, built[ex], timings[ex], folder) for ex in examples}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for ex in examples:
        print_example(ex, results[ex])
    goal = goal_verdict(results[GOAL_EXAMPLE]) if GOAL_EXAMPLE in results else None
    print(watch.summary())
    total_s = time.perf_counter() - started
    print(f"total {total_s:.0f} s (building {build_s:.0f} s)")
    doc = {"settings": {"threads": args.threads, "batch": 1, "rounds_per_segment": args.rounds,
                        "segments": args.segments, "block_ms": args.block_ms, "max_calls": args.max_calls,
                        "recovery_epochs": 0 if args.no_recovery else args.recovery_epochs,
                        "omp_wait_policy": args.omp_wait_policy or os.environ.get("OMP_WAIT_POLICY"),
                        "quick": bool(args.quick),
                        "method": "one child process per runtime, alternating segments; interleaved rounds of "
                                  "measure_latency blocks inside each child; torch-vs-ORT ratios compare "
                                  "processes, not interleaved calls"},
           "goal": {"example": GOAL_EXAMPLE, "speedup_at_least": GOAL_SPEEDUP, "accuracy_drop_at_most_pts":
                    GOAL_DROP_PTS, "reference": "fp32 ONNX Runtime, batch 1, same threads", "result": goal},
           "examples": results, "machine": info, "load_average": watch.record(),
           "total_s": round(total_s, 1), "build_s": round(build_s, 1)}
    common.write_results(NAME, doc, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
