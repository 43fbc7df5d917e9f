"""Hostile inputs through the REAL MainWindow (offscreen, pytest-qt): bad files give one error dialog naming the
file and its category, untrusted code never runs, a model that segfaults ONNX Runtime fails one run and leaves
the app working, and a 10 ms QTimer heartbeat keeps ticking through all of it."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QMessageBox

from accelstudio.app.views import dialogs
from accelstudio.app.main_window import MainWindow
from accelstudio.core.errors import (
    CorruptModelError, ExternalDataError, ModelTooLargeError, NotAModelError, UnsupportedModelError,
)
from hostile_helpers import ENDLESS
from tests import factories as fx
from worker_checks import assert_store_survived, store_with_history

MAX_GAP_S = 0.5  # generous: a shared 2-core machine, with torch and a worker starting beside the GUI
LOAD_WAIT_MS = 60_000
RUN_WAIT_MS = 180_000


class Heartbeat:
    """A 10 ms QTimer that records the longest interval between two of its ticks."""

    def __init__(self):
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last: float | None = None
        self.max_gap = 0.0
        self.ticks = 0
        self.long_gaps: list[tuple[float, float]] = []  # (when, gap) of gaps over 100 ms
        self.t0 = time.perf_counter()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            gap = now - self.last
            self.max_gap = max(self.max_gap, gap)
            if gap > 0.1:
                self.long_gaps.append((round(self.last - self.t0, 3), round(gap, 3)))
        self.last = now
        self.ticks += 1

    def start(self) -> None:
        """Start ticking; call once the case's inputs are built (building them is test work, not the app's)."""
        self.last = None
        self.t0 = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()


@pytest.fixture
def dialogs_seen(monkeypatch) -> list[dict]:
    """Every modal dialog the app opens, recorded and answered No (or Ok) at once."""
    seen: list[dict] = []

    def answer(box: QMessageBox) -> int:
        seen.append({"name": box.objectName(), "title": box.windowTitle(), "text": box.text(),
                     "info": box.informativeText(), "details": box.detailedText()})
        return int(QMessageBox.StandardButton.No)

    monkeypatch.setattr(dialogs, "exec_dialog", answer)
    return seen


@pytest.fixture
def app(qtbot, tmp_path, sandbox, dialogs_seen, request):
    """The main window with its own settings file and a store holding two earlier runs, plus a heartbeat
    started once the window is up. Asserts the heartbeat's longest gap when the test ends."""
    store, earlier = store_with_history()
    settings = QSettings(str(sandbox.app_home / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, store=store)
    qtbot.addWidget(window)
    window.show()
    if window.models.runner.is_busy():  # runtime discovery in the background
        with qtbot.waitSignal(window.models.runner.busy_changed, timeout=LOAD_WAIT_MS):
            pass
    beat = Heartbeat()
    yield window, store, earlier, beat
    beat.stop()
    window.close()
    print(f"\n{request.node.name}: longest GUI heartbeat gap {beat.max_gap * 1000:.0f} ms over {beat.ticks} ticks"
          f" (gaps over 100 ms at [s, s]: {beat.long_gaps})")
    assert beat.ticks >= 3 and beat.max_gap < MAX_GAP_S, f"GUI blocked for {beat.max_gap * 1000:.0f} ms"


def _open_and_fail(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.models.loader.failed, timeout=LOAD_WAIT_MS):
        window.open_model(str(path))


BAD_FILES = {
    "empty.onnx": (lambda d: fx.empty_file(d, "e.onnx"), CorruptModelError),
    "html.onnx": (fx.text_file, NotAModelError),
    "truncated.onnx": (lambda d: fx.truncated_copy(fx.onnx_example(d), d), CorruptModelError),
    "random.pt": (lambda d: fx.random_bytes_file(d, "r.pt"), NotAModelError),
    "external-dotdot": (lambda d: fx.hostile_external_onnx(d, "dotdot"), ExternalDataError),
    "external-symlink": (lambda d: fx.hostile_external_onnx(d, "symlink"), ExternalDataError),
    "custom-op": (fx.onnx_custom_op, UnsupportedModelError),
    "future-opset": (fx.onnx_future_opset, UnsupportedModelError),
    "safetensors-huge-header": (lambda d: fx.hostile_safetensors(d, "huge_header"), CorruptModelError),
    "safetensors-overlap": (lambda d: fx.hostile_safetensors(d, "overlap"), CorruptModelError),
    "shape-exceeds-storage": (fx.state_dict_shape_exceeds_storage, CorruptModelError),
    "zip-bomb-3gib": (fx.zip_bomb_pt_gigabytes, ModelTooLargeError),
    "over-2gib.onnx": (fx.sparse_huge_onnx, ModelTooLargeError),
}


def test_bad_files_and_untrusted_code_in_the_window(app, qtbot, sandbox, dialogs_seen):
    window, store, earlier, beat = app
    cases = []
    for name, (make, error) in BAD_FILES.items():
        folder = sandbox.inputs / name
        folder.mkdir()
        cases.append((make(folder), error))
    markers = {fmt: sandbox.root / f"MARKER-{fmt}" for fmt in ("zip", "legacy", "raw")}
    pickles = [fx.malicious_pickle_file(sandbox.inputs, marker, fmt) for fmt, marker in markers.items()]
    crashers = [fx.crashing_pickle_file(sandbox.inputs, a) for a in fx.CRASHER_ACTIONS]
    sandbox.freeze()
    beat.start()
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_WAIT_MS):
        window.open_model("example:digits-mlp", backend="onnx")
    good = window.state.model

    for path, error in cases:
        dialogs_seen.clear()
        _open_and_fail(qtbot, window, path)
        assert len(dialogs_seen) == 1 and dialogs_seen[0]["name"] == "errorDialog", (path, dialogs_seen)
        text = dialogs_seen[0]["text"]
        assert f"Could not open {path.name}: {error.category}." in text, text
        assert window.state.model is good  # the previous model stays open
    for path in pickles + crashers:
        dialogs_seen.clear()
        _open_and_fail(qtbot, window, path)
        assert [d["name"] for d in dialogs_seen] == ["trustDialog"] and path.name in dialogs_seen[0]["text"]
        assert "not trusted" in window.statusBar().currentMessage()
        assert window.state.model is good
    assert not any(m.exists() for m in markers.values())
    assert window.isVisible() and not window.runs.is_running()
    assert_store_survived(store, earlier)
    sandbox.assert_untouched()


def test_model_that_segfaults_onnx_runtime_fails_one_run(app, qtbot, sandbox, dialogs_seen):
    window, store, earlier, beat = app
    model = fx.onnx_einsum_crasher(sandbox.inputs)
    sandbox.freeze()
    beat.start()
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_WAIT_MS):
        window.open_model(str(model))
    with qtbot.waitSignal(window.runs.run_finished, timeout=RUN_WAIT_MS) as finished:
        assert window.runs.start_run()
        assert not window.runs.start_run()  # one job at a time: a second start is refused
    result = finished.args[0]
    assert result.status == "failed"
    assert result.reason == "worker crashed: SIGSEGV (segmentation fault) during stage 'benchmark'"
    assert not dialogs_seen  # a failed run is reported inline, never by a modal dialog
    assert "SIGSEGV" in window.statusBar().currentMessage()
    assert window.isVisible() and window.run_button.isEnabled() and not window.runs.is_running()
    assert_store_survived(store, earlier, result)
    sandbox.assert_untouched()


def test_cancel_from_the_window_mid_benchmark(app, qtbot, sandbox, dialogs_seen):
    window, store, earlier, beat = app
    sandbox.freeze()
    beat.start()
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_WAIT_MS):
        window.open_model("example:digits-mlp", backend="onnx")
    window.state.edit("endless benchmark", runtime=ENDLESS)
    with qtbot.waitSignal(window.runs.bridge.progress, timeout=RUN_WAIT_MS,
                          check_params_cb=lambda stage, *_: stage == "benchmark"):
        assert window.runs.start_run()
    with qtbot.waitSignal(window.runs.run_finished, timeout=RUN_WAIT_MS) as finished:
        window.runs.cancel()
    assert finished.args[0].status == "cancelled" and not dialogs_seen
    assert_store_survived(store, earlier, finished.args[0])
    sandbox.assert_untouched()
