"""Optimized model files from the window: disk use in the status bar, pinning, a size cap applied after runs,
and clean-up actions that remove files but never runs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from accelstudio.core.paths import artifacts_dir
from accelstudio.core.recipe import PruneSpec, Recipe
from tests.app.test_window_runs import RUN_MS, short_run
from tests.core.test_store import make_run


def _older_run_with_file(window, size: int = 300_000) -> int:
    """A stored run (as if from earlier) whose optimized model takes `size` bytes."""
    folder = artifacts_dir() / "20260101-000000-older"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"\0" * size)
    run_id = window.runs.store.add_run(replace(make_run(0), artifact=str(folder / "model.onnx")))
    window.results.reload()
    return run_id


def test_cap_pins_and_clean_up_keep_the_runs(window, qtbot, dialog_answers):
    arts = window.artifacts
    older = _older_run_with_file(window)
    short_run(window, Recipe(prune=PruneSpec(amount=0.2)))
    with qtbot.waitSignal(arts.usage_changed, timeout=RUN_MS) as used:  # the cap is applied after the run
        with qtbot.waitSignal(window.runs.run_finished, timeout=RUN_MS) as finished:
            assert window.runs.start_run()
    new = finished.args[0]
    assert new.status == "done" and new.artifact and Path(new.artifact).is_file()
    assert used.args[0].artifact_count == 2 and arts.cap_mb() == 1024
    assert arts.usage_label.text().startswith("Store: ") and "2 optimized models" in arts.usage_label.toolTip()

    window.results.scope.setCurrentIndex(1)  # all models: the older run belongs to another model
    assert window.results.select_run(new.run_id)
    assert arts.pin_action.isEnabled() and not arts.pin_action.isChecked()
    arts.pin_action.trigger()
    assert window.runs.store.pinned_ids() == {new.run_id} and arts.pin_action.isChecked()
    arts.set_cap_mb(0)  # keep only pinned runs' files
    qtbot.waitUntil(lambda: arts.last_use.artifact_count == 1, timeout=RUN_MS)
    assert not (artifacts_dir() / "20260101-000000-older").exists() and Path(new.artifact).is_file()
    assert arts.last_use.pinned_bytes == arts.last_use.artifacts_bytes > 0
    assert window.results.run(older) is not None and window.results.run(older).artifact is None
    assert "removed the optimized models of 1 run(s)" in window.statusBar().currentMessage()

    arts.clean_selected()  # pinned: left alone
    qtbot.waitUntil(lambda: "pinned; unpin it first" in window.statusBar().currentMessage(), timeout=RUN_MS)
    assert Path(new.artifact).is_file()
    arts.pin_action.trigger()  # unpin
    assert window.runs.store.pinned_ids() == set()
    dialog_answers.answer = QMessageBox.StandardButton.No
    arts.clean_all_action.trigger()
    assert dialog_answers.names()[-1] == "confirmDialog" and Path(new.artifact).is_file()
    dialog_answers.answer = QMessageBox.StandardButton.Yes
    arts.clean_all_action.trigger()
    qtbot.waitUntil(lambda: arts.last_use.artifact_count == 0, timeout=RUN_MS)
    assert not Path(new.artifact).exists()
    assert window.runs.store.count() == 2 and window.results.run(new.run_id).status == "done"
    assert not window.results.io.save_model.isEnabled()  # nothing left to save for the selected run
    assert window.results.table.contextMenuPolicy().name == "ActionsContextMenu"
    assert arts.clean_selected_action in window.results.table.actions()
