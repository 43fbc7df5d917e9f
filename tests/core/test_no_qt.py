"""accelstudio.core and accelstudio.worker never import Qt: they run headless, in the CLI and in workers.

The import lines themselves are checked by import-linter's contract (tests/test_layering.py); this test imports
every module for real, so that Qt loaded through a third-party library is caught too."""

from __future__ import annotations

import subprocess
import sys

QT_MODULES = ("PySide6", "pyqtgraph", "shiboken6")
PACKAGES = ("accelstudio.core", "accelstudio.worker")

PROBE = """
import importlib, pkgutil, sys
failed = []
for package_name in {packages!r}:
    package = importlib.import_module(package_name)
    for info in pkgutil.walk_packages(package.__path__, package_name + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{{info.name}}: {{type(exc).__name__}}: {{exc}}")
print("IMPORT-FAILED", failed)
print("QT-LOADED", sorted(m for m in {qt!r} if m in sys.modules))
"""


def test_importing_core_and_worker_loads_no_qt():
    code = PROBE.format(packages=PACKAGES, qt=QT_MODULES)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith(("IMPORT", "QT")))
    assert lines["QT-LOADED"] == "[]", f"Qt was imported by a core/worker module: {lines['QT-LOADED']}"
    assert lines["IMPORT-FAILED"] == "[]", f"modules that fail to import: {lines['IMPORT-FAILED']}"

