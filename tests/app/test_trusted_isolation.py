"""Trusted files open in a separate process: the window shows a data-only snapshot, a crash in the file's code
gives one error dialog and leaves the window working, and closing the window ends a load in progress."""

from __future__ import annotations

import time

import pytest
from PySide6.QtWidgets import QMessageBox

from accelstudio.core.compress.apply import predict_sparsity
from accelstudio.core.errors import TrustRequiredError
from accelstudio.core.model.model_data import ModelData
from accelstudio.core.paths import data_dir
from tests import factories as fx
from tests.processes import live_children

WAIT_MS = 60_000


def table_names(window) -> list[str]:
    proxy = window.model_view.proxy
    return [proxy.index(r, 0).data() for r in range(proxy.rowCount())]


def _no_snapshot_folders() -> bool:
    return not (data_dir() / "snapshots").exists()  # the snapshot comes back in the worker's message


def test_trusted_file_that_aborts_gives_one_error_and_the_window_keeps_working(make_window, qtbot, tmp_path,
                                                                                dialog_answers):
    window = make_window(load=False)
    path = fx.crashing_pickle_file(tmp_path, "abort")
    dialog_answers.answer = QMessageBox.StandardButton.Yes  # "Trust and open"
    with qtbot.waitSignal(window.models.loader.failed, timeout=WAIT_MS,
                          check_params_cb=lambda _r, _b, exc, _t: not isinstance(exc, TrustRequiredError)) as failed:
        window.open_model(str(path))
    assert type(failed.args[2]).__name__ == "ModelCrashedError"
    assert dialog_answers.names() == ["trustDialog", "errorDialog"]
    text = dialog_answers.boxes[1].text()
    assert f"Could not open {path.name}: crashed while loading." in text
    assert "the model crashed while loading (SIGABRT)" in text
    assert window.state.model is None and window.isVisible()
    with qtbot.waitSignal(window.model_loaded, timeout=WAIT_MS):
        window.open_model("example:digits-mlp")
    assert table_names(window) == ["fc1", "fc2", "fc3"]
    assert _no_snapshot_folders() and not live_children()


def test_trusted_torchscript_is_shown_from_its_snapshot(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window(load=False)
    path = str(fx.torchscript_file(tmp_path))
    import accelstudio.core.model.loading as loading

    real_open = loading.open_model

    def open_here(ref, *, trust=False, **kw):  # the window's process must never run the file's code
        assert not trust, "a trusted file was loaded in the window's process"
        return real_open(ref, trust=trust, **kw)

    monkeypatch.setattr(loading, "open_model", open_here)
    with qtbot.waitSignal(window.model_loaded, timeout=WAIT_MS):
        window.open_model(path, trust=True)
    model = window.state.model
    assert isinstance(model.handle, ModelData) and model.trust
    assert table_names(window) == ["conv", "fc"]
    assert "tiny_script.pt (torch)" in window.windowTitle()
    assert _no_snapshot_folders()

    hist = window.model_view.histogram
    window.model_view.select_layer("fc")
    qtbot.waitUntil(lambda: hist.layer == "fc", timeout=WAIT_MS)
    controls = window.recipe_controls
    controls.mode_combo.setCurrentIndex(controls.mode_combo.findData("dynamic-int8"))
    qtbot.waitUntil(lambda: hist.grid_levels.size == 255, timeout=WAIT_MS)

    controls.amount_slider.setValue(50)
    assert window.state.recipe.prune.amount == pytest.approx(0.5)
    expected = predict_sparsity(real_open(path, trust=True), window.state.recipe.prune)  # the test may load it
    assert sum(r.achieved * r.params_before for r in expected) > 0
    qtbot.waitUntil(lambda: window.state.prediction == expected, timeout=WAIT_MS)
    table = window.model_view.table_model
    assert table.predicted("fc") == pytest.approx(expected[1].achieved)


@pytest.mark.parametrize("then", ["close", "open-another"])
def test_a_hung_trusted_load_ends_with_the_window_or_the_next_open(make_window, qtbot, tmp_path, monkeypatch, then):
    monkeypatch.setenv("ACCELSTUDIO_TEST_HANG_STAGE", "load")  # the child hangs once it starts loading
    window = make_window(load=False)
    window.open_model(str(fx.torchscript_file(tmp_path)), trust=True)
    qtbot.waitUntil(lambda: bool(live_children()), timeout=WAIT_MS)
    start = time.monotonic()
    if then == "close":
        window.close()
    else:
        with qtbot.waitSignal(window.model_loaded, timeout=WAIT_MS):
            window.open_model("example:digits-mlp")
        assert window.state.model.ref == "example:digits-mlp"
    assert time.monotonic() - start < 20  # not the stage timeout (minutes)
    assert not live_children()
    assert _no_snapshot_folders()
