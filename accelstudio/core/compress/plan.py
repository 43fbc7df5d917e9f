"""The steps a recipe takes on a model, planned once for the job pipeline and for `accelstudio apply`.

A recipe runs on the form of the model that will be run or written: a torch model measured on ONNX Runtime,
or written as an ONNX file with quantization, is pruned (and recovered) as a torch module, since structured
pruning and training need it, exported to ONNX in memory, and then quantized with ONNX Runtime's quantizers,
because quantized torch modules do not export. A model already in its target form takes the whole recipe at
once; an identity recipe on the target form takes no step at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from accelstudio.core.errors import CompressionError
from accelstudio.core.progress import CancelToken, ProgressCallback, check_cancel
from accelstudio.core.recipe import QuantSpec, Recipe

FORMS = ("torch", "onnx")


@dataclass(frozen=True)
class PlanStep:
    """One step: "compress" applies `recipe` (part of the plan's recipe) to the model in `form`; "export"
    turns the torch form into the ONNX form."""

    action: str
    form: str
    recipe: Recipe = field(default_factory=Recipe)

    def describe(self) -> str:
        """A few words: "prune in torch", "export to ONNX", "quantize in ONNX"."""
        if self.action == "export":
            return "export to ONNX"
        words = [w for w, on in (("prune", self.recipe.prune.active), ("recover", self.recipe.recovery.active),
                                 ("quantize", self.recipe.quantize.active)) if on]
        return f"{' and '.join(words) or 'copy'} in {'ONNX' if self.form == 'onnx' else 'torch'}"


@dataclass(frozen=True)
class CompressionPlan:
    """The steps that take a model from its `source` form to its `target` form with `recipe` applied."""

    recipe: Recipe
    source: str
    target: str
    steps: tuple[PlanStep, ...]

    def describe(self) -> str:
        """The steps in words, e.g. "prune in torch, export to ONNX, quantize in ONNX" ("no change")."""
        return ", ".join(step.describe() for step in self.steps) or "no change"

    @property
    def splits(self) -> bool:
        """True when the recipe is split between the torch and the ONNX form."""
        return any(step.action == "export" for step in self.steps)


def plan_compression(recipe: Recipe, source: str, target: str) -> CompressionPlan:
    """The plan for a model in form `source` ("torch" or "onnx") that ends in form `target`; CompressionError
    when there is no way (an ONNX model cannot become a torch module)."""
    for form in (source, target):
        if form not in FORMS:
            raise CompressionError(f"unknown model form '{form}'; expected one of {', '.join(FORMS)}")
    if source == target:
        steps = () if recipe.is_identity else (PlanStep("compress", source, recipe),)
        return CompressionPlan(recipe, source, target, steps)
    if source == "onnx":
        raise CompressionError("an ONNX model cannot be turned into a torch module; keep the ONNX form")
    steps: list[PlanStep] = []
    if recipe.prune.active or recipe.recovery.active:  # in torch; quantization follows on the ONNX form
        steps.append(PlanStep("compress", "torch", replace(recipe, quantize=QuantSpec())))
    steps.append(PlanStep("export", "torch"))
    if recipe.quantize.active:
        steps.append(PlanStep("compress", "onnx", Recipe(quantize=recipe.quantize)))
    return CompressionPlan(recipe, source, target, tuple(steps))


def run_plan(plan: CompressionPlan, handle, *, calib: dict[str, Any] | None = None, train_data=None,
             progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
             guessed_dims: tuple[str, ...] = ()):
    """Run `plan` on `handle` (in the plan's source form) and return one CompressionResult: the final handle,
    the pruning reports and every step's warnings. `calib` and `train_data` go to apply_recipe; a TorchScript
    model that cannot be exported gets a plain sentence naming `guessed_dims` (the input dims that were
    guessed). Raises what apply_recipe raises."""
    from accelstudio.core.compress.apply import CompressionResult, apply_recipe

    if handle.backend != plan.source:
        raise CompressionError(f"the plan starts from the {plan.source} form but the model is {handle.backend}")
    current, layers, warnings = handle, (), ()
    for step in plan.steps:
        check_cancel(cancel)
        if step.action == "export":
            current = _exported(current, handle.source_format, guessed_dims)
            continue
        res = apply_recipe(current, step.recipe, calib=calib, progress=progress, cancel=cancel,
                           train_data=train_data)
        current, layers = res.handle, res.layers or layers
        warnings = tuple(warnings) + tuple(res.warnings)
    if plan.splits:  # the final model records the whole recipe, not its last step's part
        current = replace(current, metadata=dict(current.metadata, recipe=plan.recipe.to_dict()))
    return CompressionResult(current, tuple(layers), tuple(warnings), plan.recipe)


def _exported(handle, source_format: str, guessed: tuple[str, ...] = ()):
    """The ONNX form of a torch handle; a TorchScript model that cannot be exported gets a plain sentence."""
    from accelstudio.core.compress.export import to_onnx_handle

    try:
        return to_onnx_handle(handle)
    except CompressionError as exc:
        if source_format != "torchscript":
            raise
        from accelstudio.core.compress.feasibility import torchscript_export_error

        raise torchscript_export_error(exc.__context__ or exc, guessed) from None
