"""The recipe search: constraint judged on intervals, within noise is not better, the loop on a real bundled
model through real worker processes, every trial stored with its study, resume from the store, cancel."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from accelstudio.core.data.dataset import Dataset
from accelstudio.core.data.run_data import eval_half
from accelstudio.core.job import RunResult, RuntimeSettings
from accelstudio.core.runs.store import RunStore
from accelstudio.core.studies.search import run_search, sensitivity_ranking
from accelstudio.core.studies.search_config import SearchConfig, SearchError
from accelstudio.core.studies.search_judge import Constraint, TrialOutcome, hypervolume_2d, is_better, judge, \
    pareto_front
from accelstudio.core.studies.search_space import ModelFacts, SearchSpace, count_points, default_points, grid, \
    point_recipe
from accelstudio.worker.search_executor import LocalWorkerExecutor


def _run(delta=None, ci=None, cosine=0.999, ratio=2.0, lo=1.8, hi=2.2) -> RunResult:
    metrics = {"fidelity": {"cosine": cosine}, "interleaved": {"ratio": ratio, "lo": lo, "hi": hi},
               "n_eval": 100, "size_bytes": 10, "baseline_size_bytes": 40}
    if delta is not None:
        metrics.update(accuracy_delta=delta, accuracy_delta_ci=ci)
    return RunResult(status="done", metrics=metrics)


def _judge(result, constraint, objective="latency") -> TrialOutcome:
    return judge(result, 0, {"quant": "dynamic-int8"}, "x", "screen", constraint, objective)


def test_constraint_uses_the_lower_bound_of_the_drop_interval():
    limit = Constraint(max_drop=1.0)
    # observed drop 1.5 pts, interval [-0.5, 3.0]: not shown to exceed 1 pt -> feasible
    unsure = _judge(_run(delta=-1.5, ci=[-3.0, 0.5]), limit)
    assert unsure.drop == pytest.approx(1.5) and unsure.drop_ci == pytest.approx((-0.5, 3.0))
    assert unsure.feasible and unsure.judged_on == "accuracy"
    # interval [2, 4]: shown to drop more than 1 pt -> infeasible, whatever the cosine says
    shown = _judge(_run(delta=-3.0, ci=[-4.0, -2.0], cosine=0.9999), limit)
    assert not shown.feasible and shown.violation == pytest.approx(1.0)


def test_without_labels_the_constraint_is_fidelity():
    no_labels = _judge(_run(cosine=0.95), Constraint(max_drop=1.0))
    assert no_labels.judged_on == "cosine" and not no_labels.feasible  # default limit 0.99
    assert _judge(_run(cosine=0.995), Constraint(max_drop=1.0)).feasible
    assert not _judge(_run(delta=0.0, ci=[-1, 1], cosine=0.97), Constraint(min_cosine=0.98)).feasible
    assert _judge(_run(), Constraint(max_drop=1.0), objective="size").value == pytest.approx(4.0)


def test_within_noise_is_not_better():
    limit = Constraint(max_drop=1.0)
    best = _judge(_run(delta=0, ci=[-1, 1], ratio=2.0, lo=1.8, hi=2.2), limit)
    overlapping = _judge(_run(delta=0, ci=[-1, 1], ratio=2.3, lo=2.1, hi=2.5), limit)
    clear = _judge(_run(delta=0, ci=[-1, 1], ratio=2.6, lo=2.3, hi=2.9), limit)
    assert is_better(best, None)
    assert not is_better(overlapping, best)
    assert is_better(clear, best)
    # the first best must be shown faster than the unchanged model
    assert not is_better(_judge(_run(delta=0, ci=[-1, 1], ratio=1.1, lo=0.9, hi=1.3), limit), None)
    infeasible = _judge(_run(delta=-5, ci=[-7, -3], ratio=9, lo=8, hi=10), limit)
    assert not is_better(infeasible, best)


def test_pareto_front_and_hypervolume():
    limit = Constraint(max_drop=1.0)
    a = _judge(_run(delta=0, ci=[-1, 1], ratio=2.0, lo=2, hi=2), limit)
    b = _judge(_run(delta=-2, ci=[-3, -1], ratio=3.0, lo=3, hi=3), limit)
    c = _judge(_run(delta=-2, ci=[-3, -1], ratio=1.5, lo=1.5, hi=1.5), limit)  # dominated by a and b
    assert pareto_front([a, b, c]) == [a, b]
    # points (2, 0) and (3, 2) against ref (1, 4): 1*4 + 1*2 = 6
    assert hypervolume_2d([(2.0, 0.0), (3.0, 2.0), (1.5, 2.0)], (1.0, 4.0)) == pytest.approx(6.0)


def test_space_points_follow_the_mode_table():
    facts = ModelFacts(layers=(("fc1", "Gemm"), ("conv", "Conv")), ranking=("fc1",))
    space = SearchSpace(weight_type=True, float_kinds=True, keep_float=(0, 1))
    points = list(grid(space, facts))
    assert len(points) == count_points(space, facts)
    assert all("per_channel" not in p for p in points if p["quant"] in ("none", "fp16"))
    assert all("calibration" not in p for p in points if p["quant"] != "static-int8")
    recipe = point_recipe({"quant": "static-int8", "float_kinds": "conv", "keep_float": 1, "prune": "none"}, facts)
    assert set(recipe.quantize.exclude) == {"conv", "fc1"}
    defaults = default_points(space, facts, fp16_native=False)
    assert defaults[0]["quant"] == "dynamic-int8" and defaults[0]["per_channel"] is True
    assert not any(p["quant"] == "fp16" for p in defaults)
    knobs = SearchSpace(graph_opt_levels=("basic", "all"), prune_methods=())
    base = RuntimeSettings(graph_opt_level="all")
    assert all(p["graph_opt_level"] == "all" for p in default_points(knobs, facts, True, base))


def test_eval_halves_are_disjoint_and_cover_the_data():
    x = np.arange(21, dtype=np.float32)[:, None]
    ds = Dataset({"x": x}, np.arange(21) % 3, "mem", False, 21)
    val, test = eval_half(ds, "validation"), eval_half(ds, "test")
    assert val.num_samples == 10 and test.num_samples == 11
    assert not set(val.inputs["x"][:, 0]) & set(test.inputs["x"][:, 0])
    assert eval_half(ds, "all") is ds


def test_sensitivity_ranking_is_read_defensively(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    assert sensitivity_ranking(store, "example:digits-mlp") == ((), None)
    store.add_study("sensitivity", {"model": "example:digits-mlp"}, result={"ranking": {"not": "a list"}})
    assert sensitivity_ranking(store, "example:digits-mlp") == ((), None)
    sid = store.add_study("sensitivity", {"model": "example:digits-mlp"}, result={"ranking": ["fc3", "fc1"]})
    assert sensitivity_ranking(store, "example:digits-mlp") == (("fc3", "fc1"), sid)


def _config(**kw) -> SearchConfig:
    base = dict(model="example:digits-mlp", constraint=Constraint(max_drop=2.0), budget_s=120,
                runtime=RuntimeSettings(threads=1, repeats=60), max_trials=2, confirm_top=1, screen_time_s=0.2,
                confirm_time_s=0.2, screen_samples=60,
                space=SearchSpace(quant_modes=("none", "dynamic-int8", "fp16"), prune_methods=()))
    base.update(kw)
    return SearchConfig(**base)


def test_search_on_a_real_model_stores_trials_and_resumes(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    executor = LocalWorkerExecutor(store)
    seen = []
    state = run_search(_config(), executor, store, on_state=lambda s: seen.append(len(s.trials)))
    screened = [t for t in state.trials if t.phase == "screen"]
    assert len(screened) == 2 and seen[-1] == len(state.trials)
    assert screened[0].point == {"quant": "dynamic-int8", "per_channel": True, "prune": "none"}  # a default first
    assert all(t.status == "done" and t.n_eval == 60 and t.judged_on == "accuracy" for t in screened)
    runs = store.list_runs(study_id=state.study_id)
    assert len(runs) == len(state.trials)
    assert all(store.run_study_id(r.run_id) == state.study_id for r in runs)
    assert {r.spec["eval_split"] for r in runs} <= {"validation", "test"}
    assert all("interleaved" in r.metrics for r in runs)
    record = store.get_study(state.study_id)
    assert record.kind == "search" and record.status == "done"
    assert len(record.result["trials"]) == len(state.trials)
    if state.final is not None:  # re-measured on the test half, apart from the choice
        assert state.final.phase == "test" and state.final.point == state.best.point

    resumed = run_search(_config(max_trials=1), executor, store, resume=state.study_id)
    again = [t for t in resumed.trials if t.phase == "screen"]
    assert resumed.study_id == state.study_id and len(again) == 3
    assert len({tuple(sorted(t.point.items())) for t in again}) == 3  # nothing measured twice
    assert len(store.get_study(state.study_id).result["trials"]) == len(resumed.trials)


def test_cancel_stops_the_running_trial_and_the_search(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    cancel = threading.Event()
    executor = LocalWorkerExecutor(store, on_message=lambda msg: cancel.set())  # cancel as the first job starts
    state = run_search(_config(max_trials=5), executor, store, cancel)
    assert state.status == "stopped" and state.trials == () and state.best is None
    assert store.get_study(state.study_id).status == "stopped"
    assert all(r.status == "cancelled" for r in store.list_runs(study_id=state.study_id))


def test_a_search_needs_a_constraint_and_a_known_objective():
    with pytest.raises(SearchError, match="constraint"):
        _config(constraint=Constraint())
    with pytest.raises(SearchError, match="objective"):
        _config(objective="accuracy")


def test_the_search_loop_imports_no_worker_and_no_qt():
    import subprocess
    import sys

    code = ("import sys, accelstudio.core.studies.search, accelstudio.core.studies.search_config; "
            "bad = [m for m in sys.modules if m.startswith(('accelstudio.worker', 'accelstudio.app', 'PySide6'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_points_the_model_cannot_take_are_skipped_without_a_run(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    config = _config(model="example:digits-vit", max_trials=3, confirm_top=1,
                     space=SearchSpace(quant_modes=("none",), prune_methods=("l1-structured",)))
    state = run_search(config, LocalWorkerExecutor(store), store)
    screened = [t for t in state.trials if t.phase == "screen"]
    assert [t.point for t in screened] == [{"quant": "none", "prune": "none"}]  # both prunes refused
    assert any("structured pruning of an attention model" in n for n in state.notes)
    assert "all 3 points of the space were measured" in state.notes
    assert state.best is None  # the unchanged model is not faster than itself
    assert any("shown" in n for n in state.notes)


@pytest.mark.parametrize("kwargs", [{"min_cosine": 2.0}, {"min_cosine": -0.5}, {"max_drop": -1.0},
                                    {"max_drop": float("nan")}])
def test_constraints_no_result_can_meet_are_refused(kwargs):
    from accelstudio.core.studies.search_judge import Constraint, ConstraintError

    with pytest.raises(ConstraintError, match="must lie between"):
        Constraint(**kwargs)


def test_screening_leaves_the_budget_room_for_confirmation_and_test():
    """Screening stops once one more trial plus the confirmations and the test re-measurement, each as long as
    a screening trial so far, would overrun the budget (not only at screen_fraction of it)."""
    import threading

    from accelstudio.core.studies.search import _Loop

    loop = _Loop(_config(budget_s=100.0, confirm_top=3), None, None, threading.Event(), None, 1, [])
    assert not loop._screen_over(0)  # nothing measured yet: no estimate
    loop.screen_seconds = [4.0]
    assert not loop._screen_over(1)  # 4 s x (1 + 3 + 1) = 20 s still fits
    loop.screen_seconds = [30.0]
    assert loop._screen_over(1)  # 30 s x 5 = 150 s would not
