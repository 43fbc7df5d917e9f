"""What a per-layer sensitivity study is asked: the model, the screening data, the settings to screen each
layer at (pruning amounts with one method; one quantization mode) and the limits (samples, seconds).

The study is run by name ("sensitivity") through the worker (accelstudio.core.studies.registry); its params
travel as the JSON dict `SensitivityParams.to_dict()` gives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.recipe import PRUNE_METHODS
from accelstudio.core.quant_modes import quant_mode

STUDY_KIND = "sensitivity"
DEFAULT_AMOUNTS = (0.25, 0.5, 0.75, 0.9)
DEFAULT_SAMPLES = 256
DEFAULT_BUDGET_S = 180.0
MIN_SAMPLES = 8  # the sample count is lowered towards this to fit the budget, never below


class SensitivityError(AccelStudioError):
    """A sensitivity study that cannot run as asked (no layer to screen, bad settings)."""

    category = "sensitivity study"


@dataclass(frozen=True)
class SensitivityParams:
    """One study. `model`: a file path or "example:NAME"; `backend`: None picks ONNX for bundled examples (one
    session, weights fed as inputs) and the file's own backend otherwise. `data`: screening data (.npz or image
    folder, labeled: accuracy is measured; unlabeled: fidelity to the unmodified model); `calib`: unlabeled
    screening data used when `data` is not given; neither: an example's calibration split (training data), else
    synthesized inputs. `prune_method` with `amounts` screens each layer pruned alone ("" for none);
    `quantize` (a recipe quantize dict: mode, bits, per_channel, symmetric; None for none) screens each layer
    quantized alone and kept in float alone. `samples`: screening samples at most (lowered to fit `budget_s`);
    `budget_s`: seconds for the whole study, layers past it are marked not screened."""

    model: str
    backend: str | None = None
    trust: bool = False
    data: str | None = None
    calib: str | None = None
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    prune_method: str = "l1-unstructured"
    amounts: tuple[float, ...] = DEFAULT_AMOUNTS
    quantize: dict[str, Any] | None = None
    samples: int = DEFAULT_SAMPLES
    budget_s: float = DEFAULT_BUDGET_S
    threads: int = 0
    batch: int = 32

    def validate(self) -> "SensitivityParams":
        """Self, or SensitivityError naming the setting that is wrong."""
        if not self.prune_method and not self.quantize:
            raise SensitivityError("nothing to screen: give a pruning method, a quantization mode, or both")
        if self.prune_method:
            if self.prune_method not in PRUNE_METHODS:
                raise SensitivityError(f"unknown pruning method {self.prune_method!r}; "
                                       f"choose one of {', '.join(PRUNE_METHODS)}")
            if not self.amounts or any(not 0 < a < 1 for a in self.amounts):
                raise SensitivityError(f"pruning amounts must lie between 0 and 1, got {list(self.amounts)}")
        if self.quantize:
            mode = quant_mode(str(self.quantize.get("mode", "none")))
            if not mode.active:
                raise SensitivityError("quantization mode 'none' screens nothing; leave --quantize out instead")
        if self.samples < 1 or self.budget_s <= 0 or self.batch < 1 or self.threads < 0:
            raise SensitivityError("samples and batch must be at least 1, the budget above 0 s, threads >= 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["amounts"] = list(self.amounts)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SensitivityParams":
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - names)
        if unknown:
            raise SensitivityError(f"unknown sensitivity setting(s) {unknown}; known: {', '.join(sorted(names))}")
        values = dict(data)
        if "amounts" in values:
            values["amounts"] = tuple(float(a) for a in values["amounts"])
        return cls(**values).validate()


def quantize_from_text(text: str, per_channel: bool = True) -> dict[str, Any]:
    """'dynamic-int8' or 'sim-4' as the study's quantize dict (per-channel, symmetric grid)."""
    if text.startswith("sim-"):
        try:
            mode, bits = "sim", int(text[4:])
        except ValueError:
            raise SensitivityError(f"'{text}': write sim-N with N the bit width, e.g. sim-4") from None
    else:
        mode, bits = text, 8
    quant_mode(mode)  # RecipeError for an unknown mode
    return {"mode": mode, "bits": bits, "per_channel": per_channel, "symmetric": True}
