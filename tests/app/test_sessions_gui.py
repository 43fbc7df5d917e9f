"""File > Save Session / Open Session / Re-measure Imported Runs / Export Run as Script in the window."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

from accelstudio.core.recipe import PruneSpec, Recipe
from accelstudio.core.runs.session import is_imported, read_session_document
from accelstudio.core.runs.store import RunStore

RUN_MS = 240_000


def _quick_run(window, qtbot, recipe):
    runtime = replace(window.state.runtime, runtime="onnxruntime", warmup=1, repeats=10, time_budget_s=0.2)
    window.state.edit("test", recipe=recipe, runtime=runtime)
    with qtbot.waitSignal(window.runs.run_finished, timeout=RUN_MS) as finished:
        assert window.runs.start_run()
    assert finished.args[0].status == "done", finished.args[0].reason
    return finished.args[0]


def test_session_save_open_round_trip_and_remeasure(make_window, qtbot, tmp_path, monkeypatch):
    first = make_window()
    run = _quick_run(first, qtbot, Recipe(prune=PruneSpec(amount=0.4)))
    first.results.table.clearSelection()
    path = tmp_path / "lesson.accelsession"
    assert "Save &Session…" in [a.text() for a in first.menuBar().actions()[0].menu().actions()]
    with qtbot.waitSignal(first.sessions.saved, timeout=30_000):
        assert first.sessions.save_session(str(path))
    doc = read_session_document(path)
    assert doc["model"]["ref"] == "example:digits-cnn" and doc["model"]["embedded"] is None  # by reference
    assert [r["run_id"] for r in doc["runs"]] == [run.run_id]
    first.close()

    # another machine: a fresh store
    monkeypatch.setenv("ACCELSTUDIO_STORE", str(tmp_path / "other.sqlite"))
    second = make_window(load=False)
    sessions = second.sessions
    assert not sessions.remeasure_action.isEnabled()
    with qtbot.waitSignal(second.model_loaded, timeout=RUN_MS):
        with qtbot.waitSignal(sessions.opened, timeout=30_000):
            assert sessions.open_session(str(path))
    shown = second.results.runs()
    assert len(shown) == 1 and is_imported(shown[0]) and shown[0].metrics["p50_ms"] == run.metrics["p50_ms"]
    assert "imported from" in " ".join(w["message"] for w in shown[0].warnings)
    qtbot.waitUntil(lambda: second.state.recipe.prune.amount == 0.4, timeout=10_000)
    assert sessions.remeasure_action.isEnabled()
    with qtbot.waitSignal(second.runs.run_finished, timeout=RUN_MS) as finished:
        sessions.remeasure_action.trigger()
    again = finished.args[0]
    assert again.status == "done" and not is_imported(again)
    assert again.spec["recipe"] == run.spec["recipe"]
    assert len(RunStore(tmp_path / "other.sqlite").list_runs()) == 2


def test_export_run_as_script_from_the_window(window, qtbot, tmp_path):
    run = _quick_run(window, qtbot, Recipe())
    window.results.select_run(run.run_id)
    target = tmp_path / "again.py"
    assert window.sessions.export_script(str(target))
    out = subprocess.run([sys.executable, str(target), "--json", "--no-store"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    produced = json.loads(out.stdout.strip().splitlines()[-1])
    assert produced["status"] == "done" and produced["spec"]["model"] == "example:digits-cnn"
    assert produced["spec"]["runtime"] == run.spec["runtime"]
