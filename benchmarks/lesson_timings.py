"""How long each guided lesson computes: every step of every lesson run in the window (offscreen) as a user
would click through it, with the lessons' own settings, on this machine.

Goal: each lesson's compute (model loading plus every job or training it runs) within 120 s on 2 cores. The time
is wall clock from "Run this step" to the step's end, summed over the lesson, plus the time to open its model.
`--quick` runs only the first measured step of two lessons with short timings (for the smoke test).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

GOAL_S = 120.0
STEP_TIMEOUT_MS = 600_000


def _wait(signal, timeout_ms: int):
    from PySide6.QtCore import QEventLoop, QTimer

    loop, got = QEventLoop(), []

    def done(*args) -> None:
        got.append(args)
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(done)
    return got[0] if got else None


def time_lesson(window, name: str, quick: bool) -> dict:
    """Open lesson `name` and run every step that computes; seconds per step and in total."""
    from accelstudio.core.studies.lessons import get_lesson

    lessons = window.lessons
    if quick:
        lessons.runtime_override = {"warmup": 1, "repeats": 10, "time_budget_s": 0.2}
        lessons.transfer_params = {"source_epochs": 1, "target_epochs": 2, "shots": 3}
    shown: list[int] = []
    lessons.step_shown.connect(shown.append)
    start = time.perf_counter()
    lessons.start(name)
    if not shown:  # the lesson's model is being opened
        _wait(lessons.step_shown, STEP_TIMEOUT_MS)
    lessons.step_shown.disconnect(shown.append)
    opened = time.perf_counter() - start
    steps = []
    for index, step in enumerate(get_lesson(name).steps):
        lessons.go(index)
        if step.action == "show":
            continue
        began = time.perf_counter()
        if not lessons.run_step():
            steps.append({"step": step.title, "status": "not started", "seconds": 0.0})
            continue
        outcome = _wait(lessons.step_finished, STEP_TIMEOUT_MS)
        steps.append({"step": step.title, "status": outcome[1] if outcome else "timed out",
                      "jobs": len(lessons.results), "seconds": round(time.perf_counter() - began, 2)})
        print(f"  {name} / {step.title}: {steps[-1]['status']}, {steps[-1]['seconds']:.1f} s")
        if quick:
            break
    total = opened + sum(s["seconds"] for s in steps)
    return {"lesson": name, "open_s": round(opened, 2), "steps": steps, "total_s": round(total, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one step of two lessons, short timings")
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--lessons", nargs="*", help="lesson names (default: all)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("ACCELSTUDIO_HOME", tempfile.mkdtemp(prefix="accelstudio-lessons-"))
    info = common.header("Lesson compute times")
    load_before = common.load_average()
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from accelstudio.app.main_window import MainWindow
    from accelstudio.app.views import dialogs
    from accelstudio.core.studies.lessons import LESSONS

    app = QApplication.instance() or QApplication([])
    dialogs.exec_dialog = lambda box: 0  # never wait for a click
    settings = QSettings(str(Path(os.environ["ACCELSTUDIO_HOME"]) / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.show()
    names = args.lessons or (["pruning", "transfer"] if args.quick else list(LESSONS))
    results, goals = [], {}
    try:
        for name in names:
            result = time_lesson(window, name, args.quick)
            results.append(result)
            goals[name] = common.goal(f"{name}: lesson compute", result["total_s"], GOAL_S, " s", fmt=".1f")
    finally:
        window.close()
        app.processEvents()
    doc = {"machine": info, "load_average": {"before": load_before, "after": common.load_average(),
                                             "cores": common.cores()},
           "quick": args.quick, "lessons": results, "goals": goals}
    common.write_results("lesson_timings", doc, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
