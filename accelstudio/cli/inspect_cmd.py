"""`accelstudio inspect`: the layer table of a model (parameters, bytes, dtype, FLOPs, sparsity) or its JSON."""

from __future__ import annotations

import argparse
import json
import sys

from accelstudio.cli.model_args import model_from_args
from accelstudio.core.errors import AccelStudioError
from accelstudio.core.model.input_shapes import parse_input_shapes
from accelstudio.core.model.inspect import inspect_model, summary_to_dict
from accelstudio.core.model.summary import ModelSummary
from accelstudio.core.units import format_bytes

__all__ = ["format_summary", "human_bytes", "open_handle", "parse_input_shapes", "register", "run_inspect"]


class UnknownExampleError(AccelStudioError):
    """A bundled example name that does not exist."""

    category = "unknown example"


def register(subparsers) -> None:
    """Add the `inspect` command."""
    p = subparsers.add_parser("inspect", help="list a model's layers: parameters, bytes, FLOPs, sparsity",
                              description="Show every layer with weights and the model's totals.")
    p.add_argument("model", nargs="?", help="model file (.onnx, .pt, .pt2, .safetensors, ...) or example:NAME")
    p.add_argument("--example", metavar="NAME", help="inspect a bundled example instead of a file")
    p.add_argument("--backend", choices=("torch", "onnx"), help="form of a bundled example to inspect")
    p.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]D0xD1x...",
                   help="input shape, e.g. x=1x3x32x32 (or 1x3x32x32 for a single-input model; repeatable)")
    p.add_argument("--batch", type=int, default=1, help="batch size for dynamic first dimensions (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument("--trust", action="store_true",
                   help="allow formats that can run code when loaded (TorchScript, torch.export, pickle)")
    p.add_argument("--architecture", metavar="NAME", help="bundled architecture for a bare weights file")
    p.set_defaults(func=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    """Open the model, inspect it and print the table or JSON."""
    handle = open_handle(args)
    shapes = parse_input_shapes(args.input_shape, [spec.name for spec in handle.inputs])
    summary = inspect_model(handle, shapes, batch=args.batch)
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary_to_dict(summary), indent=2))
    else:
        print(format_summary(summary))
    return 0


def open_handle(args: argparse.Namespace):
    """The ModelHandle named by MODEL or --example (unknown example names become UnknownExampleError)."""
    from accelstudio.core.model.loading import open_model

    ref = model_from_args(args)
    try:
        return open_model(ref, trust=args.trust, backend=args.backend, architecture=args.architecture)
    except KeyError as exc:
        raise UnknownExampleError(exc.args[0] if exc.args else str(exc)) from None


def human_bytes(n: int | None) -> str:
    """Sizes in decimal units, the one rule of accelstudio.core.units.format_bytes: 1536 -> '1.54 kB'."""
    return format_bytes(n)


def format_summary(summary: ModelSummary) -> str:
    """The aligned layer table and the totals, as printed by `accelstudio inspect`."""
    header = ("layer", "type", "weight shape", "params", "bytes", "dtype", "MFLOPs", "sparsity%")
    rows = [header]
    for layer in summary.layers:
        rows.append((
            layer.name or "(model)", layer.op_type, "x".join(str(d) for d in layer.weight_shape),
            f"{layer.params:,}", human_bytes(layer.bytes), layer.dtype, f"{layer.flops / 1e6:.3f}",
            f"{100 * layer.sparsity:.1f}",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {3, 4, 6, 7}
    lines = [f"model: {summary.name} ({summary.backend})   inputs: "
             + ", ".join(f"{s.name}={tuple(s.shape)}" for s in summary.inputs)]
    for k, row in enumerate(rows):
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    flops = (f"{summary.total_flops / 1e6:.3f} MFLOPs ({summary.total_macs / 1e6:.3f} MMACs)"
             if summary.flops_counted else "FLOPs not counted (see the warning)")
    lines.append(
        f"total: {summary.total_params:,} params, {human_bytes(summary.total_bytes)} in memory (the rows above + "
        f"{summary.other_params:,} other params, {human_bytes(summary.other_bytes)}), "
        f"{human_bytes(summary.file_bytes)} on disk, {flops}, {len(summary.layers)} layers with weights"
    )
    return "\n".join(lines)
