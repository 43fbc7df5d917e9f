"""What a recipe search may vary, as Optuna distributions, and the recipe and runtime settings of one point.

Every dimension is a categorical choice, so the whole space can also be enumerated (`grid`, the exhaustive
reference the search benchmark compares with). Parameters are conditional: "per_channel" exists only for a
quantization mode whose table row allows the choice (core/quant_modes.py), "calibration" only for a mode that
calibrates, and so on; a point holds only the parameters that apply to it.

Parameter names: quant, per_channel, weight_type, calibration, calib_samples, float_kinds (op kinds kept in
float: "none", "conv", "linear"), keep_float (the k most sensitive layers kept in float, from a stored
sensitivity study), prune ("none" or "METHOD:AMOUNT"), recovery_epochs, runtime, graph_opt_level, spinning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import GRAPH_OPT_LEVELS, RUNTIMES, RuntimeSettings
from accelstudio.core.quant_modes import quant_mode
from accelstudio.core.recipe import CALIBRATIONS, PRUNE_METHODS, WEIGHT_TYPES, PruneSpec, QuantSpec, Recipe, \
    RecoverySpec

OP_KINDS = {"conv": ("Conv", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose"),
            "linear": ("Gemm", "MatMul", "Linear")}
RECOVERY_METHOD = "finetune"


class SearchSpaceError(AccelStudioError):
    """A search space that names an unknown choice or leaves nothing to search."""

    category = "search space"


@dataclass(frozen=True)
class ModelFacts:
    """What the space needs to know about the model: its weighted layers as (name, op kind) and, when a stored
    sensitivity study exists for it, the layer names most sensitive first."""

    layers: tuple[tuple[str, str], ...] = ()
    ranking: tuple[str, ...] = ()
    ranking_study: int | None = None

    def names_of_kind(self, kind: str) -> tuple[str, ...]:
        ops = OP_KINDS.get(kind, ())
        return tuple(name for name, op in self.layers if op in ops)


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions a search varies; an empty tuple or False keeps a dimension fixed (at the base runtime
    settings, no pruning, no recovery). `recovery_epochs` only applies when training data exists."""

    quant_modes: tuple[str, ...] = ("none", "dynamic-int8", "static-int8", "fp16")
    granularity: bool = True
    weight_type: bool = False
    calibration: bool = False
    calibrations: tuple[str, ...] = ("minmax", "percentile", "entropy")
    calib_samples: tuple[int, ...] = (32, 128)
    float_kinds: bool = False
    keep_float: tuple[int, ...] = (0, 1, 2, 4)  # used only when a sensitivity ranking exists
    prune_methods: tuple[str, ...] = ("l1-structured",)
    prune_amounts: tuple[float, ...] = (0.25, 0.5)
    recovery_epochs: tuple[int, ...] = ()
    runtimes: tuple[str, ...] = ()
    graph_opt_levels: tuple[str, ...] = ()
    spinning: tuple[bool, ...] = ()

    def __post_init__(self):
        for mode in self.quant_modes:
            quant_mode(mode)
        _check_subset("prune method", self.prune_methods, PRUNE_METHODS)
        _check_subset("calibration", self.calibrations, CALIBRATIONS)
        _check_subset("runtime", self.runtimes, RUNTIMES)
        _check_subset("graph optimization level", self.graph_opt_levels, GRAPH_OPT_LEVELS)
        if not self.quant_modes:
            raise SearchSpaceError("the search space needs at least one quantization mode (\"none\" included)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchSpace":
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(data).items() if k in names}
        return cls(**values)

    # --- the choices of each parameter -------------------------------------------------------------------

    def prune_choices(self) -> tuple[str, ...]:
        points = [f"{m}:0.5" if m == "2:4" else None for m in self.prune_methods]
        choices = ["none"]
        for method, fixed in zip(self.prune_methods, points):
            choices += [fixed] if fixed else [f"{method}:{a:g}" for a in self.prune_amounts]
        return tuple(dict.fromkeys(choices))

    def choices(self, name: str, facts: ModelFacts) -> tuple[Any, ...]:
        """The values parameter `name` can take (one value: the parameter is fixed and never suggested)."""
        table = {
            "quant": self.quant_modes,
            "per_channel": (True, False) if self.granularity else (True,),
            "weight_type": WEIGHT_TYPES if self.weight_type else ("qint8",),
            "calibration": self.calibrations if self.calibration else ("minmax",),
            "calib_samples": self.calib_samples if self.calibration else (128,),
            "float_kinds": ("none",) + tuple(k for k in OP_KINDS if facts.names_of_kind(k)) if self.float_kinds
            else ("none",),
            "keep_float": tuple(k for k in self.keep_float if k <= len(facts.ranking)) if facts.ranking else (0,),
            "prune": self.prune_choices(),
            "recovery_epochs": tuple(dict.fromkeys((0,) + self.recovery_epochs)),
            "runtime": self.runtimes,
            "graph_opt_level": self.graph_opt_levels,
            "spinning": self.spinning,
        }
        return tuple(table[name]) or ()


VARY_NAMES = ("granularity", "weight-type", "calibration", "float-kinds", "keep-float", "prune", "recovery",
              "graph-opt", "spinning", "backend")


def space_from_vary(vary: set[str], quant_modes: tuple[str, ...], runtime: str, has_training: bool) -> SearchSpace:
    """The space the command line's --vary and the Search panel's checkboxes describe (names in VARY_NAMES)."""
    unknown = sorted(set(vary) - set(VARY_NAMES))
    if unknown:
        raise SearchSpaceError(f"{unknown[0]!r} cannot vary; choose from {', '.join(VARY_NAMES)}")
    return SearchSpace(
        quant_modes=tuple(quant_modes), granularity="granularity" in vary, weight_type="weight-type" in vary,
        calibration="calibration" in vary, float_kinds="float-kinds" in vary,
        keep_float=(0, 1, 2, 4) if "keep-float" in vary else (),
        prune_methods=("l1-structured",) if "prune" in vary else (),
        recovery_epochs=(2,) if "recovery" in vary and has_training else (),
        graph_opt_levels=("basic", "all") if "graph-opt" in vary else (),
        spinning=(False, True) if "spinning" in vary and runtime == "onnxruntime" else (),
        runtimes=("onnxruntime", "torch") if "backend" in vary else ())


def _check_subset(what: str, values, allowed) -> None:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise SearchSpaceError(f"unknown {what} {bad[0]!r}; allowed: {', '.join(map(str, allowed))}")


# --- points ------------------------------------------------------------------------------------------------

def active_parameters(space: SearchSpace, facts: ModelFacts, partial: dict[str, Any],
                      has_training: bool) -> list[str]:
    """The parameters that apply given the values chosen so far in `partial` (in suggestion order)."""
    names = ["quant"]
    mode = quant_mode(partial.get("quant", "none")) if "quant" in partial else None
    if mode is not None and mode.active:
        if mode.per_channel_allowed:
            names.append("per_channel")
        if mode.weight_type_allowed:
            names.append("weight_type")
        if mode.needs_calibration:
            names += ["calibration", "calib_samples"]
        names += ["float_kinds", "keep_float"]
    names.append("prune")
    if has_training and partial.get("prune", "none") != "none":
        names.append("recovery_epochs")
    names += ["runtime", "graph_opt_level", "spinning"]
    return names


def suggest_point(space: SearchSpace, facts: ModelFacts, suggest, has_training: bool) -> dict[str, Any]:
    """One point: `suggest(name, choices)` picks each parameter that applies (and has more than one value)."""
    point: dict[str, Any] = {}
    done: set[str] = set()
    while True:
        todo = [n for n in active_parameters(space, facts, point, has_training) if n not in done]
        if not todo:
            return point
        name = todo[0]
        done.add(name)
        options = space.choices(name, facts)
        if len(options) > 1:
            point[name] = suggest(name, options)
        elif len(options) == 1 and name in ("quant", "prune"):
            point[name] = options[0]


def grid(space: SearchSpace, facts: ModelFacts, has_training: bool = False) -> Iterator[dict[str, Any]]:
    """Every point of the space (small discrete spaces only: the benchmark's exhaustive reference)."""
    def extend(point: dict[str, Any]) -> Iterator[dict[str, Any]]:
        todo = [n for n in active_parameters(space, facts, point, has_training) if n not in point]
        todo = [n for n in todo if len(space.choices(n, facts)) > 1 or n in ("quant", "prune")]
        if not todo:
            yield point
            return
        for value in space.choices(todo[0], facts):
            yield from extend({**point, todo[0]: value})

    seen = set()
    for p in extend({}):
        key = tuple(sorted(p.items()))
        if key not in seen:
            seen.add(key)
            yield p


def point_recipe(point: dict[str, Any], facts: ModelFacts, recovery_lr: float = 1e-3) -> Recipe:
    """The recipe of a point (validated)."""
    mode = point.get("quant", "none")
    excluded: list[str] = []
    kind = point.get("float_kinds", "none")
    if kind != "none":
        excluded += facts.names_of_kind(kind)
    excluded += facts.ranking[:int(point.get("keep_float", 0))]
    quant = QuantSpec(mode=mode, per_channel=bool(point.get("per_channel", mode != "none")),
                      weight_type=point.get("weight_type", "qint8"), calibration=point.get("calibration", "minmax"),
                      calib_samples=int(point.get("calib_samples", 128)),
                      exclude=tuple(dict.fromkeys(excluded)) if mode != "none" else ())
    prune = PruneSpec()
    if point.get("prune", "none") != "none":
        method, amount = point["prune"].rsplit(":", 1)
        prune = PruneSpec(amount=float(amount), method=method)
    epochs = int(point.get("recovery_epochs", 0))
    recovery = RecoverySpec(method=RECOVERY_METHOD, epochs=epochs, lr=recovery_lr) if epochs else RecoverySpec()
    recipe = Recipe(prune=prune, quantize=quant, recovery=recovery)
    recipe.validate()
    return recipe


def point_runtime(point: dict[str, Any], base: RuntimeSettings) -> RuntimeSettings:
    """The base runtime settings with the point's runtime knobs."""
    changes = {k: point[k] for k in ("runtime", "graph_opt_level", "spinning") if k in point}
    return dataclasses.replace(base, **changes)


def describe_point(point: dict[str, Any], facts: ModelFacts) -> str:
    """A short label: the recipe's description plus runtime knobs that differ from the base."""
    text = point_recipe(point, facts).describe()
    kind = point.get("float_kinds", "none")
    if kind != "none":
        text += f" ({kind} kept float)"
    if point.get("keep_float"):
        text += f" ({point['keep_float']} most sensitive kept float)"
    knobs = [f"{k}={point[k]}" for k in ("runtime", "graph_opt_level", "spinning") if k in point]
    return text + (f" [{', '.join(knobs)}]" if knobs else "")


def default_points(space: SearchSpace, facts: ModelFacts, fp16_native: bool,
                   base: RuntimeSettings | None = None) -> list[dict[str, Any]]:
    """Known-good starting points tried first (so a valid candidate comes early): dynamic int8 per-channel,
    static int8 per-channel with a small calibration set, fp16 where the CPU computes it natively, and a
    moderate structured prune; each only when the space holds it, at the base runtime settings."""
    out: list[dict[str, Any]] = []
    knobs = {k: getattr(base, k) for k in ("runtime", "graph_opt_level", "spinning")} if base is not None else {}

    def add(quant: str, prune: str = "none", **extra) -> None:
        if quant not in space.quant_modes or prune not in space.prune_choices():
            return
        point: dict[str, Any] = {"quant": quant, "prune": prune}
        partial = dict(point)
        for name in active_parameters(space, facts, partial, False):
            options = space.choices(name, facts)
            if name in point or len(options) <= 1:
                continue
            wanted = extra.get(name, knobs.get(name, options[0]))
            point[name] = wanted if wanted in options else options[0]
        out.append(point)

    add("dynamic-int8", per_channel=True)
    add("static-int8", per_channel=True, calib_samples=min(space.calib_samples or (128,)), calibration="minmax")
    if fp16_native:
        add("fp16")
    prunes = [c for c in space.prune_choices() if c.startswith("l1-structured:")]
    if prunes:
        add("none", prune=prunes[len(prunes) // 2 - 1 if len(prunes) > 1 else 0])
    return out


def distributions_of(space: SearchSpace, facts: ModelFacts) -> dict[str, Any]:
    """Optuna CategoricalDistributions of every parameter that can be suggested (to re-add stored trials)."""
    import optuna

    names = ("quant", "per_channel", "weight_type", "calibration", "calib_samples", "float_kinds", "keep_float",
             "prune", "recovery_epochs", "runtime", "graph_opt_level", "spinning")
    return {n: optuna.distributions.CategoricalDistribution(list(space.choices(n, facts)))
            for n in names if len(space.choices(n, facts)) > 1}


def count_points(space: SearchSpace, facts: ModelFacts, has_training: bool = False) -> int:
    return sum(1 for _ in grid(space, facts, has_training))

