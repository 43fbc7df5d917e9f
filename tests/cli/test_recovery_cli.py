"""Recovery flags shared by `apply` and `run`: --finetune / --distill / --recovery-lr / --train-data."""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
import pytest

from accelstudio.cli import main
from accelstudio.cli.recipe_args import add_recipe_arguments, recipe_from_args
from accelstudio.core.errors import RecipeError
from accelstudio.core.model.examples import get_example
from accelstudio.core.recipe import Recipe, RecoverySpec


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_recipe_arguments(parser)
    return parser.parse_args(list(argv))


def test_flags_build_the_recovery_section():
    assert recipe_from_args(parse("--prune", "0.5", "--finetune", "3")).recovery == RecoverySpec("finetune", 3)
    recipe = recipe_from_args(parse("--distill", "4", "--recovery-lr", "0.002"))
    assert recipe.recovery == RecoverySpec("distill", 4, lr=0.002)
    assert recipe_from_args(parse("--prune", "0.5")).recovery == RecoverySpec()


def test_flags_override_a_recipe_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(Recipe(recovery=RecoverySpec("distill", 2, alpha=0.5)).to_json())
    recovery = recipe_from_args(parse("--recipe", str(path), "--finetune", "5")).recovery
    assert (recovery.method, recovery.epochs, recovery.alpha) == ("finetune", 5, 0.5)


def test_bad_flags():
    with pytest.raises(SystemExit):
        parse("--finetune", "2", "--distill", "2")
    with pytest.raises(RecipeError) as err:
        recipe_from_args(parse("--finetune", "99"))
    assert err.value.field == "recovery.epochs"
    with pytest.raises(RecipeError) as err:
        recipe_from_args(parse("--train-data", "x.npz"))
    assert err.value.field == "recovery.method"


def test_apply_finetunes_then_quantizes_with_ort(capsys, tmp_path):
    target = tmp_path / "cnn.onnx"
    code = main(["apply", "--example", "digits-cnn", "--prune", "0.8", "--finetune", "1", "--quantize",
                 "dynamic-int8", "--per-channel", "--out", str(target)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "warning [recovery]: finetune: 1 epoch on 1437 training samples" in out.out
    recipe = Recipe.from_json((tmp_path / "cnn.recipe.json").read_text())
    assert recipe.recovery == RecoverySpec("finetune", 1)
    data = np.load(get_example("digits-cnn").data_path)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    pred = session.run(None, {"x": data["x"]})[0].argmax(1)
    assert (pred == data["labels"]).mean() >= 0.95


def test_apply_user_model_without_training_data_exits_2(capsys, tmp_path):
    code = main(["apply", str(get_example("digits-cnn").weights_path), "--prune", "0.5", "--finetune", "1",
                 "--out", str(tmp_path / "m.pt")])
    assert code == 2
    assert "pass --train-data FILE.npz" in capsys.readouterr().err
