"""`accelstudio runs list|show|export|delete|clean|pin` and `accelstudio compare A B`: the experiment store from the
command line. Every command takes --store PATH (default: $ACCELSTUDIO_STORE, else the user data folder)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from accelstudio.cli import runs_format as fmt
from accelstudio.core.runs.artifacts import MB, clean_artifacts, disk_use
from accelstudio.core.runs.baseline import find_baseline
from accelstudio.core.runs.report import build_report
from accelstudio.core.runs.store import RunStore
from accelstudio.core.runs.run_labels import to_json_safe
from accelstudio.core.runs.store_export import runs_document


def register(subparsers) -> None:
    """Add the `runs` command (with its sub-commands) and the `compare` command."""
    runs = subparsers.add_parser("runs", help="list, show, export or delete stored runs",
                                 description="Work with the runs kept in the experiment store.")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="SUBCOMMAND", required=True)

    p = runs_sub.add_parser("list", help="list runs, newest first")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="show at most N runs")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of a table")
    _add_store(p)
    p.set_defaults(func=cmd_list)

    p = runs_sub.add_parser("show", help="show one run in full")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    _add_store(p)
    p.set_defaults(func=cmd_show)

    p = runs_sub.add_parser("export", help="export runs to a CSV or JSON file")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--csv", metavar="FILE", help="one flat row per run")
    target.add_argument("--json", metavar="FILE", help="the full runs")
    p.add_argument("--ids", type=int, nargs="+", metavar="ID", help="only these runs (default: all)")
    _add_store(p)
    p.set_defaults(func=cmd_export)

    p = runs_sub.add_parser("delete", help="delete a run")
    p.add_argument("id", type=int, metavar="ID")
    _add_store(p)
    p.set_defaults(func=cmd_delete)

    p = runs_sub.add_parser("clean", help="remove the optimized model files of unpinned runs (runs stay)",
                            description="Remove the optimized model files (artifacts) that runs keep. The runs "
                                        "and their numbers stay in the store; pinned runs keep their files.")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--keep-mb", type=_non_negative_float, default=None, metavar="N",
                       help="remove the oldest unpinned artifacts until all artifacts take at most N MB")
    which.add_argument("--ids", type=int, nargs="+", metavar="ID", help="remove only these runs' artifacts")
    p.add_argument("--json", action="store_true", help="print a JSON document")
    _add_store(p)
    p.set_defaults(func=cmd_clean)

    p = runs_sub.add_parser("pin", help="keep a run's optimized model when artifacts are cleaned")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    p.add_argument("--unpin", action="store_true", help="stop keeping these runs' optimized models")
    _add_store(p)
    p.set_defaults(func=cmd_pin)

    p = runs_sub.add_parser("studies", help="list stored studies (sensitivity, search), newest first")
    p.add_argument("--kind", metavar="KIND", default=None, help="only studies of this kind (sensitivity, search)")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of a table")
    _add_store(p)
    p.set_defaults(func=cmd_studies)

    p = subparsers.add_parser("compare", help="compare two stored runs side by side",
                              description="Latency, throughput, accuracy, size and a per-layer diff of two runs.")
    p.add_argument("ids", type=int, nargs=2, metavar="ID", help="run A, then run B")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of tables")
    _add_store(p)
    p.set_defaults(func=cmd_compare)


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="PATH", default=None,
                        help="run store file (default: $ACCELSTUDIO_STORE or the user data folder)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _print_json(document) -> None:
    json.dump(to_json_safe(document), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def cmd_list(args: argparse.Namespace) -> int:
    """Print the stored runs, newest first."""
    store = RunStore(args.store)
    runs = store.list_runs(limit=args.limit)
    use = disk_use(store)
    if args.json:
        pool = runs if args.limit is None else store.list_runs()
        _print_json({"store": str(store.path), "runs": runs_document(runs, pool)["runs"],
                     "disk_use": {**dataclasses.asdict(use), "total_bytes": use.total_bytes}})
    elif not runs:
        print(f"no runs in {store.path}")
    else:
        print(fmt.list_table(runs, runs if args.limit is None else store.list_runs()))
    if not args.json:  # on stderr, so the table on stdout stays one run per line for scripts
        print(f"store {store.path}: {use.describe()}", file=sys.stderr)
    return 0


def cmd_studies(args: argparse.Namespace) -> int:
    """Print the stored studies, newest first, with how many runs each has as trials."""
    store = RunStore(args.store)
    studies, trials = store.list_studies(kind=args.kind), store.trial_counts()
    if args.json:
        _print_json({"store": str(store.path), "studies": [
            {**dataclasses.asdict(s), "trials": trials.get(s.study_id, 0)} for s in studies]})
    elif not studies:
        print(f"no studies in {store.path}" + (f" of kind {args.kind!r}" if args.kind else ""))
    else:
        print(fmt.studies_table(studies, trials))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print one run, read through its report against its like-for-like baseline in the store."""
    store = RunStore(args.store)
    run = store.get_run(args.id)
    pool = store.list_runs()
    if args.json:
        base = find_baseline(pool, run)
        _print_json({**run.to_dict(), "report": build_report(run, base).to_dict()})
    else:
        print(fmt.show_text(run, pool))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write runs to a CSV or JSON file."""
    store = RunStore(args.store)
    if args.csv:
        n = store.export_csv(args.csv, ids=args.ids)
        print(f"wrote {n} run(s) to {args.csv}")
    else:
        n = store.export_json(args.json, ids=args.ids)
        print(f"wrote {n} run(s) to {args.json}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete one run."""
    RunStore(args.store).delete_run(args.id)
    print(f"deleted run {args.id}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    """Remove artifacts of unpinned runs (all, the oldest beyond --keep-mb, or --ids); the runs stay."""
    store = RunStore(args.store)
    keep = None if args.keep_mb is None else int(args.keep_mb * MB)  # None: every unpinned artifact
    report = clean_artifacts(store, keep_bytes=keep, run_ids=args.ids)
    use = disk_use(store)
    if args.json:
        _print_json({"removed": list(report.removed), "freed_bytes": report.freed_bytes,
                     "skipped": [{"id": i, "reason": why} for i, why in report.skipped],
                     "disk_use": {**dataclasses.asdict(use), "total_bytes": use.total_bytes}})
    else:
        print(report.describe())
        print(f"store {store.path}: {use.describe()}")
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    """Pin (or unpin) runs: pinned runs keep their optimized model under every clean-up."""
    RunStore(args.store).set_pinned(args.ids, not args.unpin)
    print(f"{'unpinned' if args.unpin else 'pinned'} run(s) {', '.join(map(str, args.ids))}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Print two runs side by side."""
    store = RunStore(args.store)
    a, b = (store.get_run(i) for i in args.ids)
    doc = fmt.compare_document(a, b)
    if args.json:
        _print_json(doc)
    else:
        print(fmt.compare_text(doc))
    return 0
