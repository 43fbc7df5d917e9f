"""A worker child with test studies added to the registry, for the study job kind's round trip:
    python study_worker.py        (then speaks the worker protocol on stdin/stdout like `python -m accelstudio.worker`)

The studies are registered here, in the child process, since a registry patched in the test's own process
would not reach the worker.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from accelstudio.core.errors import DatasetError  # noqa: E402
from accelstudio.core.progress import ProgressEvent  # noqa: E402
from accelstudio.core.studies.registry import STUDIES  # noqa: E402


def sum_of_squares(params, progress, cancel):
    """Sums the squares of params["values"], reporting one progress step per value."""
    values = [float(v) for v in params["values"]]
    for i, _ in enumerate(values):
        progress(ProgressEvent("squares", i / len(values), f"value {i + 1} of {len(values)}"))
    return {"sum": sum(v * v for v in values), "count": len(values)}


def bad_data(params, progress, cancel):
    """Raises the typed error a study raises for a data set it cannot use."""
    raise DatasetError(params["path"], "has no labels; choose a labeled .npz file")


def broken(params, progress, cancel):
    """Fails with an exception that is not a user error."""
    return {"value": [1, 2][params["index"]]}


def until_cancelled(params, progress, cancel):
    """Reports that it waits, then waits on its cancel token and stops as a cancelled job does."""
    import time

    from accelstudio.core.progress import check_cancel

    progress(ProgressEvent("waiting", 0.0, "waiting for cancel"))
    while True:  # a study's own loop, checking its token between steps
        check_cancel(cancel)
        time.sleep(0.02)


STUDIES.update({"test-sum-of-squares": sum_of_squares, "test-bad-data": bad_data, "test-broken": broken,
                "test-until-cancelled": until_cancelled})

if __name__ == "__main__":
    from accelstudio.worker.child import main

    main()
