"""Connects the state to the model view and the controls, and schedules the background model work.

Edits flow one way: a control emits an edit -> AppState pushes an undo command -> AppState emits a change ->
the views redraw and (debounced, ~80 ms) the predicted sparsity, the histogram grid and the hardware
warnings are recomputed. Predictions and histograms run on the TaskRunner thread, never on the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from accelstudio.app.views.controls import RecipeControls
from accelstudio.app.bridges.model_loader import ModelLoader, TaskRunner, freeze_long_lived_objects
from accelstudio.app.views.model_view import ModelView
from accelstudio.app.views.runtime_panel import RuntimePanel
from accelstudio.app.bridges.model_loader import LoadedModel
from accelstudio.app.control.state import (AppState, grid_setting, predicted_size, with_override,
                                   with_prune_excluded, with_quant_excluded)
from accelstudio.core.errors import AccelStudioError
from accelstudio.core.recipe import Recipe

PREDICT_DELAY_MS = 80
# a new model's pruning prediction starts after its table and plots are painted: on a big model the planner's
# pass over every weight competes with the painting for the GIL, and the window would stall
MODEL_SETTLE_MS = 250


def compute_histogram(model, layer: str, grid: tuple[int, bool, bool] | None):
    """(counts, edges, levels or None) for `layer` of a ModelHandle or ModelData; runs on the background
    thread."""
    from accelstudio.core.model.inspect import values_histogram
    from accelstudio.core.compress.quant_sim import quantization_grid
    from accelstudio.core.compress.snapshot import model_layer_weights

    weights = model_layer_weights(model, layer)
    counts, edges = values_histogram(weights, bins=80)
    levels = None
    if grid is not None:
        bits, per_channel, symmetric = grid
        levels = quantization_grid(weights, bits, per_channel, symmetric)
    return counts, edges, levels


def compute_mask(model, layer: str, prune_spec) -> dict | None:
    """The weights of `layer` the pruning spec removes (core/compress/prune_mask.py): the histogram split into
    kept and removed over the same bins, and the mask image; None when the layer is not pruned. Runs on the
    background thread."""
    from accelstudio.core.compress.prune_mask import layer_mask, mask_image, split_histogram
    from accelstudio.core.compress.snapshot import model_prunable

    if not prune_spec.active or layer in prune_spec.exclude:
        return None
    prunable = model_prunable(model)
    if layer not in {w.name for w in prunable}:
        return None
    mask = layer_mask(prunable, layer, prune_spec)
    edges, kept, removed = split_histogram(mask)
    return {"edges": edges, "kept": kept, "removed": removed, "image": mask_image(mask),
            "shape": tuple(mask.weights.shape), "exact": mask.exact, "kept_count": mask.kept_count,
            "removed_count": mask.removed_count}


def grid_label(recipe: Recipe, levels) -> str:
    """Legend text for the grid lines, e.g. '2-bit, 4 levels'."""
    q = recipe.quantize
    grid = grid_setting(q)
    if grid is None or levels is None:
        return ""
    bits, per_channel, _ = grid
    scope = ", widest ch." if per_channel else ""
    return f"{bits}-bit, {len(levels)} levels{scope}"


class ModelController(QObject):
    """Owns the state, the background runner and the loader; keeps view and controls in step with the state."""

    status = Signal(str)  # a line for the status bar

    def __init__(self, view: ModelView, controls: RecipeControls, runtime_panel: RuntimePanel,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.state = AppState(self)
        self.runner = TaskRunner(self)
        self.loader = ModelLoader(self.runner, self)
        self.view, self.controls, self.runtime_panel = view, controls, runtime_panel
        self._predict_timer = QTimer(self, singleShot=True, interval=PREDICT_DELAY_MS)
        self._predict_timer.timeout.connect(self._refresh_derived)
        self._settle_timer = QTimer(self, singleShot=True, interval=MODEL_SETTLE_MS)
        self._settle_timer.timeout.connect(self._submit_prediction)
        self._wire()
        controls.show_recipe(self.state.recipe)
        runtime_panel.show_runtime(self.state.runtime)

    def _wire(self) -> None:
        s = self.state
        s.model_changed.connect(self._model_changed)
        s.recipe_changed.connect(self._recipe_changed)
        s.runtime_changed.connect(self._runtime_changed)
        s.prediction_changed.connect(self._show_prediction)
        self.controls.recipe_edited.connect(lambda r, text, key: self._edit(text, recipe=r, merge_key=key))
        self.controls.selection_action.connect(lambda key: self.layer_action(key, self.view.selected_layers()))
        self.runtime_panel.runtime_edited.connect(lambda rt, text: self._edit(text, runtime=rt))
        self.view.current_layer_changed.connect(lambda _name: self.refresh_histogram())
        self.view.layer_action.connect(self.layer_action)

    def _edit(self, text: str, **changes) -> None:
        try:
            self.state.edit(text, **changes)
        except AccelStudioError as exc:  # a combination the recipe rules refuse: say why, keep the old one
            self.status.emit(str(exc))
            self.controls.show_recipe(self.state.recipe)
            self.runtime_panel.show_runtime(self.state.runtime)

    def start(self) -> None:
        """Discover the runtimes of this machine in the background."""
        from accelstudio.core.measure.runtimes import available_runtimes

        self.runner.submit("runtimes", available_runtimes, self._runtimes_found,
                           lambda exc, _t: self.status.emit(f"Could not list runtimes: {exc}"))

    def is_settled(self) -> bool:
        """True when the open model is fully shown: plots drawn, prediction and histogram landed, nothing
        queued or scheduled in the background."""
        return not (self.runner.is_busy() or self._settle_timer.isActive() or self._predict_timer.isActive()
                    or self.view.plots_pending())

    def shutdown(self) -> None:
        """Stop timers, end a model loading in a separate process and join the background thread."""
        self._predict_timer.stop()
        self._settle_timer.stop()
        self.loader.cancel()
        self.runner.shutdown()

    # -- state changes -------------------------------------------------------------------------------------
    def _model_changed(self, model: LoadedModel) -> None:
        freeze_long_lived_objects()
        self.view.show_model(model.title, model.summary)
        self.view.show_recipe(self.state.recipe)
        self.controls.show_recipe(self.state.recipe)
        self._update_warnings()
        self._settle_timer.start()  # the prediction, once the plots are painted

    def _recipe_changed(self, recipe: Recipe) -> None:
        self.controls.show_recipe(recipe)
        self.view.show_recipe(recipe)
        self.view.totals.show_predicted(None, recipe.describe())
        self._predict_timer.start()

    def _runtime_changed(self, runtime) -> None:
        self.runtime_panel.show_runtime(runtime)
        self._update_warnings()
        self._show_prediction(self.state.prediction)  # the size rules depend on the runtime's backend

    def _runtimes_found(self, options: list) -> None:
        self.runtime_panel.set_options(options)
        runtime = self.state.runtime
        if not any(o.runtime == runtime.runtime and o.device == runtime.device for o in options) and options:
            # the saved choice is not available here; fall back silently to the first option, no undo step
            from dataclasses import replace

            self.state.runtime = replace(runtime, runtime=options[0].runtime, device=options[0].device)
            self.runtime_panel.show_runtime(self.state.runtime)

    def _refresh_derived(self) -> None:
        """Recompute what depends on the recipe: prediction, histogram grid, warnings."""
        self._predict_timer.stop()
        self._update_warnings()
        self.refresh_histogram()
        self._submit_prediction()

    def _submit_prediction(self) -> None:
        """Predict the current recipe's pruning on the open model in the background."""
        self._settle_timer.stop()
        model = self.state.model
        if model is None or self.runner.closed:
            return
        recipe = self.state.recipe
        from accelstudio.core.compress.size_prediction import unpruned_reports
        from accelstudio.core.compress.snapshot import model_predict_sparsity

        if recipe.prune.active:
            task = lambda: model_predict_sparsity(model.handle, recipe.prune)  # noqa: E731
        else:  # nothing to plan: no pass over every weight (seconds of the GIL on a big model)
            task = lambda: unpruned_reports(model.summary, recipe.prune.method)  # noqa: E731
        self.runner.submit("predict", task, self.state.set_prediction, self._prediction_failed)

    def _prediction_failed(self, exc: BaseException, _trace: str) -> None:
        self.state.set_prediction(None)
        self.status.emit(f"Cannot predict pruning: {exc}")

    def _show_prediction(self, reports: list | None) -> None:
        model = self.state.model
        if model is None:
            return
        recipe = self.state.recipe
        backend = "onnx" if self.state.runtime.runtime == "onnxruntime" else "torch"
        prediction = predicted_size(model.summary, recipe, reports, backend)
        self.view.show_prediction(reports, prediction, recipe.describe())

    def _update_warnings(self) -> None:
        from accelstudio.core.measure.hardware import hardware_warnings

        runtime = self.state.runtime
        backend = "onnx" if runtime.runtime == "onnxruntime" else "torch"
        try:
            warnings = hardware_warnings(self.state.recipe, backend, runtime.device)
        except Exception as exc:  # advice must never break editing
            warnings = []
            self.status.emit(f"Could not check the hardware: {exc}")
        self.controls.show_warnings(warnings)

    def refresh_histogram(self) -> None:
        """Recompute the histogram and quantization grid of the current layer in the background."""
        model, layer = self.state.model, self.view.current_layer()
        if model is None or layer is None or self.runner.closed:  # a deferred plot step after closing
            return
        recipe = self.state.recipe
        grid = grid_setting(recipe.quantize)

        def compute():
            return compute_histogram(model.handle, layer, grid), compute_mask(model.handle, layer, recipe.prune)

        def done(result) -> None:
            (counts, edges, levels), mask = result
            if mask is None:
                self.view.histogram.set_histogram(layer, counts, edges, levels, grid_label(recipe, levels))
                self.view.mask_heatmap.clear_mask(f"Mask of {layer}: the recipe does not prune it")
                return
            self.view.histogram.set_histogram(layer, mask["kept"], mask["edges"], levels, grid_label(recipe, levels),
                                              removed=mask["removed"])
            self.view.mask_heatmap.set_mask(layer, mask["image"], mask["kept_count"], mask["removed_count"],
                                            mask["shape"], mask["exact"])

        self.runner.submit("histogram", compute, done,
                           lambda exc, _t: self.view.histogram.clear_histogram(f"No histogram for {layer}: {exc}"))

    # -- per-layer actions ---------------------------------------------------------------------------------
    def layer_action(self, key: str, names: list[str]) -> None:
        """Apply a table/context-menu action ('override', 'prune-exclude', ...) to `names`."""
        if not names:
            self.status.emit("Select one or more layers in the table first.")
            return
        recipe = self.state.recipe
        amount = self.controls.override_amount()
        changes = {
            "override": lambda: with_override(recipe, names, amount),
            "clear-override": lambda: with_override(recipe, names, None),
            "prune-exclude": lambda: with_prune_excluded(recipe, names, True),
            "prune-include": lambda: with_prune_excluded(recipe, names, False),
            "quant-exclude": lambda: with_quant_excluded(recipe, names, True),
            "quant-include": lambda: with_quant_excluded(recipe, names, False),
        }
        if key not in changes:
            raise ValueError(f"unknown layer action {key!r}")
        label = names[0] if len(names) == 1 else f"{len(names)} layers"
        self._edit(f"{key.replace('-', ' ').capitalize()}: {label}", recipe=changes[key]())
