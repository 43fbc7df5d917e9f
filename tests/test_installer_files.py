"""The desktop bundle's build files are complete and consistent (no build: `bash installer/build.sh` takes minutes)."""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "installer"
ICONS = ROOT / "resources" / "icons"


def read_desktop(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # desktop entry keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("script", ["build.sh", "install-desktop-entry.sh"])
def test_shell_scripts_are_executable_and_parse(script):
    path = INSTALLER / script
    assert os.access(path, os.X_OK), f"{path} is not executable"
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_build_script_builds_then_smoke_tests_the_frozen_binary():
    text = (INSTALLER / "build.sh").read_text()
    assert "set -euo pipefail" in text
    assert "installer/accelstudio.spec" in text
    for check in ("--smoke", "inspect --example digits-cnn --json", "--prune 0.3 --quantize dynamic-int8",
                  "--worker", "QT_QPA_PLATFORM=offscreen", "ACCELSTUDIO_HOME=", "du -sh", "GOAL_MB=800"):
        assert check in text, check
    assert text.index("PyInstaller --noconfirm") < text.index("--smoke") < text.index("tar -C")


def test_spec_is_python_and_collects_what_the_app_needs():
    text = (INSTALLER / "accelstudio.spec").read_text()
    ast.parse(text)
    for needed in ("entry.py", "COLLECT(", "copy_metadata", "accelstudio.resources", "torch_pruning",
                   "onnxruntime", "PySide6.QtSvg", "accelstudio.desktop", "install-desktop-entry.sh"):
        assert needed in text, needed
    for trimmed in ("torch/test/*", "torch/include/*", "torch/bin/*", "*.a", "PySide6/Qt/translations/*",
                    '"tkinter"', '"matplotlib"', '"IPython"', '"pytest"', '"sklearn"', '"PySide6.QtQml"'):
        assert trimmed in text, trimmed


def test_entry_passes_a_launcher_file_to_open(tmp_path):
    from accelstudio.cli import launcher_argv

    assert "main(sys.argv[1:])" in (INSTALLER / "entry.py").read_text()
    model = tmp_path / "net.onnx"
    model.write_bytes(b"x")
    assert launcher_argv([str(model)]) == ["--open", str(model)]
    assert launcher_argv(["--worker"]) == ["--worker"]
    assert launcher_argv([]) == []
    assert launcher_argv(["run", "--example", "digits-mlp"]) == ["run", "--example", "digits-mlp"]
    assert launcher_argv([str(tmp_path / "missing.onnx")]) == [str(tmp_path / "missing.onnx")]


def test_desktop_entry_has_the_required_keys():
    entry = read_desktop(INSTALLER / "accelstudio.desktop")
    assert entry["Type"] == "Application"
    assert entry["Name"] == "AccelStudio"
    assert entry["Exec"] == "accelstudio %f"
    assert entry["Icon"] == "accelstudio"
    assert entry["Terminal"] == "false"
    assert {"Development", "Science"} <= set(filter(None, entry["Categories"].split(";")))
    assert entry["Categories"].endswith(";")
    assert "application/x-onnx" in entry["MimeType"].split(";")
    mime = ET.parse(INSTALLER / "accelstudio-mime.xml").getroot()
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    assert mime.find("m:mime-type[@type='application/x-onnx']/m:glob", ns).get("pattern") == "*.onnx"


def test_icons_exist_render_at_their_sizes_and_stay_small():
    svg = ET.parse(ICONS / "accelstudio.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert (ICONS / "accelstudio.svg").stat().st_size < 8_000
    for size in (64, 128, 256):
        png = ICONS / f"accelstudio-{size}.png"
        assert png_size(png) == (size, size)
        assert png.stat().st_size < 64_000


@pytest.mark.parametrize("folder", ["AccelStudio", "My Apps/AccelStudio"])
def test_install_desktop_entry_substitutes_the_bundle_path(tmp_path, folder):
    bundle = tmp_path / folder
    bundle.mkdir(parents=True)
    for name in ("install-desktop-entry.sh", "accelstudio.desktop", "accelstudio-mime.xml"):
        shutil.copy2(INSTALLER / name, bundle / name)
    shutil.copy2(ICONS / "accelstudio-256.png", bundle / "accelstudio.png")
    (bundle / "accelstudio").write_text("#!/bin/sh\n")
    data = tmp_path / "data"
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(data), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["bash", str(bundle / "install-desktop-entry.sh")], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    installed = read_desktop(data / "applications" / "accelstudio.desktop")
    exe = str(bundle / "accelstudio")
    assert installed["Exec"] == (f'"{exe}" %f' if " " in exe else f"{exe} %f")
    assert installed["TryExec"] == exe
    assert installed["Icon"] == "accelstudio"
    assert png_size(data / "icons" / "hicolor" / "256x256" / "apps" / "accelstudio.png") == (256, 256)
    assert (data / "mime" / "packages" / "accelstudio-mime.xml").is_file()
    removed = subprocess.run(["bash", str(bundle / "install-desktop-entry.sh"), "--uninstall"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert removed.returncode == 0, removed.stderr
    assert not (data / "applications" / "accelstudio.desktop").exists()
