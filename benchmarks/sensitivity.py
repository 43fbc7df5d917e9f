"""Does the quick per-layer sensitivity study predict what the real pipeline measures, and is it fast?

For each bundled example (digits-resnet, digits-vit):
* the study (`accelstudio sensitivity --example NAME`, run through the worker like the CLI) screens every layer
  pruned alone (l1-unstructured, 25/50/75/90%) on the example's calibration split (training data, fidelity to
  the unmodified model: top-1 disagreement, KL for ties);
* the real pipeline (accelstudio.core.pipeline.run_job in a worker, as `accelstudio run`) then measures each
  layer pruned alone at the same amounts on the test split (accuracy drop, 360 samples);
* predictive check: Spearman rank correlation between the study's per-layer score and the measured mean drop
  (goal >= 0.8); and a uniform recipe (every layer pruned at 50%, and at 75%) against the same recipe with the
  study's top 3 layers excluded: the share of the accuracy gap closed (goal >= 50%), next to excluding the 3
  least sensitive layers (a control). The ranking is chosen on training data; the drops are reported on test.
Plus the time of the study on onnx's light_resnet50 (fixed batch 1, synthesized inputs) and on a ~22M-parameter
BERT-like encoder (tests/factories.py TinyBertEncoder scaled up, exported to ONNX, sequences of 64 tokens)
against the 3-minute goal, with the default 180 s budget.

Writes benchmarks/results/sensitivity.json. Exits non-zero only on an error, never on a missed goal.
Usage: python benchmarks/sensitivity.py [--quick] [--examples digits-resnet digits-vit] [--no-large]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import common  # noqa: E402

NAME = "sensitivity"
EXAMPLES = ("digits-resnet", "digits-vit")
AMOUNTS = (0.25, 0.5, 0.75, 0.9)
UNIFORM_AMOUNTS = (0.5, 0.75)  # fixed before measuring; the gap goal is judged at each
TOP_K = 3
GOAL_SPEARMAN, GOAL_CLOSED, GOAL_SECONDS = 0.8, 0.5, 180.0


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation with tied values given their mean rank; None when either side is constant."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def run_study(params) -> dict:
    from accelstudio.worker.client import execute_study

    return execute_study("sensitivity", params.to_dict(), timeout_s=params.budget_s + 300)


def pipeline_accuracy(example: str, prune) -> dict:
    """One real run (worker, example's test split, ONNX Runtime) of a pruning recipe: accuracy and drop."""
    from accelstudio.core.job import JobSpec, RuntimeSettings
    from accelstudio.core.recipe import Recipe
    from accelstudio.worker.client import execute_job

    spec = JobSpec(model=f"example:{example}", recipe=Recipe(prune=prune),
                   runtime=RuntimeSettings(warmup=1, repeats=3, time_budget_s=0.2), keep_artifact=False)
    result = execute_job(spec)
    if result.status != "done":
        raise RuntimeError(f"{example} {prune}: {result.status}: {result.reason}")
    m = result.metrics
    return {"accuracy": m["accuracy"], "baseline_accuracy": m["baseline_accuracy"],
            "drop_pts": -float(m["accuracy_delta"]), "drop_ci_pts": [-m["accuracy_delta_ci"][1],
                                                                     -m["accuracy_delta_ci"][0]],
            "n_eval": m["n_eval"]}


def check_example(example: str, amounts: tuple[float, ...], budget: float, samples: int,
                  max_layers: int | None, uniform_amounts: tuple[float, ...] = UNIFORM_AMOUNTS) -> dict:
    from accelstudio.core.recipe import PruneSpec
    from accelstudio.core.studies.sensitivity_params import SensitivityParams

    t0 = time.perf_counter()
    study = run_study(SensitivityParams(model=f"example:{example}", amounts=amounts, samples=samples,
                                        budget_s=budget))
    study_s = time.perf_counter() - t0
    rows = {r["layer"]: r for r in study["rows"] if r["screened"]}
    layers = [name for name in study["ranking"]][: max_layers or None]
    print(f"{example}: study {study_s:.1f} s, {len(rows)} layers, {study['samples']['n']} samples from "
          f"{study['samples']['split']}; ranking {', '.join(study['ranking'])}")
    measured = {}
    for name in layers:
        drops = [pipeline_accuracy(example, PruneSpec(amount=0.0, overrides={name: a}))["drop_pts"] for a in amounts]
        measured[name] = float(np.mean(drops))
        print(f"  {name:<20} study score {rows[name]['score']:7.2f}   pipeline mean drop {measured[name]:6.2f} pts "
              f"({', '.join(f'{d:+.1f}' for d in drops)})")
    rho = spearman([rows[n]["score"] for n in layers], [measured[n] for n in layers])
    top, bottom = study["ranking"][:TOP_K], study["ranking"][-TOP_K:]
    uniform = {f"{u:.2f}": uniform_check(example, u, top, bottom) for u in uniform_amounts}
    goals = {"spearman": common.goal(f"{example} Spearman(study, pipeline)", rho, GOAL_SPEARMAN,
                                     higher_is_better=True)}
    for key, check in uniform.items():
        goals[f"gap_closed_{key}"] = common.goal(f"{example} gap of uniform {float(key):.0%} closed by excluding the "
                                                 f"top {TOP_K}", check["gap_closed"], GOAL_CLOSED,
                                                 higher_is_better=True)
    return {"study_seconds": round(study_s, 2), "study": {k: study[k] for k in ("ranking", "samples", "metric",
                                                                              "settings", "notes", "elapsed_s")},
            "study_scores": {n: rows[n]["score"] for n in rows}, "pipeline_mean_drop_pts": measured,
            "spearman": rho, "top": top, "bottom": bottom, "uniform": uniform, "goals": goals}


def uniform_check(example: str, amount: float, top: list[str], bottom: list[str]) -> dict:
    """Every layer pruned at `amount` (layer scope), then the same with the top / bottom layers excluded."""
    from accelstudio.core.recipe import PruneSpec

    uniform = pipeline_accuracy(example, PruneSpec(amount=amount, scope="layer"))
    excl_top = pipeline_accuracy(example, PruneSpec(amount=amount, scope="layer", exclude=tuple(top)))
    excl_bottom = pipeline_accuracy(example, PruneSpec(amount=amount, scope="layer", exclude=tuple(bottom)))
    gap = uniform["drop_pts"]
    closed = (gap - excl_top["drop_pts"]) / gap if gap > 0 else None
    control = (gap - excl_bottom["drop_pts"]) / gap if gap > 0 else None
    print(f"  uniform {amount:.0%}: drop {gap:.2f} pts; top {TOP_K} excluded ({', '.join(top)}): "
          f"{excl_top['drop_pts']:.2f} pts; bottom {TOP_K} excluded: {excl_bottom['drop_pts']:.2f} pts")
    return {"uniform": uniform, "exclude_top": excl_top, "exclude_bottom_control": excl_bottom,
            "gap_closed": closed, "gap_closed_by_control": control}


def bert_22m(folder: Path) -> tuple[Path, int]:
    """The BERT-like encoder of tests/factories.py scaled to ~22M parameters, exported to ONNX."""
    import torch

    from tests.factories import TinyBertEncoder, bert_inputs

    model = TinyBertEncoder(vocab=11000, dim=384, heads=6, depth=10, max_len=128).eval()
    params = sum(p.numel() for p in model.parameters())
    ids, mask = bert_inputs(2, seq=64, vocab=11000)
    path = folder / "bert22m.onnx"
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(model, (torch.from_numpy(ids), torch.from_numpy(mask)), str(path),
                      input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                      dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}},
                      opset_version=17, dynamo=False)
    return path, int(params)


def timed_study(label: str, params) -> dict:
    t0 = time.perf_counter()
    result = run_study(params)
    seconds = time.perf_counter() - t0
    screened = sum(r["screened"] for r in result["rows"])
    print(f"{label}: {seconds:.1f} s wall ({result['elapsed_s']:.1f} s in the study), {screened} of "
          f"{len(result['rows'])} layers screened on {result['samples']['n']} samples, "
          f"{result['seconds_per_variant']:.2f} s per variant; notes: {' '.join(result['notes'])}")
    return {"wall_s": round(seconds, 2), "study_s": result["elapsed_s"], "layers": len(result["rows"]),
            "screened": int(screened), "samples": result["samples"],
            "seconds_per_variant": result["seconds_per_variant"],
            "notes": result["notes"], "latency_profile": result["latency"], "metric": result["metric"],
            "all_screened": screened == len(result["rows"]),
            "goal": common.goal(f"{label} study time", seconds, GOAL_SECONDS, " s")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one example, one amount, 2 layers, one uniform recipe, no large models")
    parser.add_argument("--examples", nargs="+", default=list(EXAMPLES))
    parser.add_argument("--no-large", action="store_true", help="skip light_resnet50 and the 22M encoder")
    parser.add_argument("--results-dir", type=Path)
    args = parser.parse_args(argv)
    info = common.header("Per-layer sensitivity: prediction and speed")
    watch = common.LoadWatch()
    from accelstudio.core.studies.sensitivity_params import SensitivityParams

    examples = args.examples[:1] if args.quick else args.examples
    amounts = (0.9,) if args.quick else AMOUNTS
    doc = {"machine": info, "amounts": list(amounts), "uniform_amounts": list(UNIFORM_AMOUNTS), "top_k": TOP_K,
           "examples": {}}
    for example in examples:
        doc["examples"][example] = check_example(example, amounts, 30.0 if args.quick else 180.0,
                                                 32 if args.quick else 256, 2 if args.quick else None,
                                                 (0.75,) if args.quick else UNIFORM_AMOUNTS)
        watch.sample()
    if not (args.quick or args.no_large):
        import onnx

        r50 = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_resnet50.onnx"
        doc["light_resnet50"] = timed_study("light_resnet50", SensitivityParams(model=str(r50)))
        watch.sample()
        with tempfile.TemporaryDirectory() as tmp:
            path, params = bert_22m(Path(tmp))
            shapes = {"input_ids": [1, 64], "attention_mask": [1, 64]}
            doc["bert_22m"] = {"params": params, "seq": 64,
                               **timed_study(f"BERT-like encoder ({params / 1e6:.1f} M params)",
                                             SensitivityParams(model=str(path), input_shapes=shapes))}
    doc["load_average"] = watch.record()
    print(watch.summary())
    common.write_results(NAME, doc, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
