"""Recipe search: the best speed-up found within the budget at an accuracy limit, and its coverage of an exhaustive grid.

For each bundled example: the search (accelstudio.core.studies.search, TPE under the constraint, defaults first)
runs with a budget and at most 25% of the grid's points as screening trials; then every point of the same small
discrete space is measured with the same screening job, twice in alternating order, its median speed-up kept
(the exhaustive grid; `--grid-repeats`). Figures: the speed-up of the
chosen recipe re-measured on the test half (with its interval), the time to the first candidate meeting the
constraint, the trials used, and the Pareto front's coverage: the hypervolume (speed-up up, accuracy drop down,
one reference point below and above every measured point) of the search's front over the grid's front. Two
readings: the search's own measurements, and the points it visited read from the grid's measurements (the
second leaves out the search's own timing noise). Goal: coverage >= 90% with <= 25% of the trials.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

GOAL_COVERAGE = 0.90
TRIAL_FRACTION = 0.25


def space(name: str):
    """A small discrete space per model: the CNN also prunes channels; the transformer cannot (its attention
    sizes), so it varies static int8's calibration and the weight-only mode instead. About 30 points each."""
    from accelstudio.core.studies.search_space import SearchSpace

    if name == "digits-vit":
        return SearchSpace(quant_modes=("none", "dynamic-int8", "static-int8", "fp16", "weight-int8"),
                           granularity=True, weight_type=True, calibration=True, calib_samples=(32, 128),
                           keep_float=(), prune_methods=())
    return SearchSpace(quant_modes=("none", "dynamic-int8", "static-int8", "fp16"), granularity=True,
                       weight_type=True, keep_float=(), prune_methods=("l1-structured",), prune_amounts=(0.25, 0.5))


def _median_outcome(outcomes: list):
    """One grid point measured several times: the median speed-up (the accuracy is the same every time)."""
    import dataclasses
    import statistics

    done = [o for o in outcomes if o.ok]
    if not done:
        return outcomes[0]
    return dataclasses.replace(done[0], value=statistics.median(o.value for o in done),
                               lo=min(o.lo for o in done), hi=max(o.hi for o in done),
                               extra={"values": [o.value for o in done]})


def bench_model(name: str, budget_s: float, max_drop: float, quick: bool, store_path: Path,
                grid_repeats: int = 2) -> dict:
    from accelstudio.core.job import RuntimeSettings
    from accelstudio.core.runs.store import RunStore
    from accelstudio.core.studies.search import run_search
    from accelstudio.core.studies.search_config import SearchConfig, trial_spec
    from accelstudio.core.studies.search_judge import Constraint, hypervolume_2d, judge, pareto_front
    from accelstudio.core.studies.search_space import ModelFacts, describe_point, grid, point_recipe
    from accelstudio.worker.search_executor import LocalWorkerExecutor

    store = RunStore(store_path)
    executor = LocalWorkerExecutor(store)
    sp = space(name)
    model = f"example:{name}"
    data = executor.describe_model(model, False, threading.Event())
    facts = ModelFacts(layers=tuple((layer.name, layer.op_type) for layer in data.summary.layers))
    points = [p for p in grid(sp, facts) if feasible(data, point_recipe(p, facts))]
    if quick:
        points = points[:4]
    max_trials = max(1, int(TRIAL_FRACTION * len(points)))
    screen_time = 0.3 if quick else 0.6
    config = SearchConfig(model=model, constraint=Constraint(max_drop=max_drop), budget_s=budget_s, space=sp,
                          runtime=RuntimeSettings(threads=1), max_trials=max_trials, screen_time_s=screen_time,
                          confirm_time_s=0.6 if quick else 1.5, confirm_top=1 if quick else 3,
                          screen_samples=60 if quick else 120)
    t0 = time.monotonic()
    state = run_search(config, executor, store)
    search_s = time.monotonic() - t0
    print(f"{name}: search {search_s:.0f} s, {sum(t.phase == 'screen' for t in state.trials)} trials")

    t0 = time.monotonic()
    passes: list[list] = []
    for r in range(grid_repeats):  # passes in alternating order, so that drift falls on both ends
        order = list(enumerate(points)) if r % 2 == 0 else list(enumerate(points))[::-1]
        outs = {}
        for i, point in order:
            spec = trial_spec(config, point, facts, "screen", True)
            result = executor.run([spec], threading.Event(), None)[0]
            outs[i] = judge(result, i, point, describe_point(point, facts), "screen", config.constraint,
                            config.objective)
        passes.append([outs[i] for i in range(len(points))])
    grid_out = [_median_outcome([p[i] for p in passes]) for i in range(len(points))]
    grid_s = time.monotonic() - t0
    by_key = {tuple(sorted(o.point.items())): o for o in grid_out}
    searched = [t for t in state.trials if t.phase == "screen"]
    looked_up = [by_key[k] for k in {tuple(sorted(t.point.items())) for t in searched} if k in by_key]
    every = [o for o in grid_out + searched if o.ok]
    ref = (min(o.value for o in every) * 0.95, max(o.fidelity_axis for o in every) + 1.0) if every else (0, 1)
    hv = lambda outs: hypervolume_2d([(o.value, o.fidelity_axis) for o in pareto_front(outs)], ref)  # noqa: E731
    hv_grid = hv(grid_out)
    coverage_own = hv(searched) / hv_grid if hv_grid > 0 else None
    coverage_lookup = hv(looked_up) / hv_grid if hv_grid > 0 else None
    grid_best = max((o for o in grid_out if o.ok and o.feasible), key=lambda o: o.value, default=None)
    final = state.final
    doc = {"model": name, "budget_s": budget_s, "max_drop_pts": max_drop, "grid_points": len(points),
           "grid_repeats": grid_repeats, "grid_values": {o.label: o.extra.get("values") for o in grid_out},
           "trials_used": len(searched), "trial_fraction": len(searched) / len(points) if points else None,
           "search_s": search_s, "grid_s": grid_s, "first_valid_s": state.first_valid_s,
           "chosen": state.best.label if state.best else None,
           "final_test": final.to_dict() if final else None,
           "grid_best_feasible": grid_best.to_dict() if grid_best else None,
           "hypervolume": {"grid": hv_grid, "search_own": hv(searched), "search_lookup": hv(looked_up),
                           "reference": list(ref)},
           "coverage_own": coverage_own, "coverage_lookup": coverage_lookup,
           "front_grid": [o.label for o in pareto_front(grid_out)],
           "front_search": [o.label for o in pareto_front(searched)], "notes": list(state.notes)}
    speed = f"x{final.value:.2f} [{final.lo:.2f}, {final.hi:.2f}]" if final and final.ok else "none"
    print(f"{name}: chosen {doc['chosen']}; on test {speed}; grid best feasible (screening) "
          f"{'x%.2f %s' % (grid_best.value, grid_best.label) if grid_best else 'none'}")
    doc["goals"] = {
        "coverage": common.goal(f"{name}: front coverage (lookup)", coverage_lookup, GOAL_COVERAGE, "",
                                higher_is_better=True, fmt=".2f"),
        "trials": common.goal(f"{name}: trial fraction", doc["trial_fraction"], TRIAL_FRACTION, "", fmt=".2f")}
    return doc


def feasible(data, recipe) -> bool:
    from accelstudio.core.compress.feasibility import check_model_feasible
    from accelstudio.core.errors import AccelStudioError

    try:
        check_model_feasible(data, recipe)
    except AccelStudioError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits-mlp, 4 grid points, short timings")
    parser.add_argument("--budget", type=float, default=300.0, metavar="S", help="search budget per model (s)")
    parser.add_argument("--max-drop", type=float, default=1.0, metavar="PTS")
    parser.add_argument("--grid-repeats", type=int, default=2, metavar="N",
                        help="times each grid point is measured (its median speed-up is the reference)")
    parser.add_argument("--models", nargs="*", help="bundled examples (default digits-resnet digits-vit)")
    parser.add_argument("--results-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("ACCELSTUDIO_HOME", tempfile.mkdtemp(prefix="accelstudio-search-"))
    info = common.header("Recipe search")
    watch = common.LoadWatch()
    models = args.models or (["digits-mlp"] if args.quick else ["digits-resnet", "digits-vit"])
    budget = min(args.budget, 60.0) if args.quick else args.budget
    store = Path(os.environ["ACCELSTUDIO_HOME"]) / "search-bench.db"
    results = {}
    for name in models:
        results[name] = bench_model(name, budget, args.max_drop, args.quick, store,
                                    1 if args.quick else max(1, args.grid_repeats))
        watch.sample()
    print(watch.summary())
    doc = {"machine": info, "load_average": {**watch.record(), "cores": common.cores()}, "quick": args.quick,
           "models": results, "cpu": common.cpu_line(info)}
    common.write_results("search", doc, args.results_dir)
    return 0 if all(not math.isnan(r["search_s"]) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
