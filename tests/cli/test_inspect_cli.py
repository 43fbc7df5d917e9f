"""`accelstudio inspect`: the table, the JSON document and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from accelstudio.cli.inspect_cmd import human_bytes, parse_input_shapes
from accelstudio.core.model.inspect import InputShapeError


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accelstudio", "inspect", *args], capture_output=True,
                          text=True, timeout=180)


def test_json_for_bundled_example():
    result = run_cli("--example", "digits-cnn", "--json", "--batch", "2")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("layers", "total_params", "total_flops", "total_macs", "total_bytes", "file_bytes", "inputs"):
        assert key in data
    assert data["total_params"] == 38282 and data["total_bytes"] == 4 * 38282
    assert data["inputs"][0]["shape"] == [2, 1, 8, 8]
    assert [layer["name"] for layer in data["layers"]] == ["conv1", "conv2", "fc1", "fc2"]
    assert data["total_flops"] == 2 * 675072 and data["total_macs"] == 675072
    assert data["file_bytes"] > 0


def test_table_for_onnx_example_with_input_shape():
    result = run_cli("--example", "digits-mlp", "--backend", "onnx", "--input-shape", "x=4,64")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "x=(4, 64)" in lines[0]
    header = next(line for line in lines if line.startswith("layer"))
    for column in ("type", "weight shape", "params", "bytes", "dtype", "MFLOPs", "sparsity%"):
        assert column in header
    fc1 = next(line for line in lines if line.startswith("fc1 "))
    assert "Gemm" in fc1 and "128x64" in fc1 and "8,320" in fc1
    assert lines[-1].startswith("total: 17,226 params")


def test_bad_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x00not a model at all" * 10)
    result = run_cli(str(bad))
    assert result.returncode == 2
    assert "garbage.onnx" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_example_is_exit_2():
    result = run_cli("--example", "no-such-model")
    assert result.returncode == 2
    assert "no-such-model" in result.stderr and "Traceback" not in result.stderr


def test_bad_input_shape_is_exit_2():
    result = run_cli("--example", "digits-mlp", "--input-shape", "y=1,64")
    assert result.returncode == 2 and "no input named y" in result.stderr and "Traceback" not in result.stderr


def test_parse_input_shapes():
    assert parse_input_shapes(["1,3,32,32"], ["x"]) == {"x": (1, 3, 32, 32)}
    assert parse_input_shapes(["ids=2,7", "mask=2x7"], ["ids", "mask"]) == {"ids": (2, 7), "mask": (2, 7)}
    with pytest.raises(InputShapeError):
        parse_input_shapes(["x=a,b"], ["x"])
    with pytest.raises(InputShapeError):
        parse_input_shapes(["x="], ["x"])


def test_human_bytes():
    assert human_bytes(None) == "-"
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.54 kB"  # decimal units everywhere (accelstudio.core.units)
    assert human_bytes(3 * 10 ** 9) == "3.00 GB"
