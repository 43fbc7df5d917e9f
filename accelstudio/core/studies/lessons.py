"""Guided lessons: short walks through one idea each, step by step, on the bundled digits models.

A step names the control it sets or talks about and the plot that shows the result (Qt object names, checked by
the tests against the window), explains in two or three sentences what happens and why (with the formula where
it helps), and says what to run: nothing ("show": the settings change and the plots follow at once), one job
("run"), several jobs ("sweep": one per variant), or the transfer-learning experiment ("transfer"). Step recipes
are complete (sections not named are the defaults), so a step does the same whatever was set before. "@layer"
in a recipe stands for the step's layer; "@cores" in a sweep for this machine's thread counts.

The app's lesson runner (app/control/lesson_controller.py) applies steps through the window's state, runs jobs
through the run controller and the experiment on a background thread; the plans here are plain data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.recipe import Recipe

ACTIONS = ("show", "run", "sweep", "transfer")
LAYER_PLACEHOLDER = "@layer"
CORES_PLACEHOLDER = "@cores"
OUTLIER_MODEL = "lesson:digits-cnn-outlier"  # made by core/studies/lesson_models.py when the lesson starts
QUICK_RUNTIME = {"runtime": "onnxruntime", "device": "cpu", "warmup": 5, "repeats": 100, "time_budget_s": 1.0,
                 "streams": 1}


class UnknownLesson(AccelStudioError):
    """A lesson name this version does not have."""


@dataclass(frozen=True)
class LessonStep:
    """One step. `recipe`/`runtime` are the settings it makes (JSON forms); `variants` the runtime or recipe
    changes of each job of a sweep; `layer` the layer to select (its weights are what the plots show)."""

    title: str
    text: str
    control: str = ""
    plot: str = ""
    formula: str = ""
    action: str = "show"
    recipe: dict[str, Any] | None = None
    runtime: dict[str, Any] = field(default_factory=dict)
    variants: tuple[dict[str, Any], ...] = ()
    layer: str = ""
    look: str = ""  # what to look for in the plot once the step has run
    evaluate: bool = True


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    summary: str
    model: str  # "example:<name>" or OUTLIER_MODEL
    backend: str
    steps: tuple[LessonStep, ...]


def _prune(amount: float, method: str = "l1-unstructured", scope: str = "global", **extra) -> dict[str, Any]:
    return {"prune": {"amount": amount, "method": method, "scope": scope, **extra}}


def _sim(bits: int, per_channel: bool = False, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"quantize": {"mode": "sim", "bits": bits, "per_channel": per_channel, "exclude": list(exclude)}}


PRUNING = Lesson(
    "pruning", "Pruning: which zeros make a model faster",
    "Unstructured pruning zeroes single weights; structured pruning removes whole channels. Only one of them "
    "makes the matrices smaller, and layers differ in how much they can lose.",
    "example:digits-cnn", "torch", (
        LessonStep("Zero the smallest weights",
                   "Pruning keeps a weight only where a mask M is 1: the 60% of weights with the smallest |w| "
                   "across all layers get M = 0. Look at fc1's weights: the removed ones (orange) are the ones "
                   "nearest zero, and the mask tab shows where they sit in the matrix.",
                   control="pruneGroup", plot="weightTabs", formula="W' = W × M,   M = 0 where |w| is among the "
                   "smallest 60%", recipe=_prune(0.6), layer="fc1",
                   look="The histogram splits into kept and removed weights; the sparsity bars show each layer's "
                        "share."),
        LessonStep("Measure it",
                   "The worker applies the mask and times the model. The matrices still have the same shape, and "
                   "dense kernels multiply the zeros too, so expect the same latency and almost the same "
                   "accuracy.",
                   control="runButton", plot="tradeoffPlot", action="run", recipe=_prune(0.6),
                   look="The verdict line: on a quiet machine the speed-up's interval contains 1 ('within "
                        "noise'). A 'faster' here comes from the machine drifting between the two runs (see "
                        "the busy-machine warning), not from the zeros: run the step again."),
        LessonStep("Remove whole channels",
                   "l1-structured pruning removes the output channels with the smallest L1 norm in each layer, "
                   "and the inputs of the next layer that read them. The matrices really shrink, so fewer "
                   "multiply-adds run and the model gets faster. Accuracy pays more, because whole features go.",
                   control="pruneMethod", plot="tradeoffPlot", action="run",
                   formula="MACs of a conv = C_out × C_in × k² × H × W; half the channels of two layers in a row "
                           "leave a quarter of the second one's",
                   recipe=_prune(0.5, "l1-structured", "layer"), layer="conv2",
                   look="A point to the left of the baseline (faster) and lower: without retraining, half the "
                        "channels of this small network can take most of its accuracy (BROKEN). The recovery "
                        "lesson wins it back."),
        LessonStep("Which layers can lose weights?",
                   "Each job prunes 80% of one layer alone and leaves the others untouched. The accuracy lost "
                   "per layer is its sensitivity: prune the robust layers harder and spare the sensitive ones "
                   "(right-click a layer in the table to give it its own amount).",
                   control="layerTable", plot="tradeoffPlot", action="sweep",
                   formula="sensitivity(layer) = accuracy(baseline) - accuracy(only that layer pruned)",
                   variants=({"recipe": _prune(0.0, overrides={"conv1": 0.8})},
                             {"recipe": _prune(0.0, overrides={"conv2": 0.8})},
                             {"recipe": _prune(0.0, overrides={"fc1": 0.8})},
                             {"recipe": _prune(0.0, overrides={"fc2": 0.8})}),
                   runtime={"repeats": 30, "time_budget_s": 0.3},
                   look="The lesson panel lists the accuracy change per layer; small layers near the input and "
                        "the classifier are usually the most sensitive."),
    ))

QUANTIZATION = Lesson(
    "quantization", "Quantization: 8, 4 and 2 bits, and the outlier that breaks them",
    "Weights are rounded to a grid of 2^b levels. Fewer bits mean a coarser grid; one outlier channel stretches "
    "a per-tensor grid so far that most weights land on zero.",
    OUTLIER_MODEL, "torch", (
        LessonStep("An 8-bit grid",
                   "Quantization stores each weight as an integer q on a grid with step s (the scale) and offset "
                   "z; 8 bits give 255 levels between the smallest and largest weight. This model is digits-cnn "
                   "with fc1's unit scaled by 32 and the next layer's weights divided by 32: the same function, "
                   "but one outlier channel.",
                   control="bitsSlider", plot="weightTabs", formula="q = round(w / s) + z,   s = max|w| / (2^(b-1) - 1)",
                   recipe=_sim(8), layer="fc1",
                   look="The red ticks under the histogram are the grid; the histogram's long tail is the outlier "
                        "channel."),
        LessonStep("4 bits",
                   "With 4 bits only 15 levels remain, and the step s is set by the outlier: s = max|w| / 7. "
                   "Almost every ordinary weight of fc1 is smaller than s / 2 and rounds to zero.",
                   control="bitsSlider", plot="weightTabs", formula="|w| < s / 2  →  q = 0",
                   recipe=_sim(4), layer="fc1", look="Count the grid lines inside the bulk of the histogram."),
        LessonStep("Measure 4-bit per-tensor",
                   "The worker rounds every layer's weights to its 4-bit grid (simulated: stored in float, to see "
                   "accuracy) and evaluates on the digits test set. fc1 has lost its information, so expect the "
                   "accuracy to collapse.",
                   control="runButton", plot="tradeoffPlot", action="run", recipe=_sim(4), layer="fc1",
                   look="A point far below the baseline, marked BROKEN or with a large accuracy drop."),
        LessonStep("2 bits",
                   "Two bits leave 3 levels (-s, 0, +s). Even without an outlier, that is too coarse for most "
                   "layers; the histogram shows how few values remain.",
                   control="bitsSlider", plot="weightTabs", recipe=_sim(2, True), layer="conv2",
                   formula="levels = 2^b - 1 (symmetric)"),
        LessonStep("One scale per channel",
                   "Per-channel quantization gives each output channel its own scale s_c, so the outlier channel "
                   "no longer sets the step of the others. Same 4 bits, same size.",
                   control="quantGranularity", plot="tradeoffPlot", action="run", recipe=_sim(4, True),
                   layer="fc1", formula="s_c = max|w_c| / (2^(b-1) - 1) for each output channel c",
                   look="Accuracy back within a few points of the baseline."),
        LessonStep("Or keep the outlier layer in float",
                   "Back to per-tensor 4 bits, but fc1 is excluded (kept in fp32): the other layers have no "
                   "outlier, so their grids fit. Mixed precision trades a little size for the accuracy.",
                   control="quantGroup", plot="tradeoffPlot", action="run", recipe=_sim(4, False, ("fc1",)),
                   layer="fc1", look="Compare the three 4-bit runs in the runs table."),
    ))

RECOVERY = Lesson(
    "recovery", "Recovering accuracy: fine-tuning and distillation",
    "After heavy pruning a few epochs of training win back accuracy; distillation also learns from the original "
    "model's soft outputs.",
    "example:digits-cnn", "torch", (
        LessonStep("Prune hard",
                   "80% of the weights go (global ranking). The remaining weights were never trained to work "
                   "without the others, so accuracy drops.",
                   control="pruneGroup", plot="tradeoffPlot", action="run", recipe=_prune(0.8), layer="fc1",
                   formula="W' = W × M", look="The run's accuracy change against the baseline."),
        LessonStep("Fine-tune",
                   "Three epochs of training on the digits training split (never the test split), with the mask "
                   "kept: pruned weights stay zero. The loss curve fills in as the worker trains.",
                   control="recoveryGroup", plot="trainingPlot", action="run",
                   recipe={**_prune(0.8), "recovery": {"method": "finetune", "epochs": 3, "lr": 1e-3}},
                   formula="L = CE(y, f(x))", look="The loss falls epoch by epoch; then the accuracy in the table."),
        LessonStep("Distill",
                   "The same training, but the loss also pulls the pruned network's softened outputs toward the "
                   "original's (the teacher). It learns which wrong digits look alike, not only the right label.",
                   control="recoveryMethod", plot="trainingPlot", action="run",
                   recipe={**_prune(0.8), "recovery": {"method": "distill", "epochs": 3, "lr": 1e-3,
                                                       "temperature": 4.0, "alpha": 0.7}},
                   formula="L = α T² KL(softmax(z_t / T) ‖ softmax(z_s / T)) + (1 - α) CE(y, z_s)",
                   look="Both curves side by side; compare the two runs' accuracy and intervals."),
    ))

HARDWARE = Lesson(
    "hardware", "Hardware and parallelism: threads, batch and streams",
    "More threads cut latency until the serial part dominates (Amdahl's law); bigger batches and concurrent "
    "streams raise throughput. All measured on this machine.",
    "example:digits-resnet", "onnx", (
        LessonStep("Latency against threads",
                   "The same model is timed with 1, 2, 4, ... threads up to this machine's cores. A speed-up "
                   "below the thread count shows the part of the work that does not run in parallel; Amdahl's "
                   "law is fitted to the measurements.",
                   control="threadsSpin", plot="scalingPlot", action="sweep",
                   formula="S(n) = 1 / ((1 - p) + p / n),   at most 1 / (1 - p)", evaluate=False,
                   recipe={}, runtime={"batch": 1}, variants=({"runtime": {"threads": CORES_PLACEHOLDER}},),
                   look="Points with intervals, the fitted curve and the ideal S = n line."),
        LessonStep("Throughput against batch",
                   "Batching hands the runtime several samples per call. Each call takes longer, but the cost "
                   "per sample falls, because weights are read once per batch and the kernels run on bigger "
                   "matrices.",
                   control="batchSpin", plot="scalingPlot", action="sweep", recipe={}, evaluate=False,
                   formula="throughput = batch / latency per call",
                   variants=({"runtime": {"batch": 1}}, {"runtime": {"batch": 8}}, {"runtime": {"batch": 32}}),
                   look="Compare samples per second across batches: they rise where one sample leaves the cores "
                        "idle, and stay flat where one sample already keeps them busy."),
        LessonStep("Concurrent streams",
                   "Instead of one call using every core, several streams (threads of the application) each "
                   "run their own calls with one intra-op thread. On a machine with few cores this often gives "
                   "the most samples per second, at the cost of each call's latency.",
                   control="runtimeGroup", plot="scalingPlot", action="sweep", recipe={}, evaluate=False,
                   formula="throughput(streams) ≤ streams × batch / latency(1 thread)",
                   variants=({"runtime": {"batch": 1, "threads": 1, "streams": 2}},),
                   look="The streams bar against the best single-stream throughput."),
    ))

TRANSFER = Lesson(
    "transfer", "Transfer learning: reuse features for new classes",
    "A network trained on digits 0-4 already knows strokes and curves. Reusing its convolutional layers, a few "
    "samples of 5-9 may be enough to learn the new digits.",
    "example:digits-cnn", "torch", (
        LessonStep("The experiment",
                   "Three real trainings of the digits-cnn architecture run here. A source network learns "
                   "digits 0-4 from every training sample of them. A transfer network keeps its convolutional "
                   "layers frozen and trains new classifier layers on 5 samples of each digit 5-9, and the same "
                   "architecture from random weights trains on the same 25 samples.",
                   plot="trainingPlot", recipe={},
                   formula="f_new(x) = head_new(features_0-4(x)),  features frozen"),
        LessonStep("Train",
                   "All three train in the background (Cancel stops them). The curves show each network's loss "
                   "and its accuracy on the test digits after every epoch; the time per epoch gives the estimate "
                   "of what is left.",
                   control="lessonCancel", plot="trainingPlot", action="transfer", recipe={},
                   look="Transfer starts higher and settles faster; compare the final accuracies and their "
                        "intervals: with 180 test samples a few points are within noise."),
    ))

LESSONS: dict[str, Lesson] = {lesson.name: lesson for lesson in (PRUNING, QUANTIZATION, RECOVERY, HARDWARE, TRANSFER)}


def get_lesson(name: str) -> Lesson:
    """The lesson called `name`; UnknownLesson lists the names there are."""
    try:
        return LESSONS[name]
    except KeyError:
        raise UnknownLesson(f"no lesson called {name!r}; lessons: {', '.join(LESSONS)}") from None


def thread_counts(cores: int | None = None) -> list[int]:
    """1, 2, 4, ... up to the cores, plus the core count itself when it is not a power of two."""
    cores = max(1, cores or os.cpu_count() or 1)
    counts, n = [], 1
    while n <= cores:
        counts.append(n)
        n *= 2
    if counts[-1] != cores:
        counts.append(cores)
    return counts


def step_recipe(step: LessonStep, current: Recipe, layer: str = "") -> Recipe:
    """The recipe the step sets (the current one when it sets none), "@layer" replaced by `layer`."""
    if step.recipe is None:
        return current
    return Recipe.from_dict(_replace_layer(step.recipe, layer or step.layer))


def step_runtime(lesson_runtime: dict[str, Any], step: LessonStep, current: RuntimeSettings) -> RuntimeSettings:
    """The runtime settings of a step: the current ones with the lesson's and the step's values over them."""
    values = {**current.to_dict(), **QUICK_RUNTIME, **lesson_runtime, **step.runtime}
    return RuntimeSettings.from_dict(values)


def step_jobs(step: LessonStep, base: JobSpec, cores: int | None = None) -> list[JobSpec]:
    """The jobs a step runs, from the job the window would run now (its recipe and runtime already the step's)."""
    from dataclasses import replace

    if step.action == "run":
        return [replace(base, evaluate=step.evaluate)]
    if step.action != "sweep":
        return []
    jobs = []
    for variant in step.variants:
        runtime = dict(variant.get("runtime") or {})
        recipe = Recipe.from_dict(variant["recipe"]) if "recipe" in variant else base.recipe
        threads = thread_counts(cores) if runtime.get("threads") == CORES_PLACEHOLDER else [None]
        for n in threads:
            values = {**base.runtime.to_dict(), **runtime}
            if n is not None:
                values["threads"] = n
            jobs.append(replace(base, recipe=recipe, runtime=RuntimeSettings.from_dict(values),
                                evaluate=step.evaluate))
    return jobs


def _replace_layer(value: Any, layer: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace_layer(v, layer) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_layer(v, layer) for v in value]
    return layer if value == LAYER_PLACEHOLDER else value


def lesson_problems(lesson: Lesson, widgets: set[str] | None = None) -> list[str]:
    """What is wrong with a lesson: unknown actions, texts too short or too long, recipes that do not validate,
    sweeps without variants, and (given the window's widget names) controls or plots that do not exist."""
    problems = []
    for i, step in enumerate(lesson.steps, 1):
        where = f"{lesson.name} step {i} ({step.title})"
        if step.action not in ACTIONS:
            problems.append(f"{where}: unknown action {step.action!r}")
        sentences = [s for s in step.text.replace("!", ".").replace("?", ".").split(". ") if s.strip()]
        if not 2 <= len(sentences) <= 4:
            problems.append(f"{where}: {len(sentences)} sentences; explain in two or three")
        if step.action == "sweep" and not step.variants:
            problems.append(f"{where}: a sweep without variants")
        try:
            step_recipe(step, Recipe(), "layer").validate()
            for variant in step.variants:
                if "recipe" in variant:
                    Recipe.from_dict(variant["recipe"]).validate()
        except AccelStudioError as exc:
            problems.append(f"{where}: bad recipe ({exc})")
        for kind, name in (("control", step.control), ("plot", step.plot)):
            if widgets is not None and name and name not in widgets:
                problems.append(f"{where}: no {kind} called {name!r} in the window")
    if not any(step.formula for step in lesson.steps):
        problems.append(f"{lesson.name}: no step gives a formula")
    return problems
