"""The layering is a checked contract: import-linter's contracts in pyproject.toml ([tool.importlinter]) hold.

app and cli -> worker -> core; core and worker free of Qt; core's sub-packages in a declared order; no import
circles between sibling modules or packages. import-linter reads every import, those inside functions too.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import accelstudio

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LINT = """
import sys
from importlinter.cli import lint_imports
sys.exit(lint_imports(config_filename={config!r}, no_cache=True, no_logo=True))
"""


def _lint(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT.format(config=str(config))], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _contracts() -> list[dict]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def test_import_contracts_are_kept():
    result = _lint(PYPROJECT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_core_subpackage_has_a_layer():
    core = Path(accelstudio.__file__).parent / "core"
    packages = {p.name for p in core.iterdir() if (p / "__init__.py").is_file()}
    layered = next(c for c in _contracts() if c.get("containers") == ["accelstudio.core"])
    named = {name.strip() for layer in layered["layers"] for name in layer.split("|")}
    assert packages <= named, f"core sub-packages missing from the declared order: {sorted(packages - named)}"
    modules = {p.stem for p in core.glob("*.py") if p.stem != "__init__"}
    assert modules <= named, f"top-level core modules missing from the declared order: {sorted(modules - named)}"


def test_a_broken_contract_fails_including_imports_inside_functions(tmp_path):
    # The pipeline imports its data stage only inside a function; the linter must still see that import.
    config = tmp_path / "broken.toml"
    config.write_text('[tool.importlinter]\nroot_package = "accelstudio"\n\n'
                      '[[tool.importlinter.contracts]]\nname = "pipeline without data"\ntype = "forbidden"\n'
                      'source_modules = ["accelstudio.core.pipeline"]\n'
                      'forbidden_modules = ["accelstudio.core.data.run_data"]\n', encoding="utf-8")
    result = _lint(config)
    assert result.returncode != 0, result.stdout
    assert "accelstudio.core.pipeline -> accelstudio.core.data.run_data" in result.stdout
