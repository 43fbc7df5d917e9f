"""Fixtures for GUI tests: offscreen Qt (tests/conftest.py), settings in a temporary INI file per test, a
window with the default example loaded, dialogs answered automatically, every thread joined at teardown."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from accelstudio.app.views import dialogs

LOAD_TIMEOUT_MS = 60_000


@pytest.fixture
def settings(tmp_path):
    """QSettings that live in this test's folder, never the user's."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    return QSettings(str(tmp_path / "accelstudio.ini"), QSettings.Format.IniFormat)


class DialogRecorder:
    """Replaces dialogs.exec_dialog: records each box and answers with `answer`."""

    def __init__(self, answer=QMessageBox.StandardButton.Ok):
        self.answer = answer
        self.boxes: list[QMessageBox] = []

    def __call__(self, box: QMessageBox) -> int:
        self.boxes.append(box)
        return int(self.answer)

    def names(self) -> list[str]:
        return [box.objectName() for box in self.boxes]


@pytest.fixture
def dialog_answers(monkeypatch):
    """Every modal dialog is recorded and answered (Ok/No unless a test sets `.answer`)."""
    recorder = DialogRecorder(QMessageBox.StandardButton.No)
    monkeypatch.setattr(dialogs, "exec_dialog", recorder)
    return recorder


def _app_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("accelstudio-") and t.is_alive()]


@pytest.fixture
def make_window(qtbot, settings, dialog_answers):
    """Build windows (default example loaded unless load=False); all are closed and joined at teardown."""
    from accelstudio.app.main_window import MainWindow

    made = []

    def make(load: bool = True):
        window = MainWindow(settings=settings)
        qtbot.addWidget(window)
        made.append(window)
        window.show()
        if load:
            with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT_MS):
                window.open_default()
            qtbot.waitUntil(window.models.is_settled,
                            timeout=LOAD_TIMEOUT_MS)
        return window

    yield make
    for window in made:
        window.close()
    leftover = _app_threads()
    assert not leftover, f"threads still running after close: {[t.name for t in leftover]}"


@pytest.fixture
def window(make_window):
    """A window with the default example (digits-cnn, torch) loaded and its predictions settled."""
    return make_window()
