"""`accelstudio --smoke PNG --lesson NAME`: open the window on a lesson, show its first step (its settings set,
its control framed, the plots drawn), save a screenshot of the whole window and report what was shown."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer

LOAD_TIMEOUT_S = 120
SETTLE_MS = 600


def _wait(signal, timeout_s: float) -> bool:
    """Run the event loop until `signal` fires (True) or the timeout passes (False)."""
    loop, fired = QEventLoop(), []

    def done(*_args) -> None:
        fired.append(True)
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    try:
        signal.disconnect(done)
    except (RuntimeError, TypeError):
        pass
    return bool(fired)


def lesson_smoke(window, name: str, png: Path) -> int:
    """Show lesson `name` step 1 in `window` and save the screenshot to `png`; 0 when it worked."""
    controller = window.lessons
    shown = []
    controller.step_shown.connect(shown.append)
    controller.start(name)
    if not shown and not _wait(controller.step_shown, LOAD_TIMEOUT_S):
        print(f"smoke: lesson {name} did not show its first step within {LOAD_TIMEOUT_S} s", file=sys.stderr)
        return 1
    runner = window.models.runner
    if runner.is_busy():
        _wait(runner.busy_changed, 10.0)
    loop = QEventLoop()
    QTimer.singleShot(SETTLE_MS, loop.quit)  # the frame's first pulse and the plots' repaint
    loop.exec()
    png.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(png)):
        print(f"smoke: could not write {png}", file=sys.stderr)
        return 1
    step = controller.lesson.steps[controller.index]
    print(f"smoke: ok, lesson {name} step 1 ({step.title}) on {window.state.model.ref}; screenshot {png}")
    return 0
