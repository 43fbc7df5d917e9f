"""`accelstudio search`: find the fastest (or smallest) recipe that keeps accuracy within a limit, in a budget.

Exit 0 when the search ended with a recipe that met the constraint, 1 when it found none or was stopped,
2 for errors in the command line itself.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from typing import Any

from accelstudio.cli.model_args import UsageError, add_model_arguments, model_from_args
from accelstudio.core.job import DEVICES, RUNTIMES, RuntimeSettings
from accelstudio.core.studies.search_space import VARY_NAMES as VARY

DEFAULT_VARY = ("granularity", "keep-float", "prune")


def register(subparsers) -> None:
    """Add the `search` command."""
    p = subparsers.add_parser(
        "search", help="search recipes for the fastest one within an accuracy limit (budgeted, resumable)",
        description="Try recipes (quantization modes and options, pruning, recovery, runtime settings) chosen by "
                    "Optuna, each measured in a worker against the unchanged model timed interleaved in the same "
                    "job; choose on the validation half of the data and re-measure the answer on the test half. "
                    "Every trial is a stored run; the search is a stored study that --resume continues.")
    add_model_arguments(p)
    p.add_argument("--data", metavar="FILE", help="labeled .npz (arrays per input + labels) or image folder")
    p.add_argument("--calib", metavar="FILE", help="calibration data for static int8")
    p.add_argument("--train-data", metavar="FILE.npz", help="labeled training data: makes recovery searchable")
    c = p.add_mutually_exclusive_group()
    c.add_argument("--max-drop", type=float, metavar="PTS", help="accuracy points the recipe may lose")
    c.add_argument("--min-cosine", type=float, metavar="X", help="minimum cosine similarity to the original outputs")
    p.add_argument("--objective", choices=("latency", "size", "throughput"), default="latency")
    p.add_argument("--strategy", choices=("tpe", "nsga2"), default="tpe",
                   help="TPE for one objective under the constraint, NSGA-II for objective and accuracy together")
    p.add_argument("--budget", default="10m", metavar="TIME", help="wall-clock budget, e.g. 90s, 10m, 1h")
    p.add_argument("--max-trials", type=int, metavar="N", help="at most N screening trials")
    p.add_argument("--quant-modes", default="none,dynamic-int8,static-int8,fp16", metavar="M,M",
                   help="quantization modes to try (from the mode table)")
    p.add_argument("--vary", default=",".join(DEFAULT_VARY), metavar="D,D",
                   help=f"what may vary besides the mode: {', '.join(VARY)}")
    g = p.add_argument_group("measurement (the reference every speed-up is measured against)")
    g.add_argument("--runtime", choices=RUNTIMES, default="onnxruntime")
    g.add_argument("--device", choices=DEVICES, default="cpu")
    g.add_argument("--threads", type=int, default=1, metavar="N", help="intra-op threads (0 = all cores)")
    g.add_argument("--batch", type=int, default=1, metavar="N")
    g.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]D0xD1x...",
                   help="concrete shape of an input, e.g. x=1x3x640x640 (repeatable), as for `accelstudio run`")
    g.add_argument("--screen-samples", type=int, default=120, metavar="N", help="validation samples per screening trial")
    p.add_argument("--resume", type=int, metavar="STUDY_ID", help="continue a stopped search from the store")
    p.add_argument("--list", action="store_true", help="list the stored searches (id, status, model, best) and exit")
    p.add_argument("--trust", action="store_true", help="allow formats that can run code when loaded")
    p.add_argument("--store", metavar="PATH", help="run store (default: $ACCELSTUDIO_STORE or the data folder)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run_search_cmd)


def parse_budget(text: str) -> float:
    """'90s', '10m', '1h', '1h30m' or plain seconds -> seconds."""
    text = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise UsageError(f"--budget {text!r}: write seconds or a time such as 90s, 10m, 1h30m")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def build_config(args: argparse.Namespace):
    """The SearchConfig the command line describes."""
    from pathlib import Path

    from accelstudio.core.studies.search_config import SearchConfig
    from accelstudio.core.studies.search_judge import Constraint
    from accelstudio.cli.recipe_args import shapes_from_args
    from accelstudio.core.studies.search_space import space_from_vary

    model = model_from_args(args, alternative="--resume STUDY_ID") if args.resume is None else ""
    if args.resume is None and args.max_drop is None and args.min_cosine is None:
        raise UsageError("give a constraint: --max-drop PTS or --min-cosine X")
    vary = {v.strip() for v in args.vary.split(",") if v.strip()}
    unknown = sorted(vary - set(VARY))
    if unknown:
        raise UsageError(f"--vary {unknown[0]!r} is unknown; choose from {', '.join(VARY)}")
    modes = tuple(m.strip() for m in args.quant_modes.split(",") if m.strip())
    train = str(Path(args.train_data).resolve()) if args.train_data else None
    space = space_from_vary(vary, modes, args.runtime, bool(train or args.example))
    runtime = RuntimeSettings(runtime=args.runtime, device=args.device, threads=args.threads, batch=args.batch)
    constraint = Constraint(max_drop=args.max_drop, min_cosine=args.min_cosine)
    if args.resume is not None and constraint.max_drop is None and constraint.min_cosine is None:
        constraint = Constraint(min_cosine=0.0)  # placeholder; the stored search keeps its own
    return SearchConfig(
        model=model or "resume", constraint=constraint, objective=args.objective, budget_s=parse_budget(args.budget),
        runtime=runtime, space=space, strategy=args.strategy, data=args.data,
        calib_data=str(Path(args.calib).resolve()) if args.calib else None, train_data=train, trust=args.trust,
        input_shapes=shapes_from_args(args),
        screen_samples=args.screen_samples, max_trials=args.max_trials)


def run_search_cmd(args: argparse.Namespace) -> int:
    from accelstudio.core.paths import default_store_path
    from accelstudio.core.runs.store import RunStore
    from accelstudio.core.studies.search import run_search
    from accelstudio.worker.search_executor import LocalWorkerExecutor

    store = RunStore(args.store or default_store_path())
    if args.list:
        return list_searches(store, args.json)
    config = build_config(args)
    cancel = threading.Event()
    printer = None if args.json else _TrialPrinter()
    try:
        state = run_search(config, LocalWorkerExecutor(store), store, cancel, on_state=printer, resume=args.resume)
    except KeyboardInterrupt:
        cancel.set()
        print("search stopped; `accelstudio search --list` shows it, --resume STUDY_ID continues it",
              file=sys.stderr)
        return 1
    if args.resume is not None:  # the stored search's own model, constraint and space
        from accelstudio.core.studies.search_config import SearchConfig

        config = SearchConfig.from_dict(store.get_study(state.study_id).params)
    if args.json:
        print(json.dumps(json_document(state, config), indent=2, default=str))
    else:
        print(format_state(state, config))
    return 0 if state.best is not None and state.status == "done" else 1


def list_searches(store, as_json: bool) -> int:
    """Print the stored searches newest first."""
    rows = []
    for record in store.list_studies(kind="search"):
        best = (record.result or {}).get("best") or {}
        trials = [t for t in (record.result or {}).get("trials", []) if t.get("phase") == "screen"]
        rows.append({"study_id": record.study_id, "status": record.status, "updated": record.updated,
                     "model": (record.params or {}).get("model"), "trials": len(trials),
                     "best": best.get("label"), "best_value": best.get("value")})
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        best = f"{r['best']} x{r['best_value']:.2f}" if r["best"] else "no best yet"
        print(f"{r['study_id']:>4}  {r['status']:<8} {r['model']}  {r['trials']} trials  {best}  ({r['updated'][:19]})")
    if not rows:
        print("no stored searches")
    return 0


def json_document(state, config) -> dict[str, Any]:
    doc = {"config": config.to_dict(), **state.to_dict()}
    doc["trials_used"] = sum(1 for t in state.trials if t.phase == "screen")
    return doc


class _TrialPrinter:
    def __init__(self):
        self.seen = 0

    def __call__(self, state) -> None:
        for t in state.trials[self.seen:]:
            print(f"[{t.phase} {t.number}] {t.label}: {trial_text(t)}", flush=True)
        self.seen = len(state.trials)


def trial_text(t) -> str:
    if not t.ok:
        return f"{t.status}: {t.reason[:200]}"
    acc = (f"drop {t.drop:+.1f} pts [{t.drop_ci[0]:+.1f}, {t.drop_ci[1]:+.1f}]" if t.drop_ci is not None
           else f"cosine {t.cosine:.4f}" if t.cosine is not None else "no fidelity")
    verdict = "meets" if t.feasible else "fails"
    return f"x{t.value:.2f} [{t.lo:.2f}, {t.hi:.2f}], {acc} on {t.n_eval} samples ({verdict} the constraint)"


def format_state(state, config) -> str:
    lines = [f"search {state.study_id} ({state.status}) on {config.model}: {config.objective} under "
             f"{config.constraint.describe()}; {sum(1 for t in state.trials if t.phase == 'screen')} trials in "
             f"{state.elapsed_s:.0f} s"]
    if state.first_valid_s is not None:
        lines.append(f"first candidate meeting the constraint after {state.first_valid_s:.0f} s")
    if state.best is not None:
        lines.append(f"chosen on validation: {state.best.label}: {trial_text(state.best)} (run {state.best.run_id})")
    if state.final is not None:
        lines.append(f"re-measured on test:  {trial_text(state.final)} (run {state.final.run_id})")
    lines += [f"note: {n}" for n in state.notes]
    lines.append("speed-ups: median unchanged / median candidate, timed interleaved in the same job, 95% interval")
    return "\n".join(lines)

