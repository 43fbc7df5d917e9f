"""File > Export as Script: a runnable Python script that reproduces one run with the same JobSpec.

The script calls `accelstudio.core.pipeline.run_job` (the pipeline the CLI and the worker run), stores the new run
in the user's run store (or `--store PATH`; `--no-store` keeps nothing) and prints its headline figures, or the
whole run with `--json`. It needs AccelStudio installed, and the model and data files at the paths it names.
"""

from __future__ import annotations

import json
from pathlib import Path

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import JobSpec, RunResult

SCRIPT_TEMPLATE = '''#!/usr/bin/env python3
"""Reproduce AccelStudio run {run_id} ({label}), first measured {created}.

Model: {model}
Runs the same job (model, recipe, runtime settings, data) through accelstudio.core.pipeline.run_job and stores
the new run in the run store. Usage: python {filename} [--json] [--no-store] [--store PATH]
"""

import argparse
import json
import sys

from accelstudio.core.job import JobSpec
from accelstudio.core.pipeline import run_job

SPEC = json.loads(r"""
{spec_json}
""")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the whole run as JSON")
    parser.add_argument("--no-store", action="store_true", help="do not keep the run in the run store")
    parser.add_argument("--store", metavar="PATH", help="run store to add the run to (default: the user's)")
    args = parser.parse_args(argv)
    spec = JobSpec.from_dict(SPEC)
    result = run_job(spec)
    if not args.no_store:
        from pathlib import Path

        from accelstudio.core.paths import default_store_path
        from accelstudio.core.runs.store import RunStore

        store = RunStore(Path(args.store) if args.store else default_store_path())
        result = result.__class__(**{{**result.to_dict(), "run_id": store.add_run(result)}})
    if args.json:
        print(json.dumps(result.to_dict(), default=str))
    else:
        m = result.metrics
        accuracy = m.get("accuracy")
        print(f"run {{result.run_id}} {{result.status}}: p50 {{m.get('p50_ms', float('nan')):.3f}} ms, "
              f"throughput {{m.get('throughput', 0):.0f}}/s"
              + (f", accuracy {{accuracy:.2%}}" if accuracy is not None else ""))
    return 0 if result.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
'''


class ScriptExportError(AccelStudioError):
    """A run whose job cannot be written as a script."""


def export_script_text(run: RunResult, filename: str = "reproduce.py") -> str:
    """The script's text for `run` (its stored JobSpec, checked to parse)."""
    try:
        spec = JobSpec.from_dict(run.spec)
    except (TypeError, ValueError, AccelStudioError) as exc:
        raise ScriptExportError(f"run {run.run_id} has no usable job spec ({exc}); it cannot be exported") from None
    spec_json = json.dumps(spec.to_dict(), indent=1, sort_keys=True)
    if '"""' in spec_json:
        raise ScriptExportError(f"run {run.run_id}: its spec contains a triple quote and cannot be embedded")
    return SCRIPT_TEMPLATE.format(run_id=run.run_id if run.run_id is not None else "(unsaved)",
                                  label=spec.recipe.describe(), created=run.created or "(time unknown)",
                                  model=spec.model, filename=filename, spec_json=spec_json)


def export_script(run: RunResult, path: str | Path) -> Path:
    """Write the script for `run` to `path` (made executable); the path written."""
    out = Path(path)
    if out.suffix != ".py":
        out = out.with_name(out.name + ".py")
    text = export_script_text(run, out.name)
    try:
        out.write_text(text, encoding="utf-8")
        out.chmod(0o755)
    except OSError as exc:
        raise ScriptExportError(f"{out}: the script could not be written ({exc}); choose another folder") from None
    return out
