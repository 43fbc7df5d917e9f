"""A job (model + recipe + runtime settings + data) and the run it produces. Plain data, JSON-serializable."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from accelstudio.core.recipe import Recipe

RUNTIMES = ("torch", "torchscript", "onnxruntime")
DEVICES = ("cpu", "cuda")
STATUSES = ("done", "failed", "cancelled")
GRAPH_OPT_LEVELS = ("disabled", "basic", "extended", "all")  # ONNX Runtime graph optimization levels
COMPILE_BACKENDS = ("inductor", "torchscript", "ort-levels", "openvino")  # compiled forms measured next to eager
# Which part of the evaluation data a run evaluates: all of it, or one of two disjoint fixed-seed halves (a
# search chooses on "validation" and reports its answer on "test"; core/data/run_data.py splits).
EVAL_SPLITS = ("all", "validation", "test")


@dataclass(frozen=True)
class RuntimeSettings:
    """How to measure: runtime and device, threads (0 = all cores), batch, warm-up, repeats or a time budget."""

    runtime: str = "onnxruntime"
    device: str = "cpu"
    threads: int = 0
    batch: int = 1
    warmup: int = 10
    repeats: int = 200
    time_budget_s: float = 3.0
    streams: int = 1
    provider: str | None = None  # an ONNX Runtime execution provider name, when not the default for the device
    # ONNX Runtime thread knobs, measured like any other setting (core/measure/runtimes.py applies them; the run's
    # execution record and the baseline key hold them). intra_threads None: `threads`. inter_threads > 1 turns
    # on the parallel executor (ORT uses inter-op threads only there). spinning None: ONNX Runtime's default
    # (spinning on); False is what runs stored before these knobs measured.
    intra_threads: int | None = None
    inter_threads: int = 1
    spinning: bool | None = False
    graph_opt_level: str = "all"
    # A compiled form measured next to the eager one in the same job (core/measure/compile_step.py): "" none,
    # else one of COMPILE_BACKENDS; the run's own latency stays the eager one, the comparison is metrics["compile"].
    compile: str = ""
    # a per-operator profile pass after the timed calls (metrics["profile"]; core/measure/profile.py)
    profile: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RuntimeSettings":
        """Settings from a stored dict; keys it lacks (specs stored before a knob existed) take the defaults,
        and keys this version does not know are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(data).items() if k in names})


@dataclass(frozen=True)
class JobSpec:
    """What to run. `model` is a file path or "example:<name>"; `data` a data set path (None: the example's
    labeled test set, or synthesized inputs for a user model). `evaluate` turns accuracy/fidelity on."""

    model: str
    recipe: Recipe = field(default_factory=Recipe)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    data: str | None = None
    train_data: str | None = None  # labeled .npz for accuracy recovery of a user model (examples bring their own)
    calib_data: str | None = None  # calibration set for static quantization (None: a part split off `data`)
    # Concrete shapes chosen by the user per input name, e.g. {"x": [1, 3, 640, 640]}; dims not given are taken
    # from the data, else filled by documented guesses (and the guess is recorded in the run's metrics).
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    allow_train_overlap: bool = False  # run even when train_data shares samples with data (a loud note is kept)
    trust: bool = False
    evaluate: bool = True
    max_eval_samples: int = 2000
    timeout_s: float = 600.0  # per stage
    memory_limit_mb: int = 8192
    keep_artifact: bool = True  # save the optimized model in the artifacts folder
    eval_split: str = "all"  # one of EVAL_SPLITS
    # also time the unchanged model interleaved with the compressed one in this job (metrics["interleaved"]:
    # the speed-up with its interval against a baseline measured side by side, core/measure/interleaved.py)
    baseline_latency: bool = False
    # runtime fields the interleaved baseline takes instead of this run's ("runtime", "graph_opt_level",
    # "spinning"): a search that varies them compares every trial with one reference setting
    baseline_runtime: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["recipe"] = self.recipe.to_dict()
        d["runtime"] = self.runtime.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobSpec":
        d = dict(data)
        d["recipe"] = Recipe.from_dict(d.get("recipe", {}))
        d["runtime"] = RuntimeSettings.from_dict(d.get("runtime", {}))
        return cls(**d)


@dataclass(frozen=True)
class RunResult:
    """One finished run. `metrics` holds the numbers (see pipeline.py for the keys: p50_ms, p90_ms, p99_ms,
    mean_ms, std_ms, iqr_ms, n, throughput, cold_start_ms, stable, accuracy, accuracy_top5, baseline_accuracy,
    accuracy_delta, accuracy_delta_ci, mcnemar_p, discordant {baseline_only, new_only}, fidelity {top1_agreement,
    cosine, max_abs_error, kl_divergence, n_compared, output_kind ("class_scores" | "embedding"), output_shape,
    output_reason}, size_bytes, baseline_size_bytes, params, flops, ...); `layers` the per-layer report;
    `latencies_ms` the per-call timings. accelstudio.core.runs.report.build_report is the one reading of these keys.

    Keys that describe what was measured on (each optional; readers must tolerate their absence in older runs):
      data: {"eval": {"source": str, "n": int, "synthesized": bool, "labeled": bool},
             "calib": {"source": str, "n": int, "split_from_eval": bool, "overlap_with_eval": int (--calib only)}
                      | None,
             "train": {"source": str, "n": int, "overlap_with_eval": int} | None,
             "input_shapes": {input name: [dims]} (one call's shapes), "guessed_dims": [str, ...] ("x[2]=224 (H)"),
             "layout": "batched" | "fixed" | "per-call"}  (see core/model/input_shapes.py and core/data/run_data.py)
      machine: {"load_1min": float, "other_cpu_pct": float, "busy": bool}
      execution: {"device": str, "providers": [str, ...], "threads": int (intra-op)}  (what actually ran); ONNX
                 Runtime runs add "inter_threads": int, "execution_mode": "sequential" | "parallel",
                 "spinning": bool (intra-op spinning as effective, ORT's default resolved), "graph_opt_level":
                 "disabled" | "basic" | "extended" | "all"
      compile: {"backend": str, "status": ..., see core/measure/compile_step.py CompileReport.to_dict}  (only
               when RuntimeSettings.compile is set)
      profile: per-operator profile of the measured model, only when RuntimeSettings.profile was set
               (format in core/measure/profile.py), or absent; profile_error: why it could not be made
      roofline: with a profile, each profiled layer under this machine's measured roofs and its bound class
                (format in core/measure/roofline.py), or absent; roofline_error: why it could not be made"""

    status: str
    reason: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    model_identity: dict[str, Any] = field(default_factory=dict)  # path, sha256, name, key (core/runs/baseline.py)
    artifact: str | None = None
    run_id: int | None = None
    created: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
