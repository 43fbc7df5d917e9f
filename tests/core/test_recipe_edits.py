"""Per-layer edit rules and the quantization grid, called directly (no window)."""

from __future__ import annotations

import pytest

from accelstudio.core.errors import RecipeError
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe, RecoverySpec
from accelstudio.core.recipe_edits import (MODEL_KIND_OTHER, fit_recipe_to_model, grid_setting, keep_known_layers,
                                           with_override, with_prune_excluded, with_quant_excluded)


def _recipe(**prune) -> Recipe:
    return Recipe(prune=PruneSpec(amount=0.3, **prune), quantize=QuantSpec(mode="dynamic-int8", exclude=("fc3",)))


def test_override_sets_rounded_amount_and_lifts_an_exclusion():
    recipe = _recipe(exclude=("fc1", "fc2"))
    out = with_override(recipe, ["fc1"], 0.123456)
    assert out.prune.overrides == {"fc1": 0.1235}
    assert out.prune.exclude == ("fc2",)
    out.validate()
    assert recipe.prune.exclude == ("fc1", "fc2")  # the input is a frozen value, never changed


def test_clearing_an_override_keeps_exclusions_and_other_overrides():
    recipe = _recipe(overrides={"fc1": 0.5, "fc2": 0.6}, exclude=("fc4",))
    out = with_override(recipe, ["fc1", "missing"], None)
    assert out.prune.overrides == {"fc2": 0.6} and out.prune.exclude == ("fc4",)


def test_prune_exclusion_drops_the_override_and_include_restores_nothing_else():
    recipe = _recipe(overrides={"fc1": 0.5, "fc2": 0.6})
    excluded = with_prune_excluded(recipe, ["fc1", "fc1"], True)
    assert excluded.prune.exclude == ("fc1",) and excluded.prune.overrides == {"fc2": 0.6}
    excluded.validate()  # never both overridden and excluded
    included = with_prune_excluded(excluded, ["fc1"], False)
    assert included.prune.exclude == () and included.prune.overrides == {"fc2": 0.6}


def test_quant_exclusion_toggles_without_duplicates_and_keeps_order():
    recipe = _recipe()
    out = with_quant_excluded(recipe, ["fc1", "fc3", "fc2"], True)
    assert out.quantize.exclude == ("fc3", "fc1", "fc2")
    assert with_quant_excluded(out, ["fc3"], False).quantize.exclude == ("fc1", "fc2")
    assert out.prune == recipe.prune


def test_keep_known_layers_drops_settings_for_missing_layers():
    recipe = _recipe(overrides={"a": 0.5, "gone": 0.6}, exclude=("b", "lost"))
    out = keep_known_layers(recipe, {"a", "b", "fc3"})
    assert out.prune.overrides == {"a": 0.5} and out.prune.exclude == ("b",)
    assert out.quantize.exclude == ("fc3",)
    assert keep_known_layers(recipe, set()).quantize.exclude == ()


def test_fit_to_a_torch_model_only_drops_unknown_layers():
    recipe = Recipe(prune=PruneSpec(amount=0.3, method="l1-structured", overrides={"gone": 0.5}),
                    recovery=RecoverySpec(method="finetune"))
    fitted, resets = fit_recipe_to_model(recipe, {"fc1"}, "torch")
    assert fitted.prune.overrides == {} and fitted.prune.method == "l1-structured"
    assert fitted.recovery.method == "finetune"
    assert resets == ["dropped 1 per-layer setting(s) naming layers this model lacks"]


def test_fit_to_an_onnx_graph_turns_off_what_needs_torch():
    recipe = Recipe(prune=PruneSpec(amount=0.3, method="l1-structured"), recovery=RecoverySpec(method="distill"))
    fitted, resets = fit_recipe_to_model(recipe, {"fc1"}, MODEL_KIND_OTHER)
    assert fitted.prune.method == "l1-unstructured" and fitted.recovery.method == "none"
    assert len(resets) == 2 and "structured" in resets[0] and "recovery" in resets[1]
    fitted.validate()
    assert fit_recipe_to_model(fitted, {"fc1"}, MODEL_KIND_OTHER) == (fitted, [])


@pytest.mark.parametrize("quant, grid", [
    (QuantSpec(), None),
    (QuantSpec(mode="fp16"), None),
    (QuantSpec(mode="bf16", per_channel=True), None),
    (QuantSpec(mode="dynamic-int8", per_channel=True), (8, True, True)),
    (QuantSpec(mode="static-int8", weight_type="quint8"), (8, False, False)),
    (QuantSpec(mode="weight-int8", symmetric=False), (8, False, False)),  # weight-only honours the choice
    (QuantSpec(mode="weight-int4", per_channel=True), (4, True, True)),
    (QuantSpec(mode="sim", bits=3, per_channel=True, symmetric=False), (3, True, False)),
])
def test_grid_setting_per_mode(quant, grid):
    assert grid_setting(quant) == grid


def test_grid_setting_rejects_an_unknown_mode():
    with pytest.raises(RecipeError, match="quantize.mode"):
        grid_setting(QuantSpec(mode="int3"))
