"""`accelstudio explain RUN_ID`: why a stored run is (not) faster than its like-for-like baseline.

Reads the run and its baseline from the store (core/runs/baseline.py picks the baseline: same model identity,
runtime, device, threads, batch and ONNX Runtime knobs) and prints the Explanation of core/runs/explain.py: a
summary, the named causes with their evidence and what to do instead, and the per-layer Amdahl breakdown.
`--baseline ID` names another baseline (refused when it is not like-for-like).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    """Add the `explain` command."""
    p = subparsers.add_parser(
        "explain", help="why a run is (not) faster: causes from its profile, graph, CPU and machine records",
        description="Explain a stored run against its like-for-like baseline: which layers got faster, which "
                    "stayed in float and their share of time, conversion overhead, the most this recipe can "
                    "give on this machine (Amdahl), and named causes detected from the evidence.")
    p.add_argument("run_id", type=int, metavar="RUN_ID")
    p.add_argument("--baseline", type=int, metavar="ID", help="compare with this baseline run instead")
    p.add_argument("--json", action="store_true", help="print the explanation as one JSON document")
    p.add_argument("--store", metavar="PATH", default=None,
                   help="run store file (default: $ACCELSTUDIO_STORE or the user data folder)")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    """Print the explanation of one stored run."""
    from accelstudio.core.runs.run_labels import to_json_safe
    from accelstudio.core.runs.baseline import find_baseline
    from accelstudio.core.runs.explain import explain_run
    from accelstudio.core.runs.store import RunStore

    store = RunStore(args.store)
    run = store.get_run(args.run_id)
    baseline = store.get_run(args.baseline) if args.baseline is not None else find_baseline(store.list_runs(), run)
    explanation = explain_run(run, baseline)
    if args.json:
        json.dump(to_json_safe(explanation.to_dict()), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(explanation.text())
    return 0
