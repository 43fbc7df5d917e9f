"""The recipe: what the sliders say, as a versioned, validated, serializable value.

JSON form (version 1), every key optional; the default recipe changes nothing:

    {"version": 1,
     "prune": {"amount": 0.5, "method": "l1-unstructured", "scope": "global",
               "overrides": {"fc1": 0.8}, "exclude": ["fc3"]},
     "quantize": {"mode": "dynamic-int8", "bits": 8, "per_channel": true, "weight_type": "qint8",
                  "symmetric": true, "calibration": "minmax", "calib_samples": 128, "exclude": ["fc3"]},
     "recovery": {"method": "distill", "epochs": 3, "lr": 0.001, "batch": 32, "temperature": 4.0,
                  "alpha": 0.7, "max_samples": null}}

Stages run in this order: prune, recover (fine-tune or distill the pruned model on labeled training data),
quantize. A recipe without "recovery" recovers nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from accelstudio.core.errors import RecipeError
from accelstudio.core.quant_modes import QUANT_MODES, quant_mode  # noqa: F401 - QUANT_MODES is read from here

RECIPE_VERSION = 1

PRUNE_METHODS = ("l1-unstructured", "random", "l1-structured", "2:4")
PRUNE_SCOPES = ("global", "layer")
WEIGHT_TYPES = ("qint8", "quint8")
CALIBRATIONS = ("minmax", "entropy", "percentile")
RECOVERY_METHODS = ("none", "finetune", "distill")
MAX_PRUNE = 0.99
MAX_RECOVERY_EPOCHS = 50
RECOVERY_LR_RANGE = (1e-6, 1.0)
MAX_RECOVERY_BATCH = 4096
MAX_TEMPERATURE = 100.0


@dataclass(frozen=True)
class PruneSpec:
    """Pruning: `amount` of weights (unstructured) or channels (structured) to remove, 0-0.99.

    scope "global" ranks weights across all layers, "layer" prunes each layer by the same amount.
    `overrides` maps a layer name to its own amount; `exclude` names layers left untouched.
    Method "2:4" zeroes 2 of every 4 consecutive weights along the input dimension (amount is 0.5).
    """

    amount: float = 0.0
    method: str = "l1-unstructured"
    scope: str = "global"
    overrides: dict[str, float] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.amount > 0 or any(v > 0 for v in self.overrides.values())


@dataclass(frozen=True)
class QuantSpec:
    """Quantization mode and its settings; `exclude` names layers kept in float32."""

    mode: str = "none"
    bits: int = 8
    per_channel: bool = False
    weight_type: str = "qint8"
    symmetric: bool = True
    calibration: str = "minmax"
    calib_samples: int = 128
    exclude: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.mode != "none"


@dataclass(frozen=True)
class RecoverySpec:
    """Accuracy recovery after pruning, before quantization: training on labeled data for `epochs` epochs.

    "finetune" minimizes cross-entropy on the labels; "distill" mixes it with the KL divergence to the original
    (unpruned) model's softened outputs: alpha * KL * temperature**2 + (1 - alpha) * cross-entropy.
    `max_samples` caps the training samples used (a fixed-seed subset); None uses them all.
    """

    method: str = "none"
    epochs: int = 3
    lr: float = 1e-3
    batch: int = 32
    temperature: float = 4.0
    alpha: float = 0.7
    max_samples: int | None = None

    @property
    def active(self) -> bool:
        return self.method != "none" and self.epochs > 0


@dataclass(frozen=True)
class Recipe:
    """Pruning, then accuracy recovery, then quantization. `Recipe()` is the identity."""

    prune: PruneSpec = field(default_factory=PruneSpec)
    quantize: QuantSpec = field(default_factory=QuantSpec)
    recovery: RecoverySpec = field(default_factory=RecoverySpec)
    version: int = RECIPE_VERSION

    @property
    def is_identity(self) -> bool:
        return not self.prune.active and not self.quantize.active and not self.recovery.active

    def describe(self) -> str:
        """A short human label such as 'prune 50% l1-structured + dynamic-int8 per-channel'."""
        parts = []
        if self.prune.active:
            parts.append(f"prune {self.prune.amount:.0%} {self.prune.method}"
                         + (f" ({self.prune.scope})" if self.prune.method != "l1-structured" else ""))
        if self.recovery.active:
            parts.append(f"{self.recovery.method} {self.recovery.epochs} ep")
        q = self.quantize
        if q.active:
            mode = quant_mode(q.mode)
            label = f"sim-{q.bits}bit" if mode.simulated else q.mode
            if mode.per_channel_allowed:
                label += " per-channel" if q.per_channel else " per-tensor"
            if mode.weight_type_allowed:
                label += f" {q.weight_type}"
            if mode.needs_calibration:
                label += f" {q.calibration}"
            parts.append(label)
        return " + ".join(parts) if parts else "baseline (fp32)"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prune"]["exclude"] = list(self.prune.exclude)
        d["quantize"]["exclude"] = list(self.quantize.exclude)
        return {"version": d["version"], "prune": d["prune"], "quantize": d["quantize"], "recovery": d["recovery"]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> "Recipe":
        """Build and validate a recipe; a RecipeError names the bad field and the allowed values."""
        if not isinstance(data, dict):
            raise RecipeError("<root>", f"expected a JSON object, got {type(data).__name__}")
        _reject_unknown(data, {"version", "prune", "quantize", "recovery"}, "")
        version = data.get("version", RECIPE_VERSION)
        if version != RECIPE_VERSION:
            raise RecipeError("version", f"unsupported version {version!r}; this release reads version {RECIPE_VERSION}")
        prune = _build(PruneSpec, data.get("prune", {}), "prune")
        quant = _build(QuantSpec, data.get("quantize", {}), "quantize")
        recovery = _build(RecoverySpec, data.get("recovery", {}), "recovery")
        recipe = cls(prune=prune, quantize=quant, recovery=recovery)
        recipe.validate()
        return recipe

    @classmethod
    def from_json(cls, text: str, source: str = "recipe") -> "Recipe":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecipeError("<root>", f"{source} is not valid JSON: {exc}") from None
        except RecursionError:  # thousands of nested brackets exhaust the decoder's recursion limit
            raise RecipeError("<root>", f"{source} is nested too deeply to be a recipe") from None
        return cls.from_dict(data)

    def validate(self) -> None:
        """Check every field; raise RecipeError naming the first bad one."""
        p, q = self.prune, self.quantize
        _check_amount("prune.amount", p.amount)
        _check_choice("prune.method", p.method, PRUNE_METHODS)
        _check_choice("prune.scope", p.scope, PRUNE_SCOPES)
        for layer, amount in p.overrides.items():
            _check_amount(f"prune.overrides.{layer}", amount)
        both = set(p.overrides) & set(p.exclude)
        if both:
            raise RecipeError("prune.overrides", f"layer(s) {sorted(both)} are both overridden and excluded; choose one")
        if p.method == "2:4" and p.amount not in (0.0, 0.5):
            raise RecipeError("prune.amount", f"method '2:4' always removes 50%; got {p.amount} (use 0.5)")
        _check_choice("quantize.mode", q.mode, QUANT_MODES)
        if not isinstance(q.bits, int) or isinstance(q.bits, bool) or not 2 <= q.bits <= 8:
            raise RecipeError("quantize.bits", f"must be an integer from 2 to 8, got {q.bits!r}")
        if not quant_mode(q.mode).simulated and q.bits != 8:
            raise RecipeError("quantize.bits", f"bits={q.bits} only applies to mode 'sim'; mode '{q.mode}' is fixed-width")
        _check_choice("quantize.weight_type", q.weight_type, WEIGHT_TYPES)
        _check_choice("quantize.calibration", q.calibration, CALIBRATIONS)
        if not isinstance(q.calib_samples, int) or isinstance(q.calib_samples, bool) or not 1 <= q.calib_samples <= 100_000:
            raise RecipeError("quantize.calib_samples", f"must be an integer from 1 to 100000, got {q.calib_samples!r}")
        for name in ("per_channel", "symmetric"):
            if not isinstance(getattr(q, name), bool):
                raise RecipeError(f"quantize.{name}", f"must be true or false, got {getattr(q, name)!r}")
        _validate_recovery(self.recovery)


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe JSON file; errors name the file and the bad field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError("<file>", f"cannot read {path}: {exc}") from None
    try:
        return Recipe.from_json(text, source=str(path))
    except RecipeError as exc:
        raise RecipeError(exc.field, f"{path}: {str(exc).split(': ', 1)[1]}") from None


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    Path(path).write_text(recipe.to_json() + "\n", encoding="utf-8")


def _reject_unknown(data: dict, allowed: set[str], prefix: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise RecipeError(where, f"unknown key; allowed keys{' in ' + prefix if prefix else ''}: {', '.join(sorted(allowed))}")


def _build(cls, data: Any, prefix: str):
    if not isinstance(data, dict):
        raise RecipeError(prefix, f"expected an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    _reject_unknown(data, names, prefix)
    values = dict(data)
    if "exclude" in values:
        if not isinstance(values["exclude"], (list, tuple)) or not all(isinstance(s, str) for s in values["exclude"]):
            raise RecipeError(f"{prefix}.exclude", "must be a list of layer names")
        values["exclude"] = tuple(values["exclude"])
    if "overrides" in values and not isinstance(values["overrides"], dict):
        raise RecipeError(f"{prefix}.overrides", "must be an object mapping layer name to amount")
    return cls(**values)


def _check_amount(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= MAX_PRUNE:
        raise RecipeError(name, f"must be a number from 0 to {MAX_PRUNE}, got {value!r}")


def _validate_recovery(r: RecoverySpec) -> None:
    _check_choice("recovery.method", r.method, RECOVERY_METHODS)
    _check_int("recovery.epochs", r.epochs, 0, MAX_RECOVERY_EPOCHS)
    lo, hi = RECOVERY_LR_RANGE
    _check_number("recovery.lr", r.lr, lo, hi)
    _check_int("recovery.batch", r.batch, 1, MAX_RECOVERY_BATCH)
    _check_number("recovery.temperature", r.temperature, 0.0, MAX_TEMPERATURE, low_open=True)
    _check_number("recovery.alpha", r.alpha, 0.0, 1.0)
    if r.max_samples is not None:
        _check_int("recovery.max_samples", r.max_samples, 1, 10_000_000, extra="or null for all")


def _check_int(name: str, value: Any, lo: int, hi: int, extra: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RecipeError(name, f"must be an integer from {lo} to {hi}{' ' + extra if extra else ''}, got {value!r}")


def _check_number(name: str, value: Any, lo: float, hi: float, low_open: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
    if ok:
        ok = (lo < value if low_open else lo <= value) and value <= hi
    if not ok:
        bound = f"above {lo:g} up to {hi:g}" if low_open else f"from {lo:g} to {hi:g}"
        raise RecipeError(name, f"must be a number {bound}, got {value!r}")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise RecipeError(name, f"got {value!r}; allowed: {', '.join(allowed)}")


def with_changes(recipe: Recipe, **prune_or_quant) -> Recipe:
    """A copy with `prune=`, `quantize=` and/or `recovery=` replaced (validated)."""
    out = replace(recipe, **prune_or_quant)
    out.validate()
    return out
