"""What do the product's recipes buy on this machine? Speed-ups and accuracy changes of the bundled examples.

For each bundled example (digits-mlp, digits-cnn, digits-resnet) the fp32 baseline and the product's recipes
(dynamic int8 per-tensor / per-channel, static int8 QDQ minmax, fp16, bf16 on torch, structured pruning 30/50/70%
with and without int8, structured pruning with fine-tuning / distillation before int8) are built once in this
process with apply_recipe (cached for the run), then timed at batch 1 with the same thread count:

* each runtime (ONNX Runtime, torch eager) runs in its own child process, so one runtime's threads never slow
  the other's calls;
* inside a child, every variant of an example is timed in interleaved rounds (round r: each variant in turn,
  starting one further along each round, a block of calls through accelstudio.core.measure.benchmark.measure_latency),
  so machine load hits the baseline and the variants alike;
* the children run in alternating segments (ORT, torch, ORT, torch...), so the cross-runtime ratio (a torch
  variant against the fp32 ONNX Runtime baseline) also sees the load of the whole run; it is still a comparison
  of two processes, not of interleaved calls, and is labelled so.

Per variant: p50/p90/p99, speed-up against the fp32 baseline of the same runtime and against fp32 ONNX
Runtime (95% bootstrap intervals over rounds, with a verdict faster / within noise / slower), accuracy change
against the same runtime's fp32 outputs with its paired 95% interval on the test split AND on a validation
split carved from the training data, size in memory and on disk.

Choosing and reporting are kept apart (rules in selection.py): the best recipe is chosen on the validation
split and the even timing rounds, never on the test split, and only among recipes faster than fp32 ONNX
Runtime beyond noise; it is then reported on the test split and the odd timing rounds. Recovery trains on the
training split minus the validation part. Goal: for digits-resnet a recipe with >= 3x over fp32 ONNX Runtime
at an accuracy drop <= 1.0 point, "met" only when both intervals' lower bounds say so; otherwise the verdict
says what is not shown and how many test samples would be needed.

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
import selection  # noqa: E402
from selection import GOAL_DROP_PTS, GOAL_EXAMPLE, GOAL_SPEEDUP  # noqa: E402,F401 - part of this script's interface
from speedups_report import (  # noqa: E402,F401 - _speedups and _reported are used by the tests through here
    ORT, _reported, _speedups, analyse, goal_verdict, print_example, split_indices, validation_dataset,
)

NAME = "speedups"
EXAMPLES = ("digits-mlp", "digits-cnn", "digits-resnet")
TORCH = "torch"
EVAL_BATCH = 64
STRUCTURED = (0.3, 0.5, 0.7)
# Recovered recipes: (structured amount, method) per example; epochs come from --recovery-epochs. digits-resnet
# gets the two amounts that recovered best in trials (fine-tuning beat distillation there; its training costs
# minutes on 2 cores).
RECOVERY = {"digits-mlp": ((0.5, "finetune"), (0.5, "distill")),
            "digits-cnn": ((0.5, "finetune"), (0.5, "distill")),
            "digits-resnet": ((0.5, "finetune"), (0.6, "finetune"))}

# Variants left out of a full run, with the reason (recorded in the JSON).
LEFT_OUT = {"digits-resnet": {"torch:fp16": "torch fp16 convolutions measured 1.4 s per batch-1 call (about 60x "
                                            "fp32) and 85 s per batch of 64 on an AMD EPYC without avx512_fp16, too "
                                            "slow to time and evaluate within the run; not re-measured on CPUs "
                                            "with avx512_fp16"}}


@dataclass(frozen=True)
class Variant:
    """One thing to time: a recipe (JSON form) on a runtime. `key` is unique within its example."""

    key: str
    runtime: str
    recipe: dict = field(default_factory=dict)
    reexport: bool = False  # ONNX Runtime: the torch model exported by to_onnx_handle, not the shipped .onnx

    def label(self) -> str:
        return describe(self.recipe)


def describe(recipe: dict) -> str:
    """The recipe's label, naming the pruning scope that actually ran also for structured pruning (a global
    channel ranking is not "per layer")."""
    from accelstudio.core.recipe import Recipe

    r = Recipe.from_dict(recipe)
    text = r.describe()
    if r.prune.active and r.prune.method == "l1-structured":
        head = f"prune {r.prune.amount:.0%} l1-structured"
        scope = "global ranking" if r.prune.scope == "global" else "per layer"
        text = text.replace(head, f"{head} ({scope})", 1)
    return text


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
    modules, their ONNX exports) for the run, and saves each one for the child processes. Recovery trains on
    the training split minus the validation indices `val_idx`."""

    def __init__(self, folder: Path, val_idx: np.ndarray):
        self.folder = folder
        self.val_idx = val_idx
        self._cache: dict = {}

    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def base(self, example: str, backend: str):
        from accelstudio.core.model.loading import load_example

        return self._cached(("base", example, backend), lambda: load_example(example, backend=backend))

    def pruned(self, example: str, recipe: dict):
        """The torch handle after pruning (and recovery) only."""
        from accelstudio.core.compress.apply import apply_recipe
        from accelstudio.core.recipe import Recipe

        stage = {k: recipe[k] for k in ("prune", "recovery") if k in recipe}
        key = ("pruned", example, json.dumps(stage, sort_keys=True))
        fit = self.fit_data(example) if "recovery" in stage else None
        return self._cached(key, lambda: apply_recipe(self.base(example, "torch"), Recipe.from_dict(stage),
                                                      train_data=fit))

    def fit_data(self, example: str) -> dict:
        """The training split without the validation samples, as recovery takes it."""
        from accelstudio.core.data.training import recovery_data

        def make() -> dict:
            full = recovery_data(self.base(example, "torch"))
            keep = np.setdiff1d(np.arange(len(full["labels"])), self.val_idx)
            return {"inputs": {k: v[keep] for k, v in full["inputs"].items()}, "labels": full["labels"][keep]}

        return self._cached(("fit", example), make)

    def build(self, example: str, variant: Variant):
        """(handle, handle before quantization, warning texts) for `variant`, built as the job pipeline does."""
        from accelstudio.core.compress.apply import apply_recipe
        from accelstudio.core.compress.export import to_onnx_handle
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


def build_all(examples: list[str], variants: dict[str, list[Variant]], folder: Path,
              val_idx: np.ndarray) -> dict[str, list[dict]]:
    """Build and save every variant; per example a list of entries {variant fields, path, sizes, build_s,
    warnings, error}."""
    from accelstudio.core.model.inspect import inspect_model

    builder = Builder(folder, val_idx)
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
    result: dict = {"examples": {}, "machine": {}, "load": common.load_average()}
    for example, entries in manifest["examples"].items():
        result["examples"][example], result["machine"][example] = _child_example(example, entries, manifest)
    result["load_end"] = common.load_average()
    out_path.write_text(json.dumps(result))
    return 0


def _child_example(example: str, entries: list[dict], m: dict) -> dict:
    from accelstudio.core.measure.benchmark import measure_latency
    from accelstudio.core.data.datasets import load_dataset
    from accelstudio.core.measure.evaluate import run_batches
    from accelstudio.core.job import RuntimeSettings
    from accelstudio.core.measure.machine_load import finish_window, sample_cpu

    settings = RuntimeSettings(runtime=m["runtime"], threads=m["threads"], batch=1, warmup=1,
                               repeats=1, time_budget_s=60.0)
    preds, out = {}, {}
    for e in entries:
        handle = _child_handle(example, e)
        preds[e["key"]] = _make(handle, settings)
        out[e["key"]] = {"cold_start_ms": preds[e["key"]].cold_start_ms, "rounds": []}
    base = _child_handle(example, None, m["runtime"])
    dataset = load_dataset(None, base)
    x = {k: np.ascontiguousarray(v[:1]) for k, v in dataset.inputs.items()}
    if m["evaluate"]:
        val = validation_dataset(base, np.asarray(m["val_indices"], dtype=np.int64))
        for key, p in preds.items():
            stem = Path(m["outputs"]) / f"{example}-{key.replace(':', '_')}"
            np.save(f"{stem}.npy", run_batches(p.run, dataset, EVAL_BATCH))
            np.save(f"{stem}.val.npy", run_batches(p.run, val, EVAL_BATCH))
    calls = {key: _calls_per_block(p, x, settings, m["block_ms"], m["max_calls"]) for key, p in preds.items()}
    keys = list(preds)
    before = sample_cpu()
    for r in range(m["rounds"]):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            s = settings.__class__(**{**settings.to_dict(), "repeats": calls[key]})
            out[key]["rounds"].append(list(measure_latency(preds[key], x, s).samples_ms))
    return out, finish_window(before)


def _child_handle(example: str, entry: dict | None, runtime: str | None = None):
    from accelstudio.core.model.loading import load_example

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
        from accelstudio.core.compress.apply import apply_recipe
        from accelstudio.core.recipe import Recipe

        handle = apply_recipe(handle, Recipe.from_dict({"quantize": entry["requantize"]})).handle
    return handle


def _make(handle, settings):
    from accelstudio.core.measure.runtimes import make_predictor

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
                "max_calls": args.max_calls, "evaluate": evaluate, "outputs": str(folder), "examples": examples,
                "val_indices": [int(i) for i in split_indices()[1]]}
    mpath, opath = folder / f"manifest-{runtime}-{segment}.json", folder / f"result-{runtime}-{segment}.json"
    mpath.write_text(json.dumps(manifest))
    env = {"OMP_WAIT_POLICY": args.omp_wait_policy} if args.omp_wait_policy else {}
    start = time.perf_counter()
    common.run_python([str(Path(__file__).resolve()), "--child", str(mpath), "--child-out", str(opath)],
                      env=env, timeout=1800)
    res = json.loads(opath.read_text())
    others = ", ".join(f"{ex} {_other_text(rec)}" for ex, rec in res.get("machine", {}).items())
    print(f"  segment {segment + 1}: {runtime} child {time.perf_counter() - start:.0f} s, {common.load_text()}; "
          f"other processes' CPU share while timing: {others or 'unknown'}", flush=True)
    return res


def _other_text(rec: dict) -> str:
    pct = rec.get("other_cpu_pct")
    return "unknown" if pct is None else f"{pct:.0f}%" + (" (busy)" if rec.get("busy") else "")


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
        args.examples, args.rounds, args.segments, args.block_ms, args.max_calls = ["digits-mlp"], 4, 1, 10.0, 20
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
        fit_idx, val_idx = split_indices()
        built = build_all(examples, variants, folder, val_idx)
        build_s = time.perf_counter() - t0
        watch.sample()
        runtimes = sorted({v.runtime for vs in variants.values() for v in vs})
        timings = {ex: {} for ex in examples}
        machine_load = []  # one record per child and example: the machine's load while its rounds were timed
        for seg in range(args.segments):
            order = runtimes if seg % 2 == 0 else runtimes[::-1]
            for rt in order:
                res = run_child(rt, built, args, folder, evaluate=seg == 0, segment=seg)
                watch.sample()
                machine_load += [{"segment": seg + 1, "runtime": rt, "example": ex, **rec}
                                 for ex, rec in res.get("machine", {}).items()]
                for ex, per_key in res["examples"].items():
                    for key, t in per_key.items():
                        slot = timings[ex].setdefault(key, {"cold_start_ms": t["cold_start_ms"], "rounds": []})
                        slot["rounds"].extend(t["rounds"])
        results = {ex: analyse(ex, built[ex], timings[ex], folder, LEFT_OUT.get(ex)) for ex in examples}
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
           "data": {"test": "resources/examples/<name>/data.npz (the test split of digits_split.npz)",
                    "validation": {"source": "digits_split.npz train split, stratified "
                                              f"{selection.VALIDATION_FRACTION:.0%}, seed {selection.VALIDATION_SEED}",
                                   "n": int(val_idx.size)},
                    "recovery_training": {"source": "digits_split.npz train split minus the validation part",
                                          "n": int(fit_idx.size)},
                    "note": "the bundled fp32 models were trained on the whole training split, validation part "
                            "included: validation accuracy is optimistic and only ranks recipes by their change; "
                            "the test split is used for reporting only"},
           "selection": {"rule": "faster than fp32 ONNX Runtime beyond noise (even-round interval above 1.0) "
                                 f"and validation accuracy change >= -{GOAL_DROP_PTS:g} pts; highest even-round "
                                 "speed-up wins; reported on the test split and the odd rounds",
                         "goal_rule": "met only when the speed-up interval's lower bound >= the target and the "
                                      "test accuracy change interval's lower bound >= -limit"},
           "goal": {"example": GOAL_EXAMPLE, "speedup_at_least": GOAL_SPEEDUP, "accuracy_drop_at_most_pts":
                    GOAL_DROP_PTS, "reference": "fp32 ONNX Runtime, batch 1, same threads", "result": goal},
           "examples": results, "machine": info, "load_average": watch.record(),
           "machine_load_while_timing": {"rule": "busy when other processes used over 10% of the machine's CPU "
                                                 "while a child timed its rounds (accelstudio.core.measure.machine_load)",
                                         "children": machine_load,
                                         "busy_children": sum(1 for r in machine_load if r.get("busy"))},
           "total_s": round(total_s, 1), "build_s": round(build_s, 1)}
    common.write_results(NAME, doc, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
