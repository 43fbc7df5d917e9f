"""`accelstudio sensitivity`: how much each layer costs when pruned, quantized or kept in float alone, with its
share of latency; stored in the run store as a study of kind "sensitivity" (reload it with --show ID)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from accelstudio.cli.recipe_args import add_data_arguments, parse_quant_mode, shapes_from_args
from accelstudio.cli.model_args import UsageError, add_model_arguments, model_from_args
from accelstudio.cli.sensitivity_format import format_study
from accelstudio.core.recipe import PRUNE_METHODS
from accelstudio.core.studies.sensitivity_params import (DEFAULT_AMOUNTS, DEFAULT_BUDGET_S, DEFAULT_SAMPLES,
                                                         STUDY_KIND, SensitivityParams)


def register(subparsers) -> None:
    """Add the `sensitivity` command."""
    p = subparsers.add_parser(
        "sensitivity", help="rank layers by how much pruning or quantizing each one alone costs",
        description="Screen each layer alone: pruned at several amounts, quantized alone and kept in float alone "
                    "(every other layer quantized), on a subset of the data, in a worker, within a time budget. "
                    "Prints the loss of each layer at each setting beside its share of latency, most sensitive "
                    "first, and stores the study (reload it with --show ID).")
    add_model_arguments(p)
    p.add_argument("--data", metavar="FILE", help="screening data: .npz (labels give accuracy, else fidelity to the "
                                                   "unmodified model) or an image folder")
    add_data_arguments(p, evaluates=False)
    for action in p._actions:  # the shared flag means something narrower here
        if action.dest == "calib":
            action.help = ("unlabeled screening data (.npz or image folder) used when --data is not given; "
                           "default: a bundled example's calibration split, else synthesized inputs")
    g = p.add_argument_group("what to screen")
    g.add_argument("--prune-method", default="l1-unstructured", choices=(*PRUNE_METHODS, "none"),
                   help="pruning method each layer is pruned with (none: do not screen pruning)")
    g.add_argument("--amounts", type=float, nargs="+", metavar="A", default=list(DEFAULT_AMOUNTS),
                   help="pruning amounts, 0-1 (default 0.25 0.5 0.75 0.9)")
    g.add_argument("--quantize", metavar="MODE", help="also screen quantization: dynamic-int8, static-int8, fp16, "
                                                      "bf16, weight-int8, weight-int4 or sim-N (weights only)")
    g.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=True,
                   help="per-channel weight scales (default on)")
    g.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                   help="screening samples at most (fewer when the budget needs it)")
    g.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, metavar="S",
                   help="seconds for the whole study; layers past it are marked not screened (default 180)")
    g.add_argument("--threads", type=int, default=0, metavar="N", help="intra-op threads (0 = all cores)")
    g.add_argument("--backend", choices=("onnx", "torch"),
                   help="form of a bundled example to screen (default onnx: one session for every variant)")
    p.add_argument("--trust", action="store_true",
                   help="allow formats that can run code when loaded (TorchScript, torch.export, pickle)")
    p.add_argument("--show", type=int, metavar="STUDY_ID", help="print a stored study instead of running one")
    p.add_argument("--list", action="store_true", help="list the stored sensitivity studies")
    p.add_argument("--store", metavar="PATH", help="run store (default: $ACCELSTUDIO_STORE or the data folder)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run_sensitivity_cmd)


def run_sensitivity_cmd(args: argparse.Namespace) -> int:
    from accelstudio.core.paths import default_store_path
    from accelstudio.core.runs.store import RunStore
    from accelstudio.worker.sensitivity_client import run_sensitivity_study, study_result

    store = RunStore(args.store or default_store_path())
    if args.list:
        return _list(store, args.json)
    if args.show is not None:
        record = store.get_study(args.show)
        if record.kind != STUDY_KIND:
            raise UsageError(f"study {args.show} is a {record.kind} study, not a sensitivity study")
    else:
        record = run_sensitivity_study(params_from_args(args), store,
                                       on_message=None if args.json else _layer_printer())
    if args.json:
        print(json.dumps(study_result(record), indent=2, default=str))
    else:
        print(format_study(record))
    return 0


def _layer_printer():
    """Progress on stderr: the setup steps, then one line per screened layer."""
    def on_message(msg) -> None:
        if getattr(msg, "type", "") == "progress" and msg.stage == "sensitivity" and msg.text:
            print(f"[{msg.fraction:4.0%}] {msg.text}", file=sys.stderr, flush=True)

    return on_message


def params_from_args(args: argparse.Namespace) -> SensitivityParams:
    """The study the command line asks for (validated)."""
    model = model_from_args(args, alternative="--show STUDY_ID")
    model = model if model.startswith("example:") else str(Path(model).resolve())
    quantize = None
    if args.quantize:
        quantize = {**parse_quant_mode(args.quantize), "per_channel": bool(args.per_channel), "symmetric": True}
    resolve = (lambda v: str(Path(v).resolve()) if v else None)
    return SensitivityParams(
        model=model, backend=args.backend, trust=args.trust, data=resolve(args.data), calib=resolve(args.calib),
        input_shapes=shapes_from_args(args), prune_method="" if args.prune_method == "none" else args.prune_method,
        amounts=tuple(args.amounts), quantize=quantize, samples=args.samples, budget_s=args.budget,
        threads=args.threads).validate()


def _list(store, as_json: bool) -> int:
    studies = store.list_studies(STUDY_KIND)
    if as_json:
        print(json.dumps([{"study_id": s.study_id, "status": s.status, "created": s.created,
                           "model": s.params.get("model"), "ranking": s.result.get("ranking", [])[:5]}
                          for s in studies], indent=2))
        return 0
    if not studies:
        print("no sensitivity study stored yet; run `accelstudio sensitivity --example digits-cnn`", file=sys.stderr)
    for s in studies:
        top = ", ".join(s.result.get("ranking", [])[:3]) or "-"
        print(f"{s.study_id:>4}  {s.created}  {s.status:<8} {s.params.get('model')}  most sensitive: {top}")
    return 0
