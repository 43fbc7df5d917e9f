"""Studies that run inside the worker as one job of kind "study", by name.

The worker's child calls `run_study(name, params, progress, cancel)`; each entry takes the JSON-ready params and
returns a JSON-ready result dict. An entry is added here with a plain import, so the layering check sees it.
"""

from __future__ import annotations

from typing import Any, Callable

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.progress import CancelToken, ProgressCallback

StudyFn = Callable[[dict[str, Any], ProgressCallback, CancelToken], dict[str, Any]]

STUDIES: dict[str, StudyFn] = {}


class UnknownStudy(AccelStudioError):
    """A study name that this version does not know."""


def run_study(name: str, params: dict[str, Any], progress: ProgressCallback, cancel: CancelToken) -> dict[str, Any]:
    """Run the study called `name` with `params`; raise UnknownStudy for a name not in STUDIES."""
    try:
        study = STUDIES[name]
    except KeyError:
        known = ", ".join(sorted(STUDIES)) or "none"
        raise UnknownStudy(f"unknown study {name!r} (known: {known})") from None
    return study(params, progress, cancel)


from accelstudio.core.studies.sensitivity import run_sensitivity  # noqa: E402  (registered by a plain import)

STUDIES["sensitivity"] = run_sensitivity
