"""Open one model file in a real MainWindow (offscreen), answering every dialog with Yes (trust), and report.

    python gui_open.py MODEL      prints "survived: loaded" or "survived: failed <message>" and exits 0,
                                  unless opening the file kills this process
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from accelstudio.app.views import dialogs  # noqa: E402
from accelstudio.app.main import wait_for  # noqa: E402


def main(model: str) -> int:
    app = QApplication.instance() or QApplication([])
    from accelstudio.app.main_window import MainWindow

    dialogs.exec_dialog = lambda box: int(QMessageBox.StandardButton.Yes)
    settings = QSettings(os.path.join(os.environ["ACCELSTUDIO_HOME"], "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    loader = window.models.loader
    outcome: list[str] = []
    loader.loaded.connect(lambda _m: outcome.append("loaded"))
    loader.failed.connect(lambda _ref, _b, exc, _t: outcome.append(f"failed {type(exc).__name__}: {exc}"))
    window.open_model(model)
    while not outcome or outcome[-1].startswith("failed TrustRequiredError"):
        if wait_for(loader.loaded, 120, also=(loader.failed,)) is None:
            outcome.append("timeout")
    window.close()
    app.processEvents()
    print(f"survived: {outcome[-1]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
