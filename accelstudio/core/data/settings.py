"""The data choices of a run as the window keeps them: evaluation, calibration and training sets, and the
input shapes of dynamic dimensions. Plain values, remembered per model and turned into a JobSpec's fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DataSettings:
    """What a run measures on. `data`: a .npz file or image folder (None: the example's test set, or
    synthesized inputs for a user model); `calib_data`: calibration file (None: split off `data`, or the
    example's calibration split); `train_data`: labeled .npz for recovery (None: the example's training split);
    `input_shapes`: (input name, dims) pairs where 0 marks a dimension left to the data or the runtime's batch."""

    data: str | None = None
    calib_data: str | None = None
    train_data: str | None = None
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "calib_data": self.calib_data, "train_data": self.train_data,
                "input_shapes": {name: list(dims) for name, dims in self.input_shapes}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataSettings":
        shapes = tuple((str(k), tuple(int(x) for x in v)) for k, v in dict(d.get("input_shapes") or {}).items())
        return cls(d.get("data") or None, d.get("calib_data") or None, d.get("train_data") or None, shapes)

    def paths(self) -> list[str]:
        """The files and folders chosen."""
        return [p for p in (self.data, self.calib_data, self.train_data) if p]
