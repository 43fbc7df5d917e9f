"""With ACCELSTUDIO_HOME set, the window keeps its settings (layout, theme, recent files) under that folder and
writes nothing into the user's home folder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import sys
    from PySide6.QtWidgets import QApplication
    from accelstudio.app.main import identify_application, wait_for
    from accelstudio.app.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    identify_application(app)
    window = MainWindow()
    window.show()
    window.open_default()
    if wait_for(window.model_loaded, 120) is None:
        sys.exit("model did not load")
    window.set_theme("dark")
    window.add_recent(sys.argv[1])
    window.close()
    app.processEvents()
    print(window.settings.fileName())
""")


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_window_writes_settings_under_accelstudio_home_only(tmp_path):
    home, fake_home = tmp_path / "studio", tmp_path / "fakehome"
    home.mkdir()
    fake_home.mkdir()
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(fake_home), ACCELSTUDIO_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    env.pop("ACCELSTUDIO_STORE", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(model)], env=env, capture_output=True, text=True,
                          timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    settings = Path(done.stdout.strip().splitlines()[-1])
    assert settings == home / "config" / "settings.ini"
    text = settings.read_text()
    assert "theme=dark" in text and "model.onnx" in text and "geometry" in text
    assert _files_under(fake_home) == []
