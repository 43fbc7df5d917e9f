"""`accelstudio apply`: writes the model and recipe, prints the table or JSON, bad input exits 2 in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from accelstudio.cli import main
from accelstudio.core.model.examples import get_example
from accelstudio.core.recipe import PruneSpec, Recipe, save_recipe


def apply(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["apply", *args])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_apply_example_writes_onnx_recipe_and_table(capsys, tmp_path):
    target = tmp_path / "cnn.onnx"
    code, out, err = apply(capsys, "--example", "digits-cnn", "--prune", "0.5", "--prune-scope", "layer",
                           "--out", str(target))
    assert code == 0, err
    assert "requested%" in out and "achieved%" in out and "conv2" in out and f"wrote {target}" in out
    assert "warning [prune]" in out and "l1-structured" in out
    data = np.load(get_example("digits-cnn").data_path)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": data["x"][:8]})[0].shape == (8, 10)
    recipe = Recipe.from_json((tmp_path / "cnn.recipe.json").read_text())
    assert recipe.prune == PruneSpec(amount=0.5, scope="layer")


def test_json_document_and_flags_override_the_recipe_file(capsys, tmp_path):
    recipe_file = tmp_path / "r.json"
    save_recipe(Recipe(prune=PruneSpec(amount=0.2, method="random")), recipe_file)
    code, out, err = apply(capsys, "--example", "digits-mlp", "--recipe", str(recipe_file), "--prune", "0.6",
                           "--exclude", "fc3", "--out", str(tmp_path / "m.safetensors"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["recipe"]["prune"] == {"amount": 0.6, "method": "random", "scope": "global", "overrides": {},
                                      "exclude": ["fc3"]}
    layers = {layer["name"]: layer for layer in doc["layers"]}
    assert layers["fc3"]["achieved"] == 0.0
    pooled = [layers[n] for n in ("fc1", "fc2")]
    zeros = sum(l["params_before"] - l["params_after"] for l in pooled)
    weights = sum(l["params_before"] for l in pooled) - 128 - 64  # minus the biases
    assert abs(zeros / weights - 0.6) < 0.005
    assert doc["outputs"] == [str(tmp_path / "m.safetensors"), str(tmp_path / "m.recipe.json")]
    assert [w["code"] for w in doc["warnings"]] == ["sparsity-no-speedup"]


def test_structured_pruning_of_an_example_to_torchscript(capsys, tmp_path):
    target = tmp_path / "s.pt"
    code, out, err = apply(capsys, "--example", "digits-cnn", "--prune", "0.5", "--prune-method", "l1-structured",
                           "--out", str(target), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["backend"] == "torch"
    assert sum(l["params_after"] for l in doc["layers"]) < 0.5 * sum(l["params_before"] for l in doc["layers"])
    module = torch.jit.load(str(target))
    assert module(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_torch_model_quantized_for_onnx_output_goes_through_ort(capsys, tmp_path):
    pytest.importorskip("accelstudio.core.compress.quant_onnx")
    target = tmp_path / "q.onnx"
    code, out, err = apply(capsys, "--example", "digits-cnn", "--prune", "0.3", "--prune-method", "l1-structured",
                           "--quantize", "dynamic-int8", "--per-channel", "--out", str(target), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["backend"] == "onnx"
    assert sum(l["params_after"] for l in doc["layers"]) < sum(l["params_before"] for l in doc["layers"])
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.random.rand(3, 1, 8, 8).astype(np.float32)})[0].shape == (3, 10)


@pytest.mark.parametrize("args,field", [
    (["--prune", "1.5"], "prune.amount"),
    (["--prune", "0.5", "--exclude", "fc9"], "prune.exclude"),
    (["--quantize", "int3"], "quantize.mode"),
    (["--quantize", "sim-12"], "quantize.bits"),
    (["--prune", "0.3", "--prune-method", "2:4"], "prune.amount"),
])
def test_bad_recipe_flags_exit_2_naming_the_field(capsys, tmp_path, args, field):
    code, out, err = apply(capsys, "--example", "digits-mlp", "--out", str(tmp_path / "m.onnx"), *args)
    assert code == 2 and f"'{field}'" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_bad_output_and_usage_exit_2(capsys, tmp_path):
    code, _, err = apply(capsys, "--example", "digits-mlp", "--out", str(tmp_path / "m.h5"))
    assert code == 2 and ".onnx, .pt, .safetensors" in err
    code, _, err = apply(capsys, "--out", str(tmp_path / "m.onnx"))
    assert code == 2 and "--example" in err
    code, _, _ = apply(capsys, "--example", "digits-mlp", "--out", str(tmp_path / "m.onnx"), "--prune-method", "x")
    assert code == 2
    code, _, err = apply(capsys, "--example", "nope", "--out", str(tmp_path / "m.onnx"))
    assert code == 2 and "digits-cnn" in err
    code, _, err = apply(capsys, "--example", "digits-cnn", "--out", str(get_example("digits-cnn").weights_path),
                         "--prune", "0.1")
    assert code == 2 and "own source file" in err


def test_subprocess_error_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "accelstudio", "apply", "--example", "digits-mlp", "--out",
                             str(tmp_path / "m.onnx"), "--prune", "0.5", "--exclude", "fc9"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "prune.exclude" in result.stderr and "fc1, fc2, fc3" in result.stderr
