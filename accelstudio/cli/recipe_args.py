"""The recipe flags shared by the commands that take a recipe (`apply`, `run`): --recipe FILE, then flags that
override its fields, and --train-data for accuracy recovery; and the data flags they share (--calib,
--input-shape, --allow-train-overlap)."""

from __future__ import annotations

import argparse

from accelstudio.core.errors import RecipeError
from accelstudio.core.recipe import CALIBRATIONS, PRUNE_METHODS, PRUNE_SCOPES, QUANT_MODES, WEIGHT_TYPES, Recipe, \
    load_recipe


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --recipe and the prune/quantize flags to `parser`."""
    g = parser.add_argument_group("recipe", "a recipe file and/or flags that override its fields")
    g.add_argument("--recipe", metavar="FILE", help="recipe JSON; the flags below override its fields")
    g.add_argument("--prune", type=float, metavar="AMOUNT", help="fraction to prune, 0-0.99")
    g.add_argument("--prune-method", choices=PRUNE_METHODS, help="default l1-unstructured")
    g.add_argument("--prune-scope", choices=PRUNE_SCOPES, help="global (one ranking) or layer (each layer alike)")
    g.add_argument("--quantize", metavar="MODE",
                   help=f"one of {', '.join(m for m in QUANT_MODES if m != 'sim')} or sim-N (N = 2..8 bits)")
    g.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=None,
                   help="per-channel weight scales (recommended for int8 on CPUs without VNNI)")
    g.add_argument("--weight-type", choices=WEIGHT_TYPES)
    g.add_argument("--calibration", choices=CALIBRATIONS, help="static-int8 activation range method")
    g.add_argument("--calib-samples", type=int, metavar="N", help="calibration samples to use")
    g.add_argument("--exclude", nargs="+", action="extend", metavar="LAYER",
                   help="layers left untouched by pruning and quantization")
    r = g.add_mutually_exclusive_group()
    r.add_argument("--finetune", type=int, metavar="EPOCHS",
                   help="after pruning, fine-tune on labeled training data for EPOCHS epochs (0-50)")
    r.add_argument("--distill", type=int, metavar="EPOCHS",
                   help="after pruning, distill from the original model for EPOCHS epochs (0-50)")
    g.add_argument("--recovery-lr", type=float, metavar="LR", help="recovery learning rate (default 0.001)")
    g.add_argument("--train-data", metavar="FILE.npz",
                   help="labeled training data for --finetune/--distill: arrays named after the inputs (or x) "
                        "and labels; bundled examples use their own training split")


def add_data_arguments(parser: argparse.ArgumentParser, evaluates: bool = True) -> None:
    """Add --calib, --input-shape and (for commands that evaluate) --allow-train-overlap to `parser`."""
    g = parser.add_argument_group("data", "calibration data and the concrete input shapes")
    g.add_argument("--calib", metavar="FILE",
                   help="calibration data for static-int8: a .npz (arrays per input, or x) or an image folder"
                        + ("; default: a part split off --data that is never evaluated (bundled examples use "
                           "their training split)" if evaluates else "; bundled examples use their own"))
    g.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]D0xD1x...",
                   help="concrete shape of an input, e.g. x=1x3x640x640 (the name may be left out when the model "
                        "has one input; repeatable). Dims not given come from the data, else are guessed and "
                        "reported: images 224x224, token sequences 128")
    if evaluates:
        g.add_argument("--allow-train-overlap", action="store_true",
                       help="run even when --train-data shares samples with --data (refused otherwise); the run "
                            "records the overlap and a warning")


def shapes_from_args(args: argparse.Namespace) -> dict[str, list[int]]:
    """--input-shape values as {name: dims}; a shape given without a name is stored under "" until the model's
    single input is known (input_shapes.name_unnamed)."""
    from accelstudio.core.model.input_shapes import parse_input_shapes

    return {name: list(dims) for name, dims in parse_input_shapes(getattr(args, "input_shape", []) or []).items()}


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The recipe file (or the identity) with the flags applied; validated (RecipeError names the field)."""
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
        quant.update(parse_quant_mode(args.quantize))
    for key in ("per_channel", "weight_type", "calibration", "calib_samples"):
        if getattr(args, key) is not None:
            quant[key] = getattr(args, key)
    if args.exclude:
        prune["exclude"] = sorted(set(prune["exclude"]) | set(args.exclude))
        quant["exclude"] = sorted(set(quant["exclude"]) | set(args.exclude))
    _apply_recovery_flags(args, data["recovery"])
    return Recipe.from_dict(data)


def _apply_recovery_flags(args: argparse.Namespace, recovery: dict) -> None:
    for method in ("finetune", "distill"):
        epochs = getattr(args, method, None)
        if epochs is not None:
            recovery["method"], recovery["epochs"] = method, epochs
    if getattr(args, "recovery_lr", None) is not None:
        recovery["lr"] = args.recovery_lr
    if getattr(args, "train_data", None) and recovery["method"] == "none":
        raise RecipeError("recovery.method", "--train-data is only used by --finetune or --distill; add one")


def parse_quant_mode(text: str) -> dict:
    """'dynamic-int8' -> {"mode": ..., "bits": 8}; 'sim-4' -> {"mode": "sim", "bits": 4}."""
    if text.startswith("sim-"):
        try:
            return {"mode": "sim", "bits": int(text[4:])}
        except ValueError:
            raise RecipeError("quantize.mode", f"'{text}': write sim-N with N the bit width, e.g. sim-4") from None
    if text not in QUANT_MODES or text == "sim":
        allowed = ", ".join(m for m in QUANT_MODES if m != "sim") + ", sim-N"
        raise RecipeError("quantize.mode", f"got {text!r}; allowed: {allowed}")
    return {"mode": text, "bits": 8}
