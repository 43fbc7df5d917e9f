"""`accelstudio apply`: prune and/or quantize a model with a recipe and write the result."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from accelstudio.core.errors import AccelStudioError, RecipeError
from accelstudio.core.recipe import CALIBRATIONS, PRUNE_METHODS, PRUNE_SCOPES, QUANT_MODES, Recipe, load_recipe

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
calibration set. The final classifier is pruned like any other layer unless --exclude names it
(l1-structured never removes its outputs)."""


def register(subparsers) -> None:
    """Add the `apply` command."""
    p = subparsers.add_parser("apply", help="prune and quantize a model with a recipe and write it",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model file or example:NAME")
    p.add_argument("--example", metavar="NAME", help="use a bundled example instead of a file")
    p.add_argument("--out", required=True, metavar="PATH", help="output file: .onnx, .pt or .safetensors")
    p.add_argument("--recipe", metavar="FILE", help="recipe JSON; the flags below override its fields")
    p.add_argument("--prune", type=float, metavar="AMOUNT", help="fraction to prune, 0-0.99")
    p.add_argument("--prune-method", choices=PRUNE_METHODS, help="default l1-unstructured")
    p.add_argument("--prune-scope", choices=PRUNE_SCOPES, help="global (one ranking) or layer (each layer alike)")
    p.add_argument("--quantize", metavar="MODE",
                   help=f"one of {', '.join(m for m in QUANT_MODES if m != 'sim')} or sim-N (N = 2..8 bits)")
    p.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=None,
                   help="per-channel weight scales (recommended for int8 on CPUs without VNNI)")
    p.add_argument("--weight-type", choices=("qint8", "quint8"))
    p.add_argument("--calibration", choices=CALIBRATIONS, help="static-int8 activation range method")
    p.add_argument("--calib-samples", type=int, metavar="N", help="calibration samples to use")
    p.add_argument("--calib", metavar="FILE.npz", help="calibration inputs for static-int8")
    p.add_argument("--exclude", nargs="+", action="extend", metavar="LAYER",
                   help="layers left untouched by pruning and quantization")
    p.add_argument("--trust", action="store_true",
                   help="allow formats that can run code when loaded (TorchScript, torch.export, pickle)")
    p.add_argument("--backend", choices=("torch", "onnx"), help="form to transform (see above)")
    p.add_argument("--architecture", metavar="NAME", help="bundled architecture for a bare weights file")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(func=run_apply)


def run_apply(args: argparse.Namespace) -> int:
    """Build the recipe, open the model, compress it, write it and print the report."""
    from accelstudio.core.compress import apply_recipe

    recipe = build_recipe(args)
    out = Path(args.out)
    handle = _open(args, _preferred_backend(args, recipe, out))
    calib = _read_calib(args, handle, recipe)
    if _split_to_onnx(args, handle, recipe, out):
        result, backend = _prune_then_onnx_quantize(handle, recipe, calib), "onnx"
    else:
        result, backend = apply_recipe(handle, recipe, calib), handle.backend
    from accelstudio.core.export import export_model

    written = export_model(result.handle, out, recipe)
    if args.json:
        print(json.dumps(_document(handle, recipe, backend, result, written), indent=2))
    else:
        print(format_report(handle.name, recipe, backend, result, written))
    return 0


def build_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe file (or the identity) with the command-line flags applied; validated."""
    data = (load_recipe(args.recipe) if args.recipe else Recipe()).to_dict()
    prune, quant = data["prune"], data["quantize"]
    if args.prune is not None:
        prune["amount"] = args.prune
    if args.prune_method:
        prune["method"] = args.prune_method
        if args.prune_method == "2:4" and args.prune is None and not prune["amount"]:
            prune["amount"] = 0.5
    if args.prune_scope:
        prune["scope"] = args.prune_scope
    if args.quantize:
        quant.update(_parse_mode(args.quantize))
    for flag, key in (("per_channel", "per_channel"), ("weight_type", "weight_type"),
                      ("calibration", "calibration"), ("calib_samples", "calib_samples")):
        if getattr(args, flag) is not None:
            quant[key] = getattr(args, flag)
    if args.exclude:
        prune["exclude"] = sorted(set(prune["exclude"]) | set(args.exclude))
        quant["exclude"] = sorted(set(quant["exclude"]) | set(args.exclude))
    return Recipe.from_dict(data)


def _parse_mode(text: str) -> dict:
    if text.startswith("sim-"):
        try:
            return {"mode": "sim", "bits": int(text[4:])}
        except ValueError:
            raise RecipeError("quantize.mode", f"'{text}': write sim-N with N the bit width, e.g. sim-4") from None
    if text not in QUANT_MODES or text == "sim":
        allowed = ", ".join(m for m in QUANT_MODES if m != "sim") + ", sim-N"
        raise RecipeError("quantize.mode", f"got {text!r}; allowed: {allowed}")
    return {"mode": text, "bits": 8}


def _preferred_backend(args, recipe: Recipe, out: Path) -> str | None:
    if args.backend:
        return args.backend
    structured = recipe.prune.active and recipe.prune.method == "l1-structured"
    return "onnx" if out.suffix.lower() == ".onnx" and not structured else "torch"


def _split_to_onnx(args, handle, recipe: Recipe, out: Path) -> bool:
    return (out.suffix.lower() == ".onnx" and handle.backend == "torch" and recipe.quantize.active
            and args.backend != "torch")


def _prune_then_onnx_quantize(handle, recipe: Recipe, calib):
    """Prune in torch, export to ONNX in memory, quantize with ONNX Runtime; one merged result."""
    from dataclasses import replace

    from accelstudio.core.compress import CompressionResult, apply_recipe
    from accelstudio.core.export import to_onnx_handle
    from accelstudio.core.recipe import PruneSpec, QuantSpec

    pruned = apply_recipe(handle, Recipe(prune=recipe.prune, quantize=QuantSpec()))
    quantized = apply_recipe(to_onnx_handle(pruned.handle), Recipe(prune=PruneSpec(), quantize=recipe.quantize),
                             calib)
    final = replace(quantized.handle, metadata=dict(quantized.handle.metadata, recipe=recipe.to_dict()))
    return CompressionResult(final, pruned.layers, pruned.warnings + quantized.warnings, recipe)


class UsageError(AccelStudioError):
    """The command line names no model, or names it twice."""

    category = "usage"


def _open(args, backend: str | None):
    if args.model and args.example:
        raise UsageError("give either MODEL or --example, not both")
    if not args.model and not args.example:
        raise UsageError("give a model file or --example NAME")
    ref = f"example:{args.example}" if args.example else args.model
    try:
        from accelstudio.core.loading import load_model, open_model
    except ModuleNotFoundError as exc:
        if exc.name != "accelstudio.core.loading":
            raise
        return _open_example_fallback(ref, backend)
    try:
        if args.architecture and not ref.startswith("example:"):
            return load_model(ref, trust=args.trust, architecture=args.architecture)
        return open_model(ref, trust=args.trust, backend=backend if ref.startswith("example:") else None)
    except KeyError as exc:
        raise UsageError(exc.args[0] if exc.args else str(exc)) from None


def _open_example_fallback(ref: str, backend: str | None):
    """Bundled examples only, for builds without the loading module."""
    if not ref.startswith("example:"):
        raise UsageError(f"{ref}: opening model files needs accelstudio.core.loading, missing from this build")
    import onnx
    from safetensors.torch import load_file

    from accelstudio.core.architectures import get_architecture
    from accelstudio.core.examples import get_example
    from accelstudio.core.model import InputSpec, ModelHandle

    try:
        info = get_example(ref.split(":", 1)[1])
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    arch = get_architecture(info.architecture)
    inputs = (InputSpec("x", (None,) + tuple(arch.input_shape[1:]), "float32", (0.0, 1.0)),)
    common = dict(inputs=inputs, architecture=arch.name, example=info.name, num_classes=arch.num_classes)
    if backend == "onnx":
        return ModelHandle("onnx", "onnx", onnx_model=onnx.load(str(info.onnx_path)), source=info.onnx_path, **common)
    module = arch.build()
    module.load_state_dict(load_file(str(info.weights_path)))
    return ModelHandle("torch", "safetensors", module=module.eval(), source=info.weights_path, **common)


def _read_calib(args, handle, recipe: Recipe):
    if not args.calib:
        return None
    from accelstudio.core.datasets import load_dataset

    return load_dataset(args.calib, handle, max_samples=recipe.quantize.calib_samples).inputs


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
