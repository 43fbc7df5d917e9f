"""The results panel offers the missing like-for-like baseline and runs it through the window's run path: a
structured-pruning run (torch form of the example) then meets its baseline (ONNX form) with the same settings."""

from __future__ import annotations

from dataclasses import replace

from accelstudio.core.recipe import PruneSpec, Recipe

RUN_MS = 240_000
SHORT = dict(runtime="onnxruntime", device="cpu", threads=1, batch=1, warmup=2, repeats=20, time_budget_s=1.0)


def test_run_baseline_button_runs_the_like_for_like_baseline(window, qtbot):
    recipe = Recipe(prune=PruneSpec(amount=0.25, method="l1-structured"))
    window.state.edit("test settings", recipe=recipe, runtime=replace(window.state.runtime, **SHORT))
    with qtbot.waitSignal(window.runs.run_finished, timeout=RUN_MS) as finished:
        window.runs.start_run()
    pruned = finished.args[0]
    assert pruned.status == "done", pruned.reason
    assert pruned.model_identity["path"].endswith("model.safetensors")  # the torch form
    panel = window.results
    panel.select_run(pruned.run_id)
    assert "No like-for-like baseline" in panel.summary.text() and panel.run_baseline_button.isVisible()

    with qtbot.waitSignal(window.runs.run_finished, timeout=RUN_MS) as finished:
        panel.run_baseline_button.click()
    base = finished.args[0]
    assert base.status == "done", base.reason
    assert base.spec["recipe"] == Recipe().to_dict() and base.spec["runtime"]["threads"] == 1
    assert base.model_identity["path"].endswith("model.onnx")  # the ONNX form, same example identity
    panel.select_run(pruned.run_id)
    text = panel.summary.text()
    assert f"vs baseline run {base.run_id} (onnxruntime on cpu, 1 thread, batch 1)" in text
    assert not panel.run_baseline_button.isVisible()


def test_status_line_of_a_broken_run_says_broken():
    from accelstudio.app.control.run_controller import outcome_text
    from accelstudio.core.job import RunResult

    run = RunResult("done", spec={"recipe": {"quantize": {"mode": "static-int8"}}}, run_id=7,
                    metrics={"p50_ms": 1.0, "fidelity": {"cosine": 0.4, "top1_agreement": 0.1, "n_compared": 10,
                                                          "output_kind": "embedding"}},
                    model_identity={"name": "enc.onnx"})
    text = outcome_text(run)
    assert text.startswith("Run 7 done (enc.onnx): p50 1.000 ms") and "BROKEN: cosine 0.400" in text
