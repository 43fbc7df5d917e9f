"""The results show a short Why line for a selected run and an Explain… dialog with the causes and the
per-layer breakdown, computed from real profiled runs of digits-cnn."""

from __future__ import annotations

import pytest

from accelstudio.app.views.results_panel import ResultsPanel
from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.pipeline import run_job
from accelstudio.core.recipe import QuantSpec, Recipe
from accelstudio.core.runs.store import RunStore

FAST = RuntimeSettings(threads=1, warmup=2, repeats=30, time_budget_s=0.4, profile=True)


@pytest.fixture
def store(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    for recipe in (Recipe(), Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=True))):
        store.add_run(run_job(JobSpec(model="example:digits-cnn", recipe=recipe, runtime=FAST, evaluate=False,
                                      keep_artifact=False)))
    return store


def test_why_line_and_explain_dialog(qtbot, store):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.set_store(store)
    panel.set_current_model(name="digits-cnn")
    assert panel.select_run(1)
    assert panel.why.isHidden()  # a baseline has nothing to explain
    assert panel.select_run(2)
    assert not panel.why.isHidden()
    assert "dynamic int8 left the convolutions in fp32" in panel.why.label.text()
    dialog = panel.why.open_dialog()
    assert "dynamic-int8-convs-fp32" in dialog.explanation.cause_codes()
    assert "Instead:" in dialog.causes.text()
    assert dialog.table.rowCount() == len(dialog.explanation.rows) > 0
    ops = {dialog.table.item(i, 1).text() for i in range(dialog.table.rowCount())}
    assert "Conv" in ops
    dialog.close()
