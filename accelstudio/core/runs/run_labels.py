"""How a stored run is written and named in every view: JSON-safe values and its recipe's short label."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import RunResult
from accelstudio.core.recipe import Recipe


def recipe_label(recipe: dict | None) -> str | None:
    """A recipe dict's short label ('baseline' for the identity recipe; None for no recipe); the raw JSON if
    it is invalid."""
    if recipe is None:
        return None
    try:
        r = Recipe.from_dict(recipe)
    except (AccelStudioError, TypeError, ValueError, AttributeError):
        return json.dumps(to_json_safe(recipe), sort_keys=True)
    return "baseline" if r.is_identity else r.describe()


def recipe_text(result: RunResult) -> str | None:
    """The run's recipe as a short label ('baseline' for the identity recipe)."""
    return recipe_label((result.spec or {}).get("recipe"))


def to_json_safe(value: Any) -> Any:
    """A copy with numpy scalars/arrays turned into Python values, tuples into lists and NaN/Inf into None."""
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "tolist"):  # numpy scalar or array
        return to_json_safe(value.tolist())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)
