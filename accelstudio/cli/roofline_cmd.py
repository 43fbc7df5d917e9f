"""`accelstudio roofline`: this machine's measured roofs (GEMM peak per precision, memory bandwidth)."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    """Add the `roofline` command."""
    p = subparsers.add_parser(
        "roofline", help="measure (or read the cached) compute and memory roofs of this machine",
        description="Matrix-product peaks (fp32; int8, bf16, fp16 where the CPU has them) and memory bandwidth "
                    "at a thread count, measured in a few seconds and cached per machine; profiled runs "
                    "place their layers under these roofs.")
    p.add_argument("--threads", type=int, default=0, metavar="N", help="threads (0 = the cores this process may use)")
    p.add_argument("--refresh", action="store_true", help="measure again instead of reading the cache")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run_roofline)


def run_roofline(args: argparse.Namespace) -> int:
    from accelstudio.cli.profile_format import ceilings_lines
    from accelstudio.cli.run_cmd import UsageError
    from accelstudio.core.measure.ceilings import measure_ceilings

    if args.threads < 0:
        raise UsageError("--threads must be >= 0")
    c = measure_ceilings(args.threads, refresh=args.refresh).to_dict()
    print(json.dumps(c, indent=2) if args.json else "\n".join(ceilings_lines(c)))
    return 0
