"""accelstudio.core and accelstudio.worker never import Qt: they run headless, in the CLI and in workers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import accelstudio

QT_MODULES = ("PySide6", "pyqtgraph", "shiboken6")
PACKAGES = ("accelstudio.core", "accelstudio.worker")
IMPORT_LINE = re.compile(r"^\s*(?:import|from)\s+(" + "|".join(QT_MODULES) + r")\b", re.MULTILINE)

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


def test_no_qt_import_lines_in_core_or_worker():
    root = Path(accelstudio.__file__).parent
    offenders = []
    for folder in ("core", "worker"):
        for path in sorted((root / folder).rglob("*.py")):
            for match in IMPORT_LINE.finditer(path.read_text(encoding="utf-8")):
                offenders.append(f"{path.relative_to(root)}: {match.group(0).strip()}")
    assert not offenders, "Qt imports in Qt-free packages:\n" + "\n".join(offenders)


def test_import_line_pattern_catches_qt_imports():
    assert IMPORT_LINE.search("import numpy\nfrom PySide6.QtCore import Qt\n")
    assert IMPORT_LINE.search("    import pyqtgraph as pg")
    assert not IMPORT_LINE.search("# the GUI uses PySide6\nimport numpy")
