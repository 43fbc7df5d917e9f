"""Starting the desktop app: `accelstudio`, `accelstudio --open MODEL`, `accelstudio --smoke shot.png`,
`accelstudio --lesson NAME` (with --smoke: a screenshot of the lesson's first step), `--presenter` (presenter
mode for this start), `--size WxH` (the window's size), `--reopen-last` (a smoke run reopens the last model
too; a normal start always does unless a model is given).

The smoke mode opens the window with a model, runs one short job through the worker (prune 30% +
dynamic-int8, few repeats), waits for the result to be plotted, saves a screenshot of the whole window and
exits 0, or non-zero with the reason printed.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe

SMOKE_LOAD_TIMEOUT_S = 120
SMOKE_RUN_TIMEOUT_S = 420


def run_gui(args) -> int:
    """Open the main window (and run the smoke test when `args.smoke` is set); returns the exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    identify_application(app)
    from accelstudio.app.main_window import MainWindow

    window = MainWindow()
    size = getattr(args, "size", None)
    if size:
        window.resize(*size)
    window.show()
    if getattr(args, "presenter", False):
        window.presentation.set_presenter(True, remember=False)  # this start only
    lesson = getattr(args, "lesson", None)
    open_start_model(window, args)
    if lesson and getattr(args, "smoke", None):  # the lesson opens its own model
        from accelstudio.app.control.lesson_smoke import lesson_smoke

        return _close_after(app, window, lesson_smoke(window, lesson, Path(args.smoke)))
    if lesson:
        window.lessons.start(lesson)
    if getattr(args, "smoke", None):
        return run_smoke(app, window, Path(args.smoke))
    code = app.exec()
    window.close()
    return int(code)


def open_start_model(window, args) -> None:
    """The model a new window opens: the one given (--open), none for a lesson (it opens its own), else the
    last model and recipe (not in a smoke run unless --reopen-last asks), else the default example."""
    model, lesson, smoke = (getattr(args, name, None) for name in ("open_model", "lesson", "smoke"))
    if smoke:  # a smoke run's test recipe must not become the next start's
        window.reopen.remembering = False
    if model:
        window.open_model(str(model))
    elif not lesson:
        wants_last = getattr(args, "reopen_last", False) or not smoke
        if not (wants_last and window.reopen.reopen_last()):
            window.open_default()


def _close_after(app: QApplication, window, code: int) -> int:
    window.close()
    app.processEvents()
    return code


def identify_application(app: QApplication) -> None:
    """Names, icon and desktop-file name, so task bars and docks show AccelStudio with its own icon."""
    from accelstudio.app.main_window import app_icon

    app.setApplicationName("AccelStudio")
    app.setOrganizationName("AccelStudio")
    app.setApplicationDisplayName("AccelStudio")
    QGuiApplication.setDesktopFileName("accelstudio")  # matches the installed accelstudio.desktop entry
    app.setWindowIcon(app_icon())


def wait_for(signal, timeout_s: float, also=()) -> tuple | None:
    """Run the event loop until `signal` (or one of `also`) fires; its arguments, or None on timeout."""
    loop = QEventLoop()
    got: list = []

    def done(*values) -> None:
        got.append(values)
        loop.quit()

    connections = [(s, s.connect(done)) for s in (signal, *also)]
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    for s, _ in connections:
        try:
            s.disconnect(done)
        except (RuntimeError, TypeError):
            pass
    return got[0] if got else None


def run_smoke(app: QApplication, window, png: Path) -> int:
    """Load, run one short job, screenshot. Any failure prints why and returns 1."""
    from accelstudio.app.views import dialogs

    messages: list[str] = []

    def no_modal(box: QMessageBox) -> int:
        messages.append(f"{box.windowTitle()}: {box.text()}\n{box.detailedText()}")
        return int(QMessageBox.StandardButton.No)

    dialogs.exec_dialog = no_modal  # a smoke run must never wait for a click
    try:
        return _smoke_steps(window, png, messages)
    finally:
        window.close()
        app.processEvents()


def _smoke_steps(window, png: Path, messages: list[str]) -> int:
    if window.state.model is None:
        loaded = wait_for(window.model_loaded, SMOKE_LOAD_TIMEOUT_S, also=(window.models.loader.failed,))
        if window.state.model is None:
            why = "timed out" if loaded is None else "; ".join(messages) or str(loaded)
            print(f"smoke: the model did not load: {why}", file=sys.stderr)
            return 1
    state = window.state
    recipe = Recipe(prune=PruneSpec(amount=0.3), quantize=QuantSpec(mode="dynamic-int8", per_channel=True))
    runtime = replace(state.runtime, repeats=30, warmup=3, time_budget_s=1.0)
    state.edit("Smoke test settings", recipe=recipe, runtime=runtime)
    if not window.runs.start_run():
        print("smoke: the run did not start (see the status bar message above)", file=sys.stderr)
        return 1
    finished = wait_for(window.runs.run_finished, SMOKE_RUN_TIMEOUT_S)
    if finished is None:
        window.runs.cancel()
        print(f"smoke: no result within {SMOKE_RUN_TIMEOUT_S} s", file=sys.stderr)
        return 1
    result = finished[0]
    _settle(window)
    png.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(png)):
        print(f"smoke: could not write {png}", file=sys.stderr)
        return 1
    if result.status != "done":
        print(f"smoke: the run {result.status}: {result.reason}", file=sys.stderr)
        return 1
    print(f"smoke: ok, run {result.run_id} done ({recipe.describe()}); screenshot {png}")
    return 0


def _settle(window, timeout_s: float = 10.0) -> None:
    """Let background predictions and histograms land and the plots repaint before the screenshot."""
    runner = window.models.runner
    if runner.is_busy():
        wait_for(runner.busy_changed, timeout_s)
    loop = QEventLoop()
    QTimer.singleShot(300, loop.quit)  # a few paint cycles
    loop.exec()
