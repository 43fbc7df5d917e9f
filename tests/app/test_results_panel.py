"""The results panel: runs from a store in the table and on the trade-off plot, the Pareto front, clicking a
point, the compare dialog, exports, the verdict line and the live latency histogram."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from accelstudio.app.plots import run_metrics as rm
from accelstudio.app.views.compare_dialog import CompareDialog, layer_diff_rows
from accelstudio.app.views.results_panel import ResultsPanel
from accelstudio.app.views.runs_model import COLUMN_INDEX
from accelstudio.core.job import RunResult, RuntimeSettings
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe
from accelstudio.core.runs.store import RunStore

SHA_A, SHA_B = "a" * 64, "b" * 64


def make_run(recipe: Recipe = Recipe(), p50: float = 1.0, acc: float | None = 0.95, status: str = "done",
             reason: str = "", delta=None, ci=None, size: int = 4_000_000, sha: str = SHA_A,
             layers=None, artifact=None, latencies=None, threads: int = 2, extra: dict | None = None) -> RunResult:
    metrics: dict = {}
    if status == "done":
        metrics = {"p50_ms": p50, "p90_ms": p50 * 1.2, "p99_ms": p50 * 1.5, "throughput": 1000 / p50,
                   "n_eval": 360, "size_bytes": size, "baseline_size_bytes": 4_000_000}
        if acc is not None:
            metrics["accuracy"] = acc
        if delta is not None:
            metrics.update(accuracy_delta=delta, accuracy_delta_ci=list(ci),
                           delta_significant=bool(ci[0] > 0 or ci[1] < 0))
    if status == "done" and extra:
        metrics.update(extra)
    model = "example:digits-cnn" if sha == SHA_A else f"/m/model-{sha[0]}.onnx"
    spec = {"model": model, "recipe": recipe.to_dict(), "runtime": RuntimeSettings(threads=threads).to_dict()}
    return RunResult(status=status, reason=reason, spec=spec, metrics=metrics, layers=layers or [],
                     latencies_ms=latencies if latencies is not None else list(np.linspace(p50 * 0.9, p50 * 1.6, 50)),
                     model_identity={"path": "/m/digits-cnn.onnx", "sha256": sha, "name": f"model-{sha[0]}"},
                     artifact=artifact)


PRUNE50 = Recipe(prune=PruneSpec(amount=0.5, method="l1-structured"))
INT8 = Recipe(quantize=QuantSpec(mode="dynamic-int8"))
BOTH = Recipe(prune=PruneSpec(amount=0.5, method="l1-structured"), quantize=QuantSpec(mode="dynamic-int8"))


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.db")


@pytest.fixture
def filled(store):
    """baseline (1.0 ms, 95%), int8 (0.5 ms, 94.7%), prune (0.8 ms, 90%: dominated), both (0.4 ms, 93%),
    a failed run, and one run of another model. Returns the ids in that order."""
    runs = [make_run(p50=1.0, acc=0.95, layers=[{"name": "fc1", "achieved": 0.0, "params_after": 100}]),
            make_run(INT8, p50=0.5, acc=0.947, delta=-0.3, ci=(-1.1, 0.6), size=1_000_000),
            make_run(PRUNE50, p50=0.8, acc=0.90, delta=-5.0, ci=(-7.0, -3.0), size=2_000_000,
                     layers=[{"name": "fc1", "achieved": 0.5, "params_after": 50}]),
            make_run(BOTH, p50=0.4, acc=0.93, delta=-2.0, ci=(-3.0, -1.0), size=500_000),
            make_run(INT8, status="failed", reason="worker crashed: SIGSEGV during stage 'benchmark'"),
            make_run(p50=3.0, acc=0.99, sha=SHA_B)]
    return [store.add_run(r) for r in runs]


@pytest.fixture
def panel(qtbot, store, filled):
    widget = ResultsPanel()
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.set_store(store)
    widget.set_current_model(sha256=SHA_A)
    return widget


def plotted_ids(panel: ResultsPanel) -> set[int]:
    items = [panel.tradeoff.scatter, panel.tradeoff.baseline_item]
    return {p.data() for item in items for p in item.points()}


def test_pareto_front_keeps_only_undominated_points():
    points = [(1.0, 95.0), (0.5, 94.7), (0.8, 90.0), (0.4, 93.0), (0.4, 93.0), (2.0, 95.0), (0.3, 80.0)]
    assert rm.pareto_front(points) == [6, 3, 1, 0]
    assert rm.pareto_front([]) == []
    assert rm.pareto_front([(1.0, 50.0)]) == [0]
    assert rm.pareto_front([(1.0, 50.0), (1.0, 60.0)]) == [1]  # same latency: the more accurate one


def test_table_and_plot_list_this_models_runs_plot_only_finished_ones(panel, filled):
    assert panel.table.model().rowCount() == 5  # "Show: This model" hides the other model's run
    base, int8, prune, both, failed, other = filled
    panel.scope.setCurrentIndex(1)
    assert panel.table.model().rowCount() == 6
    panel.scope.setCurrentIndex(0)
    assert plotted_ids(panel) == {base, int8, prune, both}
    assert [p.data() for p in panel.tradeoff.baseline_item.points()] == [base]
    assert panel.tradeoff.front_ids == [both, int8, base]
    row = panel.model.row_of(failed)
    assert panel.model.index(row, COLUMN_INDEX["Status"]).data() == "failed"
    assert "SIGSEGV" in panel.model.index(row, COLUMN_INDEX["Reason"]).data()


def test_all_models_scope_shows_other_models_greyed(panel, filled):
    assert filled[5] not in {r.run_id for r in panel.tradeoff.visible_runs()}
    panel.scope.setCurrentIndex(1)
    visible = {r.run_id: panel.tradeoff.is_current(r) for r in panel.tradeoff.visible_runs()}
    assert visible[filled[5]] is False and visible[filled[0]] is True
    assert panel.tradeoff.front_ids == [filled[3], filled[1], filled[0]]  # the front stays this model's


def test_clicking_a_point_selects_the_run_and_requests_restore(qtbot, panel, filled):
    int8 = filled[1]
    spot = next(p for p in panel.tradeoff.scatter.points() if p.data() == int8)
    with qtbot.waitSignal(panel.restore_requested) as restore, qtbot.waitSignal(panel.selection_changed) as sel:
        panel.tradeoff.on_points_clicked(panel.tradeoff.scatter, [spot])
    assert restore.args[0].run_id == int8
    assert restore.args[0].spec["recipe"]["quantize"]["mode"] == "dynamic-int8"
    assert sel.args[0] == [int8]
    tip = panel.tradeoff.tooltip(spot.pos().x(), spot.pos().y(), int8)
    assert "dynamic-int8" in tip and "p50 0.5 ms" in tip and "95% CI" in tip


def test_verdict_line_says_noise_or_real_drop(panel, filled):
    panel.select_run(filled[1])
    text = panel.summary.text()
    assert f"vs baseline run {filled[0]} (onnxruntime on cpu, 2 threads, batch 1): 2.00x faster (95% CI" in text
    assert "-0.30 pts (95% CI -1.10..+0.60: within noise)" in text
    assert not panel.run_baseline_button.isVisible() and not panel.broken_label.isVisible()
    assert panel.sizes.bars == [(f"baseline #{filled[0]}", 4.0, True), (f"#{filled[1]}", 1.0, False)]
    panel.select_run(filled[2])
    assert "real drop" in panel.summary.text()
    assert panel.summary.property("verdict") == "drop"


def test_sorting_by_latency_puts_failed_runs_last(panel, filled):
    panel.scope.setCurrentIndex(1)  # all models' runs
    column = COLUMN_INDEX["p50 ms"]
    panel.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
    ids = [panel.proxy.index(r, 0).data() for r in range(panel.proxy.rowCount())]
    assert ids[:5] == [str(i) for i in (filled[3], filled[1], filled[2], filled[0], filled[5])]
    assert ids[-1] == str(filled[4])
    panel.table.sortByColumn(column, Qt.SortOrder.DescendingOrder)
    assert panel.proxy.index(panel.proxy.rowCount() - 1, 0).data() == str(filled[4])


def test_compare_dialog_shows_per_layer_differences(qtbot, panel, filled):
    a, b = panel.run(filled[0]), panel.run(filled[2])
    diffs = layer_diff_rows(a, b)
    assert [(d.name, d.a["sparsity"], d.b["sparsity"], d.a["params"], d.b["params"], d.changed)
            for d in diffs] == [("fc1", 0.0, 0.5, 100, 50, True)]
    assert not panel.compare_button.isEnabled()
    panel.select_runs([filled[0], filled[2]])
    assert panel.compare_button.isEnabled()
    dialog = panel.compare_selected()
    qtbot.addWidget(dialog)
    assert isinstance(dialog, CompareDialog)
    assert dialog.layers_table.rowCount() == 1
    assert dialog.layers_table.item(0, 2).text() == "50.0%"
    labels = [dialog.metrics_table.item(r, 0).text() for r in range(dialog.metrics_table.rowCount())]
    assert "p50 (ms)" in labels and "Accuracy" in labels and "Fidelity: cosine" in labels and "Notes" in labels


def test_exports_write_png_svg_csv_json(panel, filled, tmp_path):
    png = panel.io.export_plot(tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = panel.io.export_plot(tmp_path / "plot.svg")
    assert svg.stat().st_size > 1000
    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert "<svg" in svg.read_text()
    assert panel.io.export_runs(tmp_path / "all.csv") == 6
    with open(tmp_path / "all.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 6
    panel.select_runs([filled[1], filled[3]])
    assert panel.io.export_runs(tmp_path / "sel.json") == 2
    runs = json.loads((tmp_path / "sel.json").read_text())["runs"]
    assert sorted(r["run_id"] for r in runs) == sorted([filled[1], filled[3]])
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_export_actions_and_saving_the_optimized_model(qtbot, store, tmp_path, monkeypatch):
    model_file = tmp_path / "artifact.onnx"
    model_file.write_bytes(b"optimized-model-bytes")
    with_file = store.add_run(make_run(INT8, artifact=str(model_file)))
    without = store.add_run(make_run(INT8))
    panel = ResultsPanel(store)
    qtbot.addWidget(panel)
    names = [a.objectName() for a in panel.export_actions()]
    assert names == ["exportPlotPng", "exportPlotSvg", "exportRunsCsv", "exportRunsJson", "saveOptimizedModel"]
    panel.select_run(without)
    assert not panel.io.save_model.isEnabled()
    panel.select_run(with_file)
    assert panel.io.save_model.isEnabled()
    target = tmp_path / "out" / "mine.onnx"
    target.parent.mkdir()
    monkeypatch.setattr("accelstudio.app.views.results_io.ask_save_path", lambda *a: str(target))
    panel.io.save_model.trigger()
    assert target.read_bytes() == b"optimized-model-bytes"
    assert model_file.read_bytes() == b"optimized-model-bytes"


def test_latency_histogram_follows_partial_results(qtbot, panel, filled):
    panel.select_run(filled[1])
    assert panel.histogram.latencies.size == 50 and not panel.histogram.live
    panel.job_started()
    assert panel.histogram.latencies.size == 0 and panel.histogram.live
    panel.show_progress("benchmark", 0.3, "10 calls timed", {"latencies_ms": [1.0] * 10, "n": 10})
    panel.show_progress("benchmark", 0.6, "30 calls timed", {"latencies_ms": [2.0] * 20, "n": 30})
    qtbot.waitUntil(lambda: panel.histogram.latencies.size == 30)
    assert panel.histogram.curve is not None
    assert "measuring" in panel.histogram.plotItem.titleLabel.text
    panel.show_progress("benchmark", 0.1, "5 calls timed", {"latencies_ms": [3.0] * 5, "n": 5})
    qtbot.waitUntil(lambda: panel.histogram.latencies.size == 5)  # a new measurement starts over
    finished = make_run(PRUNE50, p50=0.7, acc=0.94)
    panel.add_run(RunResult.from_dict({**finished.to_dict(), "run_id": 99}))
    assert panel.selected_ids() == [99] and not panel.histogram.live
    assert panel.histogram.latencies.size == 50


def test_plots_follow_the_palette(panel):
    dark = QPalette(panel.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor(20, 20, 24))
    dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
    panel.setPalette(dark)
    assert panel.tradeoff.colors.background == QColor(20, 20, 24)
    assert panel.histogram.colors.text == QColor(230, 230, 230)
    assert panel.tradeoff.backgroundBrush().color() == QColor(20, 20, 24)


UNLABELED = {"fidelity": {"top1_agreement": 0.7, "cosine": 0.993, "max_abs_error": 0.04, "kl_divergence": 0.01,
                          "n_compared": 64, "output_kind": "class_scores", "output_reason": "10 values per sample"},
             "data": {"eval": {"source": "synthesized", "n": 64, "synthesized": True, "labeled": False},
                      "input_shapes": {"x": [1, 1, 8, 8]}},
             "notes": ["no labels (synthesized inputs): only fidelity to the uncompressed model is reported"]}
COLLAPSED = {"fidelity": {"top1_agreement": 0.0, "cosine": 0.39, "max_abs_error": 5.0, "n_compared": 64,
                          "output_kind": "embedding", "output_reason": "every output row has unit length"},
             "n_eval": 64}


def test_a_baseline_of_other_threads_is_refused_and_run_baseline_is_offered(qtbot, store):
    other = store.add_run(make_run(p50=2.0, threads=4))
    int8 = store.add_run(make_run(INT8, p50=0.5, threads=2))
    panel = ResultsPanel(store)
    qtbot.addWidget(panel)
    panel.show()
    panel.select_run(int8)
    text = panel.summary.text()
    assert "No like-for-like baseline" in text and "faster" not in text and f"run {other}" not in text
    assert panel.run_baseline_button.isVisible()
    with qtbot.waitSignal(panel.run_baseline_requested) as asked:
        panel.run_baseline_button.click()
    spec = asked.args[0]
    assert spec.recipe.is_identity and spec.model == "example:digits-cnn"
    assert (spec.runtime.runtime, spec.runtime.threads, spec.runtime.batch) == ("onnxruntime", 2, 1)
    panel.set_baseline_hint(other)  # a hint never overrides the like-for-like rule
    assert "No like-for-like baseline" in panel.summary.text()


def test_torch_form_run_meets_the_onnx_form_baseline_of_the_example(qtbot, store):
    base = store.add_run(make_run(p50=1.0))
    pruned = make_run(PRUNE50, p50=0.5, acc=0.94)
    pruned = RunResult.from_dict({**pruned.to_dict(), "model_identity": {
        "path": "/site/examples/digits-cnn/model.safetensors", "sha256": "d" * 64, "name": "digits-cnn"}})
    pruned_id = store.add_run(pruned)
    panel = ResultsPanel(store)
    qtbot.addWidget(panel)
    panel.select_run(pruned_id)
    assert f"vs baseline run {base} (onnxruntime on cpu, 2 threads, batch 1)" in panel.summary.text()


def test_unlabeled_run_shows_fidelity_badge_and_no_accuracy_heading(qtbot, store):
    base = store.add_run(make_run(acc=None, extra=UNLABELED))
    int8 = store.add_run(make_run(INT8, p50=0.5, acc=None, extra=UNLABELED))
    panel = ResultsPanel(store)
    qtbot.addWidget(panel)
    panel.show()
    panel.select_run(int8)
    assert "Fidelity: top-1 agreement 70.00%" in panel.summary.text()
    assert panel.badge.isVisible() and panel.badge.text() == "random inputs: fidelity only"
    details = panel.details.text()
    assert "cosine 0.9930" in details and "max error 0.04" in details and "synthesized" in details
    assert "x=1x1x8x8" in details
    row = panel.model.row_of(int8)
    assert panel.model.index(row, COLUMN_INDEX["Quality"]).data() == "70.0% agree"
    assert "random inputs" in panel.model.index(row, COLUMN_INDEX["Flags"]).data()
    assert panel.tradeoff.plotItem.getAxis("left").labelText.startswith("Agreement with original")
    panel.select_runs([base, int8])
    dialog = panel.compare_selected()
    qtbot.addWidget(dialog)
    rows = {dialog.metrics_table.item(r, 0).text(): r for r in range(dialog.metrics_table.rowCount())}
    assert "Accuracy" not in rows and "Quality" in rows
    assert dialog.metrics_table.item(rows["Quality"], 2).text().startswith("Fidelity: top-1 agreement")
    assert dialog.metrics_table.item(rows["Fidelity: cosine"], 2).text() == "0.9930"
    assert dialog.metrics_table.item(rows["Fidelity: max error"], 2).text() == "0.04"
    assert "no labels" in dialog.metrics_table.item(rows["Notes"], 2).text()


def test_broken_run_is_shown_in_red_with_its_cause(qtbot, store):
    healthy = {**COLLAPSED, "fidelity": {**COLLAPSED["fidelity"], "top1_agreement": 1.0, "cosine": 1.0,
                                          "max_abs_error": 0.0}}
    store.add_run(make_run(acc=None, extra=healthy))
    static = store.add_run(make_run(Recipe(quantize=QuantSpec(mode="static-int8")), p50=0.6, acc=None,
                                    extra=COLLAPSED))
    panel = ResultsPanel(store)
    qtbot.addWidget(panel)
    panel.show()
    panel.select_run(static)
    assert panel.broken_label.isVisible() and panel.summary.property("verdict") == "broken"
    text = panel.broken_label.text()
    assert text.startswith("BROKEN: cosine 0.390") and "static int8" in text and "dynamic int8" in text
    assert "#d62728" in panel.broken_label.styleSheet()
    assert "Fidelity: cosine 0.3900" in panel.summary.text()
    assert panel.tradeoff.broken_ids == [static] and static not in panel.tradeoff.front_ids
    spot_tip = panel.tradeoff.tooltip(0.6, 39.0, static)
    assert "BROKEN" in spot_tip and "fidelity: cosine 0.3900" in spot_tip
    flags = panel.model.index(panel.model.row_of(static), COLUMN_INDEX["Flags"])
    assert flags.data() == "BROKEN" and flags.data(Qt.ItemDataRole.ForegroundRole) == QColor("#d62728")
