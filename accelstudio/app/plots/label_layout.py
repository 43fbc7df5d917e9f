"""Where point labels go so that none overlaps another or a point: plain geometry, no Qt.

Each label is tried at a few spots around its point (right-above first); it takes the first spot that stays
inside the bounds and clear of every label already placed and every point's marker. A label that finds no
spot is left out (its text stays in the point's tooltip). Coordinates are pixels, y pointing down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

GAP = 2.0  # pixels between a label and its point's marker


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle: left, top, width, height (pixels)."""

    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: "Box") -> bool:
        """True when the two share any area (touching edges do not count)."""
        return (self.x < other.x + other.w and other.x < self.x + self.w
                and self.y < other.y + other.h and other.y < self.y + self.h)

    def inside(self, bounds: "Box") -> bool:
        return (self.x >= bounds.x and self.y >= bounds.y and self.x + self.w <= bounds.x + bounds.w
                and self.y + self.h <= bounds.y + bounds.h)


def candidates(px: float, py: float, w: float, h: float, marker: float) -> list[Box]:
    """Spots for a w x h label around a point at (px, py) drawn `marker` pixels wide, in order of preference."""
    r = marker / 2 + GAP
    return [Box(px + r, py - h, w, h), Box(px + r, py, w, h), Box(px - r - w, py - h, w, h),
            Box(px - r - w, py, w, h), Box(px - w / 2, py - r - h, w, h), Box(px - w / 2, py + r, w, h),
            Box(px + r, py - h / 2, w, h), Box(px - r - w, py - h / 2, w, h)]


def place_labels(points: Sequence[tuple[float, float]], sizes: Sequence[tuple[float, float]],
                 marker: float = 10.0, bounds: Box | None = None,
                 order: Sequence[int] | None = None) -> list[Box | None]:
    """A box per label (None: left out), in the order of `points`. `order` says which labels choose first
    (default: as given); every point's marker is an obstacle for every label."""
    markers = [Box(x - marker / 2, y - marker / 2, marker, marker) for x, y in points]
    placed: list[Box | None] = [None] * len(points)
    taken: list[Box] = []
    for i in (order if order is not None else range(len(points))):
        (px, py), (w, h) = points[i], sizes[i]
        for box in candidates(px, py, w, h, marker):
            if bounds is not None and not box.inside(bounds):
                continue
            if any(box.overlaps(m) for m in markers) or any(box.overlaps(t) for t in taken):
                continue
            placed[i] = box
            taken.append(box)
            break
    return placed
