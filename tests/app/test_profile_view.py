"""The profile view: a stored run's time per layer / op type beside its baseline's, and its roofline."""

from __future__ import annotations

from dataclasses import replace

import pytest

from accelstudio.app.plots.profile_plots import MAX_BARS, profile_bars
from accelstudio.app.views.profile_view import ProfileView
from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.measure import ceilings
from accelstudio.core.paths import default_store_path
from accelstudio.core.pipeline import run_job
from accelstudio.core.recipe import QuantSpec, Recipe
from accelstudio.core.runs.store import RunStore

FAST = RuntimeSettings(threads=1, warmup=2, repeats=20, time_budget_s=0.5, profile=True)


@pytest.fixture
def stored_runs(monkeypatch):
    """A profiled baseline and a profiled static-int8 run of digits-cnn, stored and read back."""
    monkeypatch.setattr(ceilings, "GEMM_N", 128)
    monkeypatch.setattr(ceilings, "COPY_BYTES", 4 * 2**20)
    store = RunStore(default_store_path())
    ids = []
    for recipe in (Recipe(), Recipe(quantize=QuantSpec(mode="static-int8", per_channel=True))):
        result = run_job(JobSpec("example:digits-cnn", recipe=recipe, runtime=FAST, max_eval_samples=64,
                                 keep_artifact=False))
        ids.append(store.add_run(result))
    return store, store.get_run(ids[0]), store.get_run(ids[1])


def test_view_fills_from_stored_runs_and_toggles_grouping(qtbot, stored_runs):
    _, base, quant = stored_runs
    view = ProfileView()
    qtbot.addWidget(view)
    view.show_runs(quant, base)
    rows = quant.metrics["profile"]["layers"]
    bars = view.bars.bars
    assert [b.label for b in bars] == [r["name"] for r in sorted(rows, key=lambda r: -r["time_ms"])]
    conv1 = next(b for b in bars if b.label == "conv1")
    assert conv1.baseline_ms is not None and conv1.baseline_ms > 0  # the baseline's conv1 beside it
    assert any(b.conversion for b in bars)  # static int8's QuantizeLinear / DequantizeLinear
    text = view.summary.text()
    assert f"baseline run {base.run_id}" in text and "conversions" in text and "bound" in text
    assert view.roofline.points() and view.roofline.roofline["model"] is not None
    view.grouping.setCurrentIndex(1)
    kinds = {b.label for b in view.bars.bars}
    assert {"QLinearConv", "QuantizeLinear"} <= kinds
    view.show_runs(base, base)  # a baseline is not shown beside itself
    assert all(b.baseline_ms is None for b in view.bars.bars)


def test_window_shows_the_selected_runs_profile_and_offers_the_checkbox(make_window, qtbot, stored_runs):
    store, base, quant = stored_runs
    window = make_window(load=False)
    window.results.reload()
    assert window.results.select_run(quant.run_id)
    qtbot.waitUntil(lambda: window.profile_view.run is not None and window.profile_view.run.run_id == quant.run_id)
    assert window.profile_view.baseline is not None and window.profile_view.baseline.run_id == base.run_id
    assert window.profile_view.bars.bars
    assert "View > Profile" in window.statusBar().currentMessage()
    window.profile_dock.toggleViewAction().trigger()  # View > Profile
    qtbot.waitUntil(window.profile_dock.isVisible)
    panel = window.runtime_panel
    panel.profile_check.setChecked(True)
    assert window.state.runtime.profile is True
    window.state.edit("off", runtime=replace(window.state.runtime, profile=False))
    assert not panel.profile_check.isChecked()


def test_a_run_without_a_profile_says_how_to_get_one(qtbot, stored_runs):
    _, base, _ = stored_runs
    plain = replace(base, metrics={k: v for k, v in base.metrics.items() if k not in ("profile", "roofline")})
    view = ProfileView()
    qtbot.addWidget(view)
    view.show_runs(plain)
    assert "Profile operators" in view.summary.text() and view.bars.bars == []


def test_bars_beyond_thirty_rows_add_up_into_one():
    layers = [{"name": f"block.{i}.conv", "op_type": "Conv", "time_ms": 1.0 + i, "share": 0.0,
               "precision": "fp32", "provider": "cpu", "nodes": 1} for i in range(45)]
    base = {"layers": [dict(r, time_ms=2.0) for r in layers], "op_types": []}
    bars = profile_bars({"layers": layers, "op_types": []}, base)
    assert len(bars) == MAX_BARS + 1 and bars[-1].label == "other (15 rows)"
    assert sum(b.time_ms for b in bars) == pytest.approx(sum(r["time_ms"] for r in layers))
    assert sum(b.baseline_ms for b in bars) == pytest.approx(2.0 * 45)
    assert bars[0].label == "block.44.conv"
