"""The command line: `accelstudio` opens the GUI, `accelstudio <command>` runs the same pipeline headless.

Each command lives in its own module with a `register(subparsers)` function that adds its parser and sets
`func(args) -> int`. Errors the user can cause (AccelStudioError) print one line and exit 2, no traceback,
unless --debug is given.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from pathlib import Path

from accelstudio import __version__

COMMAND_MODULES = ("inspect_cmd", "apply_cmd", "run_cmd", "runs_cmd", "explain_cmd", "roofline_cmd",
                   "sensitivity_cmd", "search_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accelstudio",
        description="Prune and quantize neural networks and measure latency and accuracy. "
                    "With no command, the desktop app opens.",
    )
    parser.add_argument("--version", action="version", version=f"accelstudio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--smoke", metavar="PNG", help="open the app, run one short job, save a screenshot, exit")
    parser.add_argument("--open", metavar="MODEL", dest="open_model", help="model file to open in the app")
    from accelstudio.core.studies.lessons import LESSONS

    parser.add_argument("--lesson", metavar="NAME", choices=list(LESSONS), help="open the app on a guided lesson: "
                        + ", ".join(LESSONS) + " (with --smoke PNG: a screenshot of its first step)")
    parser.add_argument("--presenter", action="store_true",
                        help="open the app in presenter mode (large text, thick lines, fewer panels)")
    parser.add_argument("--size", metavar="WxH", type=window_size, help="window size in pixels, e.g. 1280x720")
    parser.add_argument("--reopen-last", action="store_true",
                        help="with --smoke: open the last model and recipe, as a normal start does")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"accelstudio.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"accelstudio.cli.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def window_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720); argparse reports anything else."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or not (200 <= int(width) <= 10000
                                                                      and 200 <= int(height) <= 10000):
        raise argparse.ArgumentTypeError(f"{text!r} is not a window size like 1280x720 (200 to 10000 pixels)")
    return int(width), int(height)


def launcher_argv(argv: list[str]) -> list[str]:
    """`accelstudio FILE` (as file managers and the desktop entry call it) becomes `--open FILE`; a bare word
    that is also a command name (`run`) stays a command."""
    if len(argv) == 1 and not argv[0].startswith("-") and Path(argv[0]).is_file():
        if os.sep in argv[0] or Path(argv[0]).suffix:
            return ["--open", argv[0]]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:  # a frozen app starts its worker process as `<app> --worker`
        from accelstudio.worker.child import main as worker_main

        return worker_main()
    parser = build_parser()
    argv = launcher_argv(argv)
    args = parser.parse_args(argv)
    from accelstudio.core.errors import AccelStudioError

    try:
        if args.command is None:
            from accelstudio.app.main import run_gui

            return run_gui(args)
        return int(args.func(args) or 0)
    except AccelStudioError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
