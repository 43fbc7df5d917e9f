"""The model a command works on: a file (MODEL) or a bundled example (--example NAME), one of the two."""

from __future__ import annotations

import argparse

from accelstudio.core.errors import AccelStudioError


class UsageError(AccelStudioError):
    """The command line is inconsistent: no model, two models, a number out of range, a missing constraint."""

    category = "usage"


def add_model_arguments(parser: argparse.ArgumentParser, verb: str = "use") -> None:
    """MODEL (a file or example:NAME) and --example NAME."""
    parser.add_argument("model", nargs="?", help="model file or example:NAME")
    parser.add_argument("--example", metavar="NAME", help=f"{verb} a bundled example instead of a file")


def model_from_args(args: argparse.Namespace, alternative: str = "") -> str:
    """The model reference the command line names ("example:NAME" or the path as given); UsageError when it names
    none or both. `alternative` names another way to call the command in the message (e.g. "--show STUDY_ID")."""
    if args.model and args.example:
        raise UsageError("give either MODEL or --example, not both")
    if not args.model and not args.example:
        raise UsageError("give a model file or --example NAME" + (f" (or {alternative})" if alternative else ""))
    return f"example:{args.example}" if args.example else args.model
