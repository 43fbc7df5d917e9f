"""`accelstudio run`/`apply` data flags: --input-shape, --calib, --allow-train-overlap, and the refusals made
before the worker starts (a batch a fixed graph cannot take, a recipe the format cannot take)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from accelstudio.core.model.examples import get_example

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from shape_models import conv, fixed_matmul  # noqa: E402

FAST = ["--threads", "1", "--warmup", "2", "--repeats", "20", "--time-budget", "0.5", "--no-artifact"]


def _cli(*args: str, command: str = "run") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accelstudio", command, *args], capture_output=True, text=True,
                          timeout=300)


def test_refusals_come_before_the_worker(tmp_path):
    store = tmp_path / "r.sqlite"
    out = _cli(str(fixed_matmul(tmp_path / "mm.onnx")), "--batch", "8", "--store", str(store))
    assert out.returncode == 2 and "no batch dimension to set to 8" in out.stderr and "mm.onnx" in out.stderr
    onnx_file = str(get_example("digits-cnn").onnx_path)
    out = _cli(onnx_file, "--prune", "0.5", "--prune-method", "l1-structured", "--store", str(store))
    assert out.returncode == 2 and "model.onnx: structured pruning" in out.stderr
    out = _cli(str(conv(tmp_path / "c.onnx", ["N", 3, "H", "W"])), "--input-shape", "x=1x4x8x8",
               "--store", str(store))
    assert out.returncode == 2 and "needs 3 at dimension 1" in out.stderr
    assert not store.exists()  # no worker ran, no run was stored


def test_input_shape_sets_the_run_and_guesses_are_shown(tmp_path):
    model = str(conv(tmp_path / "c.onnx", ["N", 3, "H", "W"]))
    out = _cli(model, "--input-shape", "1x3x40x24", "--json", "--store", str(tmp_path / "r.sqlite"), *FAST)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)["data"]
    assert data["input_shapes"] == {"x": [1, 3, 40, 24]} and data["guessed_dims"] == []
    out = _cli(model, "--store", str(tmp_path / "r.sqlite"), *FAST)
    assert out.returncode == 0, out.stderr
    assert "inputs      x=1x3x224x224   GUESSED: x[2]=224 (H), x[3]=224 (W)" in out.stdout
    assert "random inputs: fidelity only" in out.stdout


def test_training_on_the_test_file_is_refused_unless_allowed(tmp_path):
    d = np.load(get_example("digits-cnn").data_path)
    test = tmp_path / "test.npz"
    np.savez(test, x=d["x"][:100], labels=d["labels"][:100])
    args = ["--example", "digits-cnn", "--prune", "0.3", "--finetune", "1", "--data", str(test), "--train-data",
            str(test), "--store", str(tmp_path / "r.sqlite"), *FAST]
    out = _cli(*args)
    assert out.returncode == 1 and "100 of its 100 training samples" in out.stderr and str(test) in out.stderr
    out = _cli(*args, "--allow-train-overlap", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["data"]["train"]["overlap_with_eval"] == 100
    assert any(n.startswith("TRAINED ON EVALUATION DATA") for n in doc["notes"])


def test_calib_file_is_used_and_recorded(tmp_path):
    d = np.load(get_example("digits-cnn").data_path)
    calib, test = tmp_path / "calib.npz", tmp_path / "test.npz"
    np.savez(calib, x=d["x"][:64])
    np.savez(test, x=d["x"][64:200], labels=d["labels"][64:200])
    out = _cli(str(get_example("digits-cnn").onnx_path), "--quantize", "static-int8", "--calib", str(calib),
               "--data", str(test), "--json", "--store", str(tmp_path / "r.sqlite"), *FAST)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)["data"]
    assert data["calib"] == {"source": str(calib), "n": 64, "split_from_eval": False, "overlap_with_eval": 0}
    assert data["eval"]["n"] == 136


def test_apply_takes_the_shared_data_flags(tmp_path):
    out = _cli("--example", "digits-mlp", "--out", str(tmp_path / "m.onnx"), "--input-shape", "x=a", command="apply")
    assert out.returncode == 2 and "--input-shape x=a" in out.stderr
    help_text = _cli("--help", command="apply").stdout
    assert "--calib" in help_text and "--input-shape" in help_text


def test_apply_exports_torchscript_at_the_given_shape_and_refuses_noop_pairs(tmp_path):
    import torch

    from accelstudio.core.model.loading import load_example

    scripted = tmp_path / "cnn_ts.pt"
    torch.jit.trace(load_example("digits-cnn").module.eval(), torch.rand(2, 1, 8, 8)).save(str(scripted))
    base = [str(scripted), "--trust", "--quantize", "dynamic-int8"]
    out = _cli(*base, "--out", str(tmp_path / "guessed.onnx"), command="apply")
    assert out.returncode == 2 and "at guessed input sizes (x[2]=224 (H), x[3]=224 (W))" in out.stderr
    assert "--input-shape" in out.stderr and "Traceback" not in out.stderr
    out = _cli(*base, "--input-shape", "x=1x1x8x8", "--out", str(tmp_path / "m.onnx"), command="apply")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "m.onnx").is_file()
    out = _cli(*base, "--out", str(tmp_path / "m.pt"), command="apply")
    assert out.returncode == 2 and "would run unchanged" in out.stderr and not (tmp_path / "m.pt").exists()
