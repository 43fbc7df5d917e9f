"""Accuracy recovery after pruning: the recipe section, fine-tuning and distillation on digits-cnn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from accelstudio.core.compress.apply import apply_recipe
from accelstudio.core.errors import CompressionError, JobCancelled, RecipeError
from accelstudio.core.model.examples import get_example
from accelstudio.core.model.loading import load_example, load_model
from accelstudio.core.progress import Cancel
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe, RecoverySpec
from accelstudio.core.compress.recovery import recover
from accelstudio.core.data.training import recovery_data

FAST = dict(epochs=1, max_samples=512)


@pytest.fixture(scope="module")
def cnn():
    return load_example("digits-cnn")


@pytest.fixture(scope="module")
def test_set():
    data = np.load(get_example("digits-cnn").data_path)
    return torch.from_numpy(data["x"]), data["labels"]


def accuracy(module, test_set) -> float:
    x, labels = test_set
    with torch.no_grad():
        return float((module(x).argmax(1).numpy() == labels).mean())


def zero_masks(module) -> dict[str, np.ndarray]:
    return {n: (m.weight.detach().numpy() == 0) for n, m in module.named_modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}


# --- recipe ------------------------------------------------------------------------------------------------

def test_recipe_round_trip_and_defaults():
    recipe = Recipe(prune=PruneSpec(0.5), recovery=RecoverySpec("distill", epochs=4, lr=2e-3, batch=64,
                                                                temperature=3.0, alpha=0.5, max_samples=100))
    data = json.loads(recipe.to_json())
    assert data["recovery"] == {"method": "distill", "epochs": 4, "lr": 2e-3, "batch": 64, "temperature": 3.0,
                                "alpha": 0.5, "max_samples": 100}
    assert Recipe.from_json(recipe.to_json()) == recipe
    old = Recipe.from_dict({"version": 1, "prune": {"amount": 0.5}})  # written before recovery existed
    assert old.recovery == RecoverySpec() and old.recovery.method == "none"
    assert Recipe().is_identity and Recipe().to_dict()["recovery"]["method"] == "none"
    assert not Recipe(recovery=RecoverySpec("finetune")).is_identity
    assert Recipe(recovery=RecoverySpec("finetune", epochs=0)).is_identity


def test_describe_names_recovery():
    recipe = Recipe(prune=PruneSpec(0.5, method="l1-structured"), recovery=RecoverySpec("finetune", 3),
                    quantize=QuantSpec("dynamic-int8", per_channel=True))
    assert recipe.describe() == "prune 50% l1-structured + finetune 3 ep + dynamic-int8 per-channel qint8"
    assert Recipe(recovery=RecoverySpec("distill", 5)).describe() == "distill 5 ep"


@pytest.mark.parametrize("field,value", [
    ("method", "retrain"), ("epochs", -1), ("epochs", 51), ("epochs", 2.5), ("epochs", True), ("lr", 0.0),
    ("lr", 2.0), ("lr", "0.1"), ("batch", 0), ("temperature", 0.0), ("temperature", -1.0), ("alpha", 1.5),
    ("alpha", -0.1), ("max_samples", 0), ("max_samples", 1.5)])
def test_bad_recovery_fields_are_named(field, value):
    with pytest.raises(RecipeError) as err:
        Recipe.from_dict({"recovery": {"method": "finetune", field: value}})
    assert err.value.field == f"recovery.{field}"


def test_unknown_recovery_key_is_named():
    with pytest.raises(RecipeError) as err:
        Recipe.from_dict({"recovery": {"method": "finetune", "epoch": 3}})
    assert err.value.field == "recovery.epoch"


# --- training data -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,shape", [("digits-mlp", (64,)), ("digits-cnn", (1, 8, 8))])
def test_example_training_split_is_not_the_test_set(name, shape):
    data = recovery_data(load_example(name))
    x, labels = data["inputs"]["x"], data["labels"]
    assert x.shape[1:] == shape and x.dtype == np.float32 and len(x) == len(labels) == 1437
    assert 0.0 <= x.min() and x.max() <= 1.0 and labels.dtype == np.int64
    test = np.load(get_example(name).data_path)["x"].reshape(-1, 64)
    train_rows = {row.tobytes() for row in x.reshape(-1, 64)}
    assert sum(row.tobytes() in train_rows for row in test) < len(test) // 10  # a few identical scans at most


def test_user_model_needs_training_data(tmp_path):
    user = load_model(get_example("digits-cnn").weights_path)
    recipe = Recipe(prune=PruneSpec(0.5), recovery=RecoverySpec("finetune", **FAST))
    with pytest.raises(CompressionError, match="pass --train-data FILE.npz"):
        apply_recipe(user, recipe)
    unlabeled = tmp_path / "unlabeled.npz"
    np.savez(unlabeled, x=np.zeros((4, 1, 8, 8), np.float32))
    with pytest.raises(CompressionError, match="labels"):
        apply_recipe(user, recipe, train_data=unlabeled)
    split = recovery_data(load_example("digits-cnn"))
    labeled = tmp_path / "train.npz"
    np.savez(labeled, x=split["inputs"]["x"], labels=split["labels"])
    result = apply_recipe(user, recipe, train_data=str(labeled))
    assert any(w.code == "recovery" and "512 training samples" in w.message for w in result.warnings)


def test_onnx_handle_gives_clear_error():
    handle = load_example("digits-cnn", backend="onnx")
    with pytest.raises(CompressionError, match="recovery needs a torch model: open the .safetensors/.pt form"):
        apply_recipe(handle, Recipe(prune=PruneSpec(0.5), recovery=RecoverySpec("finetune", **FAST)))


# --- fine-tuning and distillation --------------------------------------------------------------------------

def test_finetune_keeps_unstructured_sparsity_and_recovers(cnn, test_set):
    prune = PruneSpec(0.8)  # 80% global: the drop is visible (about 5 points)
    pruned = apply_recipe(cnn, Recipe(prune=prune))
    tuned = apply_recipe(cnn, Recipe(prune=prune, recovery=RecoverySpec("finetune", **FAST)))
    before, after = zero_masks(pruned.handle.module), zero_masks(tuned.handle.module)
    assert all(np.array_equal(before[n], after[n]) for n in before)  # the same weights, exactly
    assert [r.achieved for r in tuned.layers] == [r.achieved for r in pruned.layers]
    assert [r.params_after for r in tuned.layers] == [r.params_after for r in pruned.layers]
    acc_pruned, acc_tuned = accuracy(pruned.handle.module, test_set), accuracy(tuned.handle.module, test_set)
    assert acc_tuned >= acc_pruned - 0.005
    assert acc_tuned >= 0.90 and acc_tuned > acc_pruned
    note = next(w for w in tuned.warnings if w.code == "recovery")
    assert note.control == "recovery" and "finetune: 1 epoch on 512" in note.message


def test_two_four_masks_survive_training(cnn):
    recipe = Recipe(prune=PruneSpec(0.5, method="2:4"), recovery=RecoverySpec("finetune", **FAST))
    pruned, tuned = apply_recipe(cnn, Recipe(prune=recipe.prune)), apply_recipe(cnn, recipe)
    before, after = zero_masks(pruned.handle.module), zero_masks(tuned.handle.module)
    assert all(np.array_equal(before[n], after[n]) for n in before)


def test_distillation_improves_over_pruned_only(cnn, test_set):
    prune = PruneSpec(0.8)
    acc_pruned = accuracy(apply_recipe(cnn, Recipe(prune=prune)).handle.module, test_set)
    distilled = apply_recipe(cnn, Recipe(prune=prune, recovery=RecoverySpec("distill", epochs=2, max_samples=512)))
    assert accuracy(distilled.handle.module, test_set) > acc_pruned
    assert any(w.code == "recovery" and w.message.startswith("distill") for w in distilled.warnings)


def test_structured_pruning_recovers_to_near_baseline(cnn, test_set):
    baseline = accuracy(cnn.module, test_set)
    prune = PruneSpec(0.5, method="l1-structured")
    pruned = apply_recipe(cnn, Recipe(prune=prune))
    tuned = apply_recipe(cnn, Recipe(prune=prune, recovery=RecoverySpec("finetune", epochs=3)))
    assert accuracy(pruned.handle.module, test_set) < baseline - 0.05  # a visible drop without recovery
    assert accuracy(tuned.handle.module, test_set) >= baseline - 0.02
    assert [r.achieved for r in tuned.layers] == [r.achieved for r in pruned.layers]
    assert sum(p.numel() for p in tuned.handle.module.parameters()) < sum(p.numel() for p in cnn.module.parameters())


def test_recovery_then_quantization(cnn, test_set):
    recipe = Recipe(prune=PruneSpec(0.8), recovery=RecoverySpec("finetune", **FAST),
                    quantize=QuantSpec("sim", bits=8, per_channel=True))
    stages = []
    result = apply_recipe(cnn, recipe, progress=lambda e: stages.append(e.stage))
    assert stages.index("prune") < stages.index("recover") < stages.index("quantize")
    assert accuracy(result.handle.module, test_set) >= 0.90


def test_deterministic_and_leaves_inputs_alone(cnn):
    original = {k: v.clone() for k, v in cnn.module.state_dict().items()}
    recipe = Recipe(prune=PruneSpec(0.5), recovery=RecoverySpec("distill", **FAST))
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    a = apply_recipe(cnn, recipe).handle.module.state_dict()
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's random stream is untouched
    b = apply_recipe(cnn, recipe).handle.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(v, cnn.module.state_dict()[k]) for k, v in original.items())  # teacher unchanged
    assert not cnn.module.training


def test_recover_restores_mode_and_flags(cnn):
    import copy

    student = copy.deepcopy(cnn.module).eval()
    student.fc1.weight.requires_grad_(False)
    events = []
    recover(student, None, RecoverySpec("finetune", epochs=2, max_samples=128), recovery_data(cnn),
            progress=events.append)
    assert not student.training and not student.fc1.weight.requires_grad
    fractions = [e.fraction for e in events if e.stage == "recover"]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert "loss" in events[-1].text and "epoch 2/2" in events[-1].text


def test_cancel_during_recovery(cnn):
    cancel = Cancel()
    seen = []

    def progress(event):
        seen.append(event.stage)
        if event.stage == "recover":
            cancel.set()

    recipe = Recipe(prune=PruneSpec(0.5), recovery=RecoverySpec("finetune", epochs=5))
    with pytest.raises(JobCancelled):
        apply_recipe(cnn, recipe, progress=progress, cancel=cancel)
    assert seen.count("recover") == 1


def test_training_data_must_match_labels(cnn):
    import copy

    data = recovery_data(cnn)
    bad = {"inputs": data["inputs"], "labels": data["labels"][:10]}
    with pytest.raises(CompressionError, match="labels"):
        recover(copy.deepcopy(cnn.module), None, RecoverySpec("finetune", **FAST), bad)
    with pytest.raises(CompressionError, match="teacher"):
        recover(copy.deepcopy(cnn.module), None, RecoverySpec("distill", **FAST), data)


def test_transient_norm_is_folded_away(cnn):
    import copy

    student = copy.deepcopy(cnn.module)
    keys = {k: v.shape for k, v in student.state_dict().items()}
    student.conv2.weight.data[0, 0] = 0.0  # zeros survive the fold (each channel is only rescaled)
    recover(student, None, RecoverySpec("finetune", epochs=1, max_samples=256), recovery_data(cnn), normalize=True)
    assert {k: v.shape for k, v in student.state_dict().items()} == keys
    assert all(not m._forward_hooks for m in student.modules())
    assert torch.count_nonzero(student.conv2.weight[0, 0]) == 0
    assert all(torch.isfinite(p).all() for p in student.parameters())


def test_recover_rejects_onnx_models():
    onnx_model = load_example("digits-cnn", backend="onnx").onnx_model
    with pytest.raises(CompressionError, match="needs a torch model"):
        recover(onnx_model, None, RecoverySpec("finetune", **FAST), {})
