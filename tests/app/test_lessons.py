"""Guided lessons in the window: well-formed steps, a step that sets its control and runs, live training
curves, cancel, the transfer experiment, and the mask view."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QWidget

from accelstudio.app.plots.training_plot import TrainingPlot, remaining_seconds
from accelstudio.core.compress.apply import prunable_weights
from accelstudio.core.recipe import PruneSpec, Recipe
from accelstudio.core.studies.lessons import LESSONS, lesson_problems

RUN_MS = 240_000
QUICK = {"warmup": 1, "repeats": 10, "time_budget_s": 0.2}


def _open_lesson(window, qtbot, name: str):
    lessons = window.lessons
    lessons.runtime_override = dict(QUICK)
    with qtbot.waitSignal(lessons.step_shown, timeout=RUN_MS):
        lessons.start(name)
    return lessons


def test_every_lesson_is_well_formed_against_the_window(make_window):
    window = make_window(load=False)
    names = {w.objectName() for w in window.findChildren(QWidget) if w.objectName()}
    for lesson in LESSONS.values():
        assert lesson_problems(lesson, names) == [], lesson.name
        assert len(lesson.steps) >= 2 and any(s.action != "show" for s in lesson.steps)
    formulas = " ".join(s.formula for lesson in LESSONS.values() for s in lesson.steps)
    assert "W × M" in formulas.replace("W' = W × M", "W × M") and "q = round(w / s) + z" in formulas
    assert "S(n) = 1 / ((1 - p) + p / n)" in formulas
    assert len(LESSONS) >= 5


def test_lesson_problems_catch_a_missing_control():
    from dataclasses import replace

    lesson = LESSONS["pruning"]
    broken = replace(lesson, steps=(replace(lesson.steps[0], control="noSuchWidget", text="Too short."),))
    problems = lesson_problems(broken, {"pruneGroup", "weightTabs"})
    assert any("noSuchWidget" in p for p in problems) and any("sentences" in p for p in problems)


def test_a_step_sets_its_control_frames_it_and_runs(window, qtbot):
    lessons = _open_lesson(window, qtbot, "pruning")
    assert lessons.dock.isVisible() and lessons.index == 0
    assert window.state.recipe.prune.amount == pytest.approx(0.6)
    assert window.recipe_controls.amount_spin.value() == 60  # the control shows what the step set
    assert lessons.control_frame.target is window.findChild(QWidget, "pruneGroup")
    assert lessons.control_frame.isVisible()
    assert window.model_view.current_layer() == "fc1"
    window.state.undo_stack.undo()  # a lesson's edit is an ordinary undoable edit
    assert window.state.recipe.prune.amount == 0
    with qtbot.waitSignal(lessons.step_shown, timeout=5000):
        lessons.panel.next_button.click()
    assert lessons.index == 1 and lessons.control_frame.target.objectName() == "runButton"
    with qtbot.waitSignal(lessons.step_finished, timeout=RUN_MS) as finished:
        assert lessons.run_step()
        assert lessons.panel.cancel_button.isVisible()
    assert finished.args == [1, "done"]
    assert [r.spec["recipe"]["prune"]["amount"] for r in lessons.results] == [0.0, 0.6]  # baseline first
    assert lessons.results[1].spec["runtime"]["repeats"] == QUICK["repeats"]
    assert "vs baseline" in lessons.panel.results.text()


def test_recovery_step_fills_the_training_curve_and_cancel_stops_it(window, qtbot):
    lessons = _open_lesson(window, qtbot, "recovery")
    lessons._baselined.add(  # skip the baseline job: this test is about the curve
        f"example:digits-cnn|{window.runs.job_spec().runtime.to_dict()}|None")
    lessons.go(1)
    assert window.state.recipe.recovery.method == "finetune"
    assert lessons.panel.stack.currentWidget() is lessons.panel.training
    with qtbot.waitSignal(lessons.step_finished, timeout=RUN_MS) as finished:
        assert lessons.run_step()
    assert finished.args[1] == "done"
    series = next(iter(lessons.panel.training.series.values()))
    assert len(series.loss) >= 3 and series.x[-1] == pytest.approx(3.0)
    assert series.loss[-1] < series.loss[0] and series.status == "done"
    assert "1437 samples" in lessons.panel.training.info.text()
    # cancel during the next training
    lessons.go(2)
    points = []
    window.runs.bridge.progress.connect(lambda _s, _f, _t, partial: points.append(partial.get("loss")))
    with qtbot.waitSignal(lessons.step_finished, timeout=RUN_MS) as finished:
        assert lessons.run_step()
        qtbot.waitUntil(lambda: any(p is not None for p in points), timeout=RUN_MS)
        lessons.panel.cancel_button.click()
    assert finished.args[1] == "cancelled"
    assert lessons.panel.action_button.isEnabled() and not window.runs.is_running()


def test_training_plot_estimates_time_left_from_epoch_times():
    now = [100.0]
    plot = TrainingPlot(clock=lambda: now[0])
    plot.start_series("finetune", epochs=4, data_text="digits, 1437 samples")
    now[0] = 110.0
    plot.add_point("finetune", 1.0, 0.9, 0.7)
    assert plot.eta_seconds() == pytest.approx(30.0)
    assert "About 30 s left" in plot.info.text() and "1437 samples" in plot.info.text()
    plot.add_point("finetune", 2.0, 0.5)
    plot.finish_series("finetune")
    assert plot.eta_seconds() is None and "done" in plot.info.text()
    assert remaining_seconds(10, 0, 4) is None


def test_transfer_lesson_trains_in_the_background_and_can_be_cancelled(window, qtbot):
    lessons = _open_lesson(window, qtbot, "transfer")
    lessons.transfer_params = {"source_epochs": 2, "target_epochs": 3, "shots": 3}
    lessons.go(1)
    with qtbot.waitSignal(lessons.step_finished, timeout=RUN_MS) as finished:
        assert lessons.run_step()
    assert finished.args[1] == "done"
    assert set(lessons.transfer_result["phases"]) == {"source", "transfer", "scratch"}
    assert len(lessons.panel.training.series) == 3
    assert "Transfer vs scratch" in lessons.panel.status.text() and "Transfer vs scratch" in lessons.panel.results.text()
    lessons.transfer_params = {"source_epochs": 50}
    with qtbot.waitSignal(lessons.step_finished, timeout=RUN_MS) as finished:
        assert lessons.run_step()
        qtbot.waitUntil(lambda: bool(lessons.panel.training.series), timeout=RUN_MS)
        lessons.cancel()
    assert finished.args[1] == "cancelled" and not lessons.study.is_running()


def test_mask_view_split_counts_equal_the_layers_zero_count(window, qtbot):
    from accelstudio.core.compress.apply import apply_recipe

    spec = PruneSpec(amount=0.7)
    window.model_view.select_layer("fc1")
    window.state.edit("prune", recipe=Recipe(prune=spec))
    hist, heat = window.model_view.histogram, window.model_view.mask_heatmap
    qtbot.waitUntil(lambda: hist.split is not None and heat.layer == "fc1", timeout=30_000)
    handle = window.state.model.handle
    pruned = apply_recipe(handle, Recipe(prune=spec)).handle
    zeros = int((dict((w.name, w.array) for w in prunable_weights(pruned)[0])["fc1"] == 0).sum())
    kept, removed = hist.split
    assert removed == zeros == heat.counts[1] and kept + removed == 64 * 512
    assert heat.image.image is not None and 0 < float(np.mean(heat.image.image)) < 1
    assert "removed" in hist.plot.titleLabel.text
    window.state.edit("no prune", recipe=Recipe())
    qtbot.waitUntil(lambda: hist.split is None and heat.layer is None, timeout=30_000)


def test_hardware_steps_plan_one_job_per_thread_count_and_draw_amdahl(window, qtbot):
    from accelstudio.core.job import RunResult
    from accelstudio.core.studies.lessons import step_jobs, thread_counts

    lesson = LESSONS["hardware"]
    base = window.runs.job_spec()
    jobs = step_jobs(lesson.steps[0], base, cores=4)
    assert [j.runtime.threads for j in jobs] == [1, 2, 4] and not any(j.evaluate for j in jobs)
    assert [j.runtime.batch for j in step_jobs(lesson.steps[1], base)] == [1, 8, 32]
    assert step_jobs(lesson.steps[2], base)[0].runtime.streams == 2
    assert thread_counts(6) == [1, 2, 4, 6] and thread_counts(1) == [1]
    rng = np.random.default_rng(1)

    def run(threads, batch, ms, streams=1, concurrent=None):
        metrics = {"p50_ms": ms, "throughput": batch * 1000 / ms, "execution": {"threads": threads}}
        if concurrent:
            metrics["throughput_concurrent"] = concurrent
        return RunResult(status="done", spec={"runtime": {"threads": threads, "batch": batch, "streams": streams}},
                         metrics=metrics, latencies_ms=list(ms + rng.normal(0, ms / 100, 100)))

    lessons = window.lessons
    lessons.lesson, lessons.hardware_runs = lesson, [run(1, 1, 4.0), run(2, 1, 2.5), run(2, 8, 12.0),
                                                     run(1, 1, 4.0, 2, 480.0)]
    lessons.go(0)
    plot = lessons.panel.scaling
    assert lessons.panel.stack.currentWidget() is plot
    assert [p["threads"] for p in plot.points] == [1, 2] and plot.fit is not None
    assert plot.fit.p == pytest.approx(0.75, abs=0.05)
    assert "Amdahl fit" in plot.info.text() and "2 streams" in plot.info.text()


def test_lesson_smoke_renders_the_first_step(make_window, tmp_path):
    from accelstudio.app.control.lesson_smoke import lesson_smoke

    window = make_window(load=False)
    png = tmp_path / "lesson.png"
    assert lesson_smoke(window, "quantization", png) == 0
    assert png.stat().st_size > 10_000
    assert window.state.recipe.quantize.mode == "sim" and window.state.data.data.endswith("digits-test.npz")


def test_help_menu_lists_the_lessons_and_opens_one(make_window, qtbot):
    window = make_window(load=False)
    help_menu = [a.menu() for a in window.menuBar().actions() if a.text() == "&Help"][0]
    lessons_menu = [a.menu() for a in help_menu.actions() if a.menu() is not None][0]
    titles = [a.text() for a in lessons_menu.actions()]
    assert titles == [lesson.title for lesson in LESSONS.values()]
    with qtbot.waitSignal(window.lessons.step_shown, timeout=RUN_MS):
        lessons_menu.actions()[3].trigger()
    assert window.lessons.lesson.name == "hardware" and window.state.model.ref == "example:digits-resnet"
    assert window.lessons.dock.isVisible()


def test_command_line_takes_a_lesson_name(capsys):
    from accelstudio.cli import build_parser

    assert build_parser().parse_args(["--lesson", "transfer"]).lesson == "transfer"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--lesson", "no-such-lesson"])
    assert "no-such-lesson" in capsys.readouterr().err


def test_sensitivity_table_lists_each_layer_with_its_interval():
    from accelstudio.app.control.lesson_controller import sensitivity_html
    from accelstudio.core.job import RunResult

    def run(overrides, lost, gained):
        recipe = Recipe(prune=PruneSpec(amount=0.0, overrides=overrides))
        metrics = {"accuracy": 0.9, "baseline_accuracy": 0.95, "discordant": {"baseline_only": lost,
                                                                           "new_only": gained},
                   "accuracy_delta": (gained - lost) / 360, "n_eval": 360}
        return RunResult(status="done", spec={"recipe": recipe.to_dict()}, metrics=metrics)

    text = sensitivity_html([RunResult(status="done", spec={"recipe": Recipe().to_dict()}),
                             run({"conv1": 0.8}, 30, 2), run({"fc1": 0.8}, 1, 1)])
    assert "conv1 80%" in text and "fc1 80%" in text and "baseline" not in text
    assert "30 lost, 2 gained" in text and "real drop" in text and "within noise" in text


def test_any_recovery_run_shows_its_training_curve_in_the_training_dock(window, qtbot):
    from dataclasses import replace

    from accelstudio.core.recipe import RecoverySpec

    runtime = replace(window.state.runtime, runtime="onnxruntime", **QUICK)
    window.state.edit("finetune", recipe=Recipe(prune=PruneSpec(amount=0.5), recovery=RecoverySpec(
        method="finetune", epochs=2)), runtime=runtime)
    training = window.training
    assert not training.dock.isVisible()
    with qtbot.waitSignal(window.runs.run_finished, timeout=RUN_MS) as finished:
        assert window.runs.start_run()
    assert finished.args[0].status == "done"
    assert training.dock.isVisible()
    series = next(iter(training.plot.series.values()))
    assert series.status == "done" and series.x[-1] == pytest.approx(2.0) and len(series.accuracy) >= 2
    assert "1437 samples" in series.data_text and not training.cancel_button.isEnabled()
