"""`accelstudio apply`: prune and/or quantize a model with a recipe and write the result."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from accelstudio.cli.recipe_args import add_data_arguments, add_recipe_arguments, recipe_from_args
from accelstudio.core.errors import AccelStudioError
from accelstudio.core.recipe import Recipe

DESCRIPTION = """\
Prune, then quantize, a model and write it to --out (.onnx, .pt TorchScript or .safetensors).
Flags override the fields of --recipe FILE. A recipe JSON is written beside the output as <stem>.recipe.json.

Which form of the model is transformed:
  * --out *.onnx with a quantization mode: quantization runs on the ONNX form with ONNX Runtime's quantizers,
    so the file holds ORT-native int8/fp16 operators. A bundled example is opened in its ONNX form; a torch
    model (or an example with l1-structured pruning, which needs torch) is pruned in torch, exported to ONNX,
    then quantized. --backend torch forces torch quantization (torch's quantized modules rarely export).
  * --out *.onnx without quantization: the model is pruned in its own form and written as ONNX.
  * --out *.pt / *.safetensors: the torch form (an example opens as torch); .safetensors only for float
    models whose layer widths still fit their architecture (not after l1-structured pruning: use .pt).
Calibration data for static-int8: --calib FILE.npz (one array per input, or `x`), else the example's own
calibration set. --finetune N / --distill N train the pruned model for N epochs before quantization (torch
form; the original model is the distillation teacher) on --train-data FILE.npz (arrays per input, or `x`,
plus `labels`), or on a bundled example's training split. The final classifier is pruned like any other
layer unless --exclude names it (l1-structured never removes its outputs)."""


def register(subparsers) -> None:
    """Add the `apply` command."""
    p = subparsers.add_parser("apply", help="prune and quantize a model with a recipe and write it",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model file or example:NAME")
    p.add_argument("--example", metavar="NAME", help="use a bundled example instead of a file")
    p.add_argument("--out", required=True, metavar="PATH", help="output file: .onnx, .pt or .safetensors")
    add_recipe_arguments(p)
    add_data_arguments(p, evaluates=False)
    p.add_argument("--trust", action="store_true",
                   help="allow formats that can run code when loaded (TorchScript, torch.export, pickle)")
    p.add_argument("--backend", choices=("torch", "onnx"), help="form to transform (see above)")
    p.add_argument("--architecture", metavar="NAME", help="bundled architecture for a bare weights file")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(func=run_apply)


def run_apply(args: argparse.Namespace) -> int:
    """Build the recipe, open the model, compress it, write it and print the report."""
    from accelstudio.core.compress.apply import apply_recipe

    from accelstudio.core.errors import CompressionError
    from accelstudio.core.compress.export import EXPORT_FORMATS

    recipe = build_recipe(args)
    out = Path(args.out)
    if out.suffix.lower() not in EXPORT_FORMATS:
        raise CompressionError(f"--out {out}: unknown output format '{out.suffix or '(none)'}'; "
                               f"allowed extensions: {', '.join(EXPORT_FORMATS)}")
    handle = _open(args, _preferred_backend(args, recipe, out))
    _check_feasible(handle, recipe, out)
    handle, plan = _shaped(args, handle)
    calib = _read_calib(args, handle, recipe, plan)
    train_data = args.train_data
    try:
        if _split_to_onnx(args, handle, recipe, out):
            result, backend = _prune_then_onnx_quantize(handle, recipe, calib, train_data), "onnx"
        else:
            result, backend = apply_recipe(handle, recipe, calib, train_data=train_data), handle.backend
        from accelstudio.core.compress.export import export_model

        written = export_model(result.handle, out, recipe)
    except CompressionError as exc:
        if handle.source_format == "torchscript" and out.suffix.lower() == ".onnx":
            from accelstudio.core.compress.feasibility import torchscript_export_error

            raise torchscript_export_error(exc.__context__ or exc, plan.guessed_dims) from None
        raise
    if args.json:
        print(json.dumps(_document(handle, recipe, backend, result, written), indent=2))
    else:
        print(format_report(handle.name, recipe, backend, result, written))
    return 0


def build_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe file (or the identity) with the command-line flags applied; validated."""
    return recipe_from_args(args)


def _preferred_backend(args, recipe: Recipe, out: Path) -> str | None:
    if args.backend:
        return args.backend
    structured = recipe.prune.active and recipe.prune.method == "l1-structured"
    needs_torch = structured or recipe.recovery.active  # recovery trains in torch
    return "onnx" if out.suffix.lower() == ".onnx" and not needs_torch else "torch"


def _split_to_onnx(args, handle, recipe: Recipe, out: Path) -> bool:
    return (out.suffix.lower() == ".onnx" and handle.backend == "torch" and recipe.quantize.active
            and args.backend != "torch")


def _prune_then_onnx_quantize(handle, recipe: Recipe, calib, train_data=None):
    """Prune (and recover) in torch, export to ONNX in memory, quantize with ONNX Runtime; one merged result."""
    from dataclasses import replace

    from accelstudio.core.compress.apply import CompressionResult, apply_recipe
    from accelstudio.core.compress.export import to_onnx_handle
    from accelstudio.core.recipe import PruneSpec, QuantSpec

    pruned = apply_recipe(handle, replace(recipe, quantize=QuantSpec()), train_data=train_data)
    quantized = apply_recipe(to_onnx_handle(pruned.handle), Recipe(prune=PruneSpec(), quantize=recipe.quantize),
                             calib)
    final = replace(quantized.handle, metadata=dict(quantized.handle.metadata, recipe=recipe.to_dict()))
    return CompressionResult(final, pruned.layers, pruned.warnings + quantized.warnings, recipe)


class UsageError(AccelStudioError):
    """The command line names no model, or names it twice."""

    category = "usage"


def _open(args, backend: str | None):
    from accelstudio.core.model.loading import load_model, open_model

    if args.model and args.example:
        raise UsageError("give either MODEL or --example, not both")
    if not args.model and not args.example:
        raise UsageError("give a model file or --example NAME")
    ref = f"example:{args.example}" if args.example else args.model
    if ref.startswith("example:"):
        return open_model(ref, trust=args.trust, backend=backend)
    handle = load_model(ref, trust=args.trust, architecture=args.architecture)
    if args.backend == "onnx" and handle.backend == "torch":
        from accelstudio.core.compress.export import to_onnx_handle

        return to_onnx_handle(handle)
    if args.backend == "torch" and handle.backend == "onnx":
        raise UsageError(f"{ref}: an ONNX model cannot be transformed with the torch backend; drop --backend")
    return handle


def _check_feasible(handle, recipe: Recipe, out: Path) -> None:
    """Refuse, before any work, a recipe the model's format cannot take (core/compress/feasibility.py); the runtime
    that would run the written file stands for the runtime."""
    from accelstudio.core.compress.feasibility import check_handle_feasible

    runtime = "onnxruntime" if out.suffix.lower() == ".onnx" or handle.backend == "onnx" else "torch"
    check_handle_feasible(handle, runtime, "cpu", recipe)


def _shaped(args, handle):
    """The handle declaring the concrete input dims (--input-shape, else the documented guesses, each printed
    as a warning): a torch model is traced and exported at these sizes. Returns (handle, plan)."""
    from accelstudio.cli.recipe_args import shapes_from_args
    from accelstudio.core.model.input_shapes import plan_shapes, with_plan

    plan = plan_shapes(handle, 1, shapes_from_args(args))
    if handle.backend == "torch":
        for note in plan.guessed:
            print(f"warning: {note}", file=sys.stderr)
    return with_plan(handle, plan), plan


def _read_calib(args, handle, recipe: Recipe, plan):
    """The --calib inputs, shaped as --input-shape says (an image folder is resized to it)."""
    if not args.calib:
        return None
    from accelstudio.core.data.datasets import load_dataset

    return load_dataset(args.calib, handle, max_samples=recipe.quantize.calib_samples, plan=plan).inputs


def _document(handle, recipe: Recipe, backend: str, result, written) -> dict:
    return {
        "model": handle.name, "backend": backend, "recipe": recipe.to_dict(), "description": recipe.describe(),
        "outputs": [str(p) for p in written],
        "layers": [asdict(layer) for layer in result.layers],
        "warnings": [asdict(w) for w in result.warnings],
    }


def format_report(name: str, recipe: Recipe, backend: str, result, written) -> str:
    """Warnings, the per-layer sparsity table and the files written, as printed by `accelstudio apply`."""
    lines = [f"model: {name} ({backend})   recipe: {recipe.describe()}"]
    for w in result.warnings:
        lines.append(f"warning [{w.control}]: {w.message}" + (f"\n    -> {w.advice}" if w.advice else ""))
    if result.layers:
        unit = "channels removed" if recipe.prune.method == "l1-structured" else "zeros"
        rows = [("layer", "requested%", "achieved%", "params before", "params after")]
        rows += [(r.name, f"{100 * r.requested:.1f}", f"{100 * r.achieved:.1f}", f"{r.params_before:,}",
                  f"{r.params_after:,}") for r in result.layers]
        before = sum(r.params_before for r in result.layers)
        after = sum(r.params_after for r in result.layers)
        rows.append(("total", "", "", f"{before:,}", f"{after:,}"))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines.append(f"pruning ({unit}; params after = "
                     + ("remaining parameters)" if unit != "zeros" else "nonzero parameters)"))
        for k, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
            if k == 0 or k == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
    for path in written:
        lines.append(f"wrote {path}")
    return "\n".join(lines)
