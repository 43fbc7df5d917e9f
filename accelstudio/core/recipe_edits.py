"""Per-layer edits of a recipe and what the quantization grid is: plain functions the GUI's commands call.

An overridden layer is never also excluded from pruning (and the other way round); a recipe carried over to a
newly opened model loses the settings that model cannot use, and says so in one sentence per thing reset.
"""

from __future__ import annotations

from dataclasses import replace

from accelstudio.core.quant_modes import quant_mode
from accelstudio.core.recipe import QuantSpec, Recipe

MODEL_KIND_OTHER = "other"  # a user's model that is not torch (an ONNX graph): no channels to remove, no training


def keep_known_layers(recipe: Recipe, names: set[str]) -> Recipe:
    """The recipe without overrides/exclusions for layers not in `names`."""
    p, q = recipe.prune, recipe.quantize
    prune = replace(p, overrides={k: v for k, v in p.overrides.items() if k in names},
                    exclude=tuple(n for n in p.exclude if n in names))
    quant = replace(q, exclude=tuple(n for n in q.exclude if n in names))
    return replace(recipe, prune=prune, quantize=quant)


def fit_recipe_to_model(recipe: Recipe, names: set[str], kind: str) -> tuple[Recipe, list[str]]:
    """The recipe made valid for a newly opened model, and one sentence per thing reset: overrides and
    exclusions of layers it lacks; structured pruning and recovery when it is not a torch model (a user's ONNX
    graph cannot have channels removed or be trained; bundled examples switch to their torch form themselves)."""
    resets = []
    fitted = keep_known_layers(recipe, names)
    dropped = (len(recipe.prune.overrides) + len(recipe.prune.exclude) + len(recipe.quantize.exclude)
               - len(fitted.prune.overrides) - len(fitted.prune.exclude) - len(fitted.quantize.exclude))
    if dropped:
        resets.append(f"dropped {dropped} per-layer setting(s) naming layers this model lacks")
    if kind == MODEL_KIND_OTHER and fitted.prune.method == "l1-structured":
        fitted = replace(fitted, prune=replace(fitted.prune, method="l1-unstructured"))
        resets.append("structured pruning became l1-unstructured (this model is not a torch model)")
    if kind == MODEL_KIND_OTHER and fitted.recovery.method != "none":
        fitted = replace(fitted, recovery=replace(fitted.recovery, method="none"))
        resets.append("accuracy recovery was turned off (it trains a torch model; this one is not)")
    return fitted, resets


def with_override(recipe: Recipe, names: list[str], amount: float | None) -> Recipe:
    """Give `names` their own pruning amount (None clears it); an overridden layer is no longer excluded."""
    p = recipe.prune
    overrides = dict(p.overrides)
    for name in names:
        if amount is None:
            overrides.pop(name, None)
        else:
            overrides[name] = round(float(amount), 4)
    exclude = tuple(n for n in p.exclude if amount is None or n not in names)
    return replace(recipe, prune=replace(p, overrides=overrides, exclude=exclude))


def with_prune_excluded(recipe: Recipe, names: list[str], excluded: bool) -> Recipe:
    """Exclude `names` from pruning (or include them again); an excluded layer loses its override."""
    p = recipe.prune
    exclude = _toggle(p.exclude, names, excluded)
    overrides = {k: v for k, v in p.overrides.items() if not (excluded and k in names)}
    return replace(recipe, prune=replace(p, exclude=exclude, overrides=overrides))


def with_quant_excluded(recipe: Recipe, names: list[str], excluded: bool) -> Recipe:
    """Keep `names` in float32 when quantizing (or quantize them again)."""
    q = recipe.quantize
    return replace(recipe, quantize=replace(q, exclude=_toggle(q.exclude, names, excluded)))


def _toggle(current: tuple[str, ...], names: list[str], on: bool) -> tuple[str, ...]:
    if on:
        return tuple(dict.fromkeys(tuple(current) + tuple(names)))  # in order, each name once
    return tuple(n for n in current if n not in names)


def grid_setting(quant: QuantSpec) -> tuple[int, bool, bool] | None:
    """(bits, per_channel, symmetric) of the integer grid the weights land on, or None for float modes.
    Modes that honour the symmetric choice (weight-only, simulated) follow the recipe; the int8 kernel modes'
    grid is symmetric for signed (qint8) weights."""
    mode = quant_mode(quant.mode)
    if mode.simulated:
        return quant.bits, quant.per_channel, quant.symmetric
    if mode.bits is None:
        return None
    if mode.symmetric_allowed:
        symmetric = quant.symmetric
    else:
        symmetric = quant.weight_type == "qint8" if mode.weight_type_allowed else True
    return mode.bits, quant.per_channel, symmetric
