"""Human units for every view (CLI, GUI, exports' text): one byte formatter.

Bytes use decimal SI prefixes (1 kB = 1000 B, 1 MB = 10^6 B, 1 GB = 10^9 B), as file managers and disk makers
show them; every size figure in AccelStudio (MB in the GUI, the CLI and the exports) follows this rule.
"""

from __future__ import annotations

from typing import Any

MISSING = "-"
_UNITS = (("GB", 1e9), ("MB", 1e6), ("kB", 1e3))


def format_bytes(n: Any, missing: str = MISSING) -> str:
    """1536 -> '1.54 kB'; 4_000_000 -> '4.00 MB'; None -> `missing`. Decimal (SI) units, see the module doc."""
    if n is None or isinstance(n, bool):
        return missing
    value = float(n)
    for unit, scale in _UNITS:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{int(value)} B"


def megabytes(n: Any) -> float | None:
    """Bytes as MB (10^6 bytes); None stays None."""
    return None if n is None else float(n) / 1e6
