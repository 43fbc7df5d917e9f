"""The wheel carries the bundled examples and the entry point works."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_resources(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("accelstudio-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for example in ("digits-mlp", "digits-cnn", "digits-resnet", "digits-vit"):
        for f in ("model.safetensors", "model.onnx", "data.npz", "calib.npz", "meta.json"):
            assert f"accelstudio/resources/examples/{example}/{f}" in names
    assert "accelstudio/resources/data/digits_split.npz" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "accelstudio", "--help"], capture_output=True, text=True, check=True)
    for command in ("inspect", "apply", "run", "runs", "compare"):
        assert command in out.stdout
