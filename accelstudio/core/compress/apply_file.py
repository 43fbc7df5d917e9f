"""Compress a model with a recipe and write the result to a file: what `accelstudio apply` asks of a worker.

It runs inside the worker process (job kind "apply"), so a trusted file's code never runs in the command's own
process. The form the recipe works on follows the output (core/compress/plan.py): an .onnx output with a
quantization mode is pruned in torch when it must be, exported, then quantized with ONNX Runtime; .pt and
.safetensors outputs stay in torch; `backend` forces a form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from accelstudio.core.errors import CompressionError
from accelstudio.core.progress import CancelToken, ProgressCallback, ProgressEvent
from accelstudio.core.recipe import Recipe


@dataclass(frozen=True)
class ApplyRequest:
    """What to write: `model` (a file or "example:NAME") compressed with `recipe` into `out`. `backend` forces
    the form transformed ("torch" or "onnx"); `architecture` names the bundled architecture of a bare weights
    file; `input_shapes` the concrete input dims by name; `calib` a calibration data set for static
    quantization; `train_data` recovery's labeled training set."""

    model: str
    out: str
    recipe: Recipe = field(default_factory=Recipe)
    trust: bool = False
    backend: str | None = None
    architecture: str | None = None
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    calib: str | None = None
    train_data: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recipe": self.recipe.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ApplyRequest":
        return cls(**{**data, "recipe": Recipe.from_dict(data.get("recipe") or {})})


def apply_to_file(request: ApplyRequest, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> dict[str, Any]:
    """Open the model, check the recipe fits it, run the compression plan and write `request.out` (and its
    recipe JSON). Guessed input dims are reported as a "shapes" progress event whose partial holds
    {"warnings": [note, ...]}. Returns the report: model, backend (the form written), recipe, description,
    outputs (paths written), layers (pruning reports), warnings."""
    from accelstudio.core.compress.export import export_model
    from accelstudio.core.compress.plan import plan_compression, run_plan

    recipe, out = request.recipe, Path(request.out)
    report = progress or (lambda _event: None)
    report(ProgressEvent("load", 0.0, f"opening {request.model}"))
    handle = _open(request, _preferred_backend(request, out))
    _check_feasible(handle, recipe, out)
    handle, shapes = _shaped(request, handle)
    if handle.backend == "torch" and shapes.guessed:
        report(ProgressEvent("shapes", 1.0, "input dims guessed", {"warnings": list(shapes.guessed)}))
    calib = _read_calib(request, handle, shapes)
    target = "onnx" if _split_to_onnx(request, handle, out) else handle.backend
    plan = plan_compression(recipe, handle.backend, target)
    try:
        result = run_plan(plan, handle, calib=calib, train_data=request.train_data, progress=progress,
                          cancel=cancel, guessed_dims=tuple(shapes.guessed_dims))
        written = export_model(result.handle, out, recipe)
    except CompressionError as exc:
        if handle.source_format == "torchscript" and out.suffix.lower() == ".onnx":
            from accelstudio.core.compress.feasibility import torchscript_export_error

            raise torchscript_export_error(exc.__context__ or exc, shapes.guessed_dims) from None
        raise
    return {
        "model": handle.name, "backend": target, "recipe": recipe.to_dict(), "description": recipe.describe(),
        "outputs": [str(p) for p in written],
        "layers": [asdict(layer) for layer in result.layers],
        "warnings": [asdict(w) for w in result.warnings],
    }


def _preferred_backend(request: ApplyRequest, out: Path) -> str | None:
    if request.backend:
        return request.backend
    recipe = request.recipe
    structured = recipe.prune.active and recipe.prune.method == "l1-structured"
    needs_torch = structured or recipe.recovery.active  # recovery trains in torch
    return "onnx" if out.suffix.lower() == ".onnx" and not needs_torch else "torch"


def _split_to_onnx(request: ApplyRequest, handle, out: Path) -> bool:
    return (out.suffix.lower() == ".onnx" and handle.backend == "torch" and request.recipe.quantize.active
            and request.backend != "torch")


def _open(request: ApplyRequest, backend: str | None):
    from accelstudio.core.model.loading import EXAMPLE_PREFIX, load_model, open_model

    ref = request.model
    if ref.startswith(EXAMPLE_PREFIX):
        return open_model(ref, trust=request.trust, backend=backend)
    handle = load_model(ref, trust=request.trust, architecture=request.architecture)
    if request.backend == "onnx" and handle.backend == "torch":
        from accelstudio.core.compress.export import to_onnx_handle

        return to_onnx_handle(handle)
    if request.backend == "torch" and handle.backend == "onnx":
        raise CompressionError(f"{ref}: an ONNX model cannot be transformed with the torch backend; drop --backend")
    return handle


def _check_feasible(handle, recipe: Recipe, out: Path) -> None:
    """Refuse, before any work, a recipe the model's format cannot take (feasibility.py); the runtime that
    would run the written file stands for the runtime."""
    from accelstudio.core.compress.feasibility import check_handle_feasible

    runtime = "onnxruntime" if out.suffix.lower() == ".onnx" or handle.backend == "onnx" else "torch"
    check_handle_feasible(handle, runtime, "cpu", recipe)


def _shaped(request: ApplyRequest, handle):
    """The handle declaring the concrete input dims (the request's, else the documented guesses): a torch
    model is traced and exported at these sizes. Returns (handle, shape plan)."""
    from accelstudio.core.model.input_shapes import plan_shapes, with_plan

    plan = plan_shapes(handle, 1, request.input_shapes)
    return with_plan(handle, plan), plan


def _read_calib(request: ApplyRequest, handle, shapes):
    """The calibration inputs, shaped as the plan says (an image folder is resized to it)."""
    if not request.calib:
        return None
    from accelstudio.core.data.datasets import load_dataset

    return load_dataset(request.calib, handle, max_samples=request.recipe.quantize.calib_samples,
                        plan=shapes).inputs
