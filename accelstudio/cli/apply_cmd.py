"""`accelstudio apply`: prune and/or quantize a model with a recipe and write the result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from accelstudio.cli.model_args import UsageError, add_model_arguments, model_from_args
from accelstudio.cli.recipe_args import add_data_arguments, add_recipe_arguments, recipe_from_args
from accelstudio.core.recipe import Recipe

DESCRIPTION = """\
Prune, then quantize, a model and write it to --out (.onnx, .pt TorchScript or .safetensors).
Flags override the fields of --recipe FILE. A recipe JSON is written beside the output as <stem>.recipe.json.
The model is opened and transformed in a separate worker process (a trusted file's code runs only there),
with --timeout per stage and --memory-limit, as `accelstudio run` does.

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
    add_model_arguments(p)
    p.add_argument("--out", required=True, metavar="PATH", help="output file: .onnx, .pt or .safetensors")
    add_recipe_arguments(p)
    add_data_arguments(p, evaluates=False)
    p.add_argument("--trust", action="store_true",
                   help="allow formats that can run code when loaded (TorchScript, torch.export, pickle)")
    p.add_argument("--backend", choices=("torch", "onnx"), help="form to transform (see above)")
    p.add_argument("--architecture", metavar="NAME", help="bundled architecture for a bare weights file")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help="per-stage time limit")
    p.add_argument("--memory-limit", type=int, default=8192, metavar="MB", help="worker memory cap (0 = none)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(func=run_apply)


def run_apply(args: argparse.Namespace) -> int:
    """Build the request, compress and write the model in a worker process, print the report."""
    from accelstudio.worker.client import execute_apply
    from accelstudio.worker.errors import WorkerFailedError

    request = build_request(args)
    if args.timeout <= 0 or args.memory_limit < 0:
        raise UsageError("--timeout must be > 0 and --memory-limit >= 0")
    try:
        document = execute_apply(request, on_message=_print_warnings, timeout_s=args.timeout,
                                 memory_limit_mb=args.memory_limit)
    except WorkerFailedError as exc:
        if args.debug and exc.child_traceback:
            print(exc.child_traceback, file=sys.stderr)
        raise
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(format_report(document))
    return 0


def build_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe file (or the identity) with the command-line flags applied; validated."""
    return recipe_from_args(args)


def build_request(args: argparse.Namespace):
    """The ApplyRequest the command line describes (the recipe validated, the model named once)."""
    from accelstudio.cli.recipe_args import shapes_from_args
    from accelstudio.core.compress.apply_file import ApplyRequest
    from accelstudio.core.compress.export import EXPORT_FORMATS
    from accelstudio.core.errors import CompressionError

    recipe = build_recipe(args)
    out = Path(args.out)
    if out.suffix.lower() not in EXPORT_FORMATS:
        raise CompressionError(f"--out {out}: unknown output format '{out.suffix or '(none)'}'; "
                               f"allowed extensions: {', '.join(EXPORT_FORMATS)}")
    return ApplyRequest(model=model_from_args(args), out=args.out,
                        recipe=recipe, trust=args.trust, backend=args.backend, architecture=args.architecture,
                        input_shapes=shapes_from_args(args), calib=args.calib, train_data=args.train_data)


def _print_warnings(msg) -> None:
    """Print the input dims that were guessed, as the worker reports them."""
    if msg.type == "progress" and msg.stage == "shapes":
        for note in msg.partial.get("warnings", ()):
            print(f"warning: {note}", file=sys.stderr)


def format_report(document: dict) -> str:
    """Warnings, the per-layer sparsity table and the files written (from apply_to_file's report), as printed
    by `accelstudio apply`."""
    lines = [f"model: {document['model']} ({document['backend']})   recipe: {document['description']}"]
    for w in document["warnings"]:
        lines.append(f"warning [{w['control']}]: {w['message']}" + (f"\n    -> {w['advice']}" if w["advice"] else ""))
    layers = document["layers"]
    if layers:
        unit = "channels removed" if document["recipe"]["prune"]["method"] == "l1-structured" else "zeros"
        rows = [("layer", "requested%", "achieved%", "params before", "params after")]
        rows += [(r["name"], f"{100 * r['requested']:.1f}", f"{100 * r['achieved']:.1f}", f"{r['params_before']:,}",
                  f"{r['params_after']:,}") for r in layers]
        before = sum(r["params_before"] for r in layers)
        after = sum(r["params_after"] for r in layers)
        rows.append(("total", "", "", f"{before:,}", f"{after:,}"))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines.append(f"pruning ({unit}; params after = "
                     + ("remaining parameters)" if unit != "zeros" else "nonzero parameters)"))
        for k, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
            if k == 0 or k == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
    for path in document["outputs"]:
        lines.append(f"wrote {path}")
    return "\n".join(lines)
