"""The window's state: the open model, the recipe and runtime settings the controls show, and their undo history.

Widgets never hold the truth. They read this object, and send edits as undoable commands; the state emits a
signal after each change and every view redraws from it. The rules for per-layer overrides and exclusions are
plain functions in accelstudio.core.recipe_edits, tested on their own.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from accelstudio.core.data.settings import DataSettings
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.recipe import Recipe
from accelstudio.core.recipe_edits import (  # noqa: F401 - the controllers' edit rules, read from here
    MODEL_KIND_OTHER, fit_recipe_to_model, grid_setting, keep_known_layers, with_override, with_prune_excluded,
    with_quant_excluded)


def default_runtime() -> RuntimeSettings:
    """Runtime settings a new window starts with: every core, a short but stable measurement."""
    return RuntimeSettings(threads=os.cpu_count() or 1, repeats=100, time_budget_s=3.0)


class Settings:
    """The values the controls edit together: one undo step restores all of them."""

    def __init__(self, recipe: Recipe, runtime: RuntimeSettings, data: DataSettings | None = None):
        self.recipe = recipe
        self.runtime = runtime
        self.data = data if data is not None else DataSettings()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and ((self.recipe, self.runtime, self.data)
                                                == (other.recipe, other.runtime, other.data))


class _EditCommand(QUndoCommand):
    """One control change. Consecutive changes with the same merge key (a slider drag) become one undo step."""

    def __init__(self, state: "AppState", old: Settings, new: Settings, text: str, merge_id: int):
        super().__init__(text)
        self._state, self._old, self._new, self._merge_id = state, old, new, merge_id

    def id(self) -> int:  # noqa: A003 - Qt's name
        return self._merge_id

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, _EditCommand) or other.id() != self._merge_id:
            return False
        self._new = other._new
        return True

    def redo(self) -> None:
        self._state._apply(self._new)

    def undo(self) -> None:
        self._state._apply(self._old)


class AppState(QObject):
    """Current model, recipe, runtime settings and predicted pruning, with an undo stack for control edits."""

    model_changed = Signal(object)  # LoadedModel or None
    recipe_changed = Signal(object)  # Recipe
    runtime_changed = Signal(object)  # RuntimeSettings
    data_changed = Signal(object)  # DataSettings
    prediction_changed = Signal(object)  # list of LayerReport, or None when unknown

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.model: LoadedModel | None = None
        self.recipe = Recipe()
        self.runtime = default_runtime()
        self.data = DataSettings()
        self.prediction: list | None = None
        self._merge_ids: dict[str, int] = {}

    # -- model -------------------------------------------------------------------------------------------
    def set_model(self, model: LoadedModel, data: DataSettings | None = None, kind: str = "") -> list[str]:
        """Show a newly loaded model with `data` (default: its own default data). Recipe entries that do not fit
        it are reset: overrides/exclusions of layers it lacks, and what its format `kind`
        (recovery_controls.model_kind) cannot do. Returns one sentence per reset, for the status bar."""
        old_names, old_ref = set(self.layer_names()), self.model.ref if self.model else None
        self.model = model
        self.prediction = None
        names = {layer.name for layer in model.summary.layers}
        recipe, resets = fit_recipe_to_model(self.recipe, names, kind)
        if names != old_names or model.ref != old_ref or resets:
            self.undo_stack.clear()  # old steps may name layers, data or methods this model cannot use
        if recipe != self.recipe:
            self.recipe = recipe
            self.recipe_changed.emit(recipe)
        data = data if data is not None else DataSettings()
        if data != self.data:
            self.data = data
            self.data_changed.emit(data)
        self.model_changed.emit(model)
        return resets

    def layer_names(self) -> list[str]:
        """Names of the open model's weighted layers (empty when none is open)."""
        return [layer.name for layer in self.model.summary.layers] if self.model else []

    def set_prediction(self, reports: list | None) -> None:
        """Store the predicted per-layer pruning of the current recipe."""
        self.prediction = reports
        self.prediction_changed.emit(reports)

    # -- edits -------------------------------------------------------------------------------------------
    def edit(self, text: str, *, recipe: Recipe | None = None, runtime: RuntimeSettings | None = None,
             data: DataSettings | None = None, merge_key: str | None = None) -> bool:
        """Push an undoable change of the recipe, runtime and/or data; returns False when nothing changed."""
        old = Settings(self.recipe, self.runtime, self.data)
        new = Settings(recipe if recipe is not None else self.recipe,
                       runtime if runtime is not None else self.runtime,
                       data if data is not None else self.data)
        if new == old:
            return False
        new.recipe.validate()
        self.undo_stack.push(_EditCommand(self, old, new, text, self._merge_id(merge_key)))
        return True

    def restore(self, recipe: Recipe, runtime: RuntimeSettings, text: str = "Restore run settings",
                data: DataSettings | None = None) -> None:
        """Set recipe, runtime (and data, when given) in one undo step (used to restore a past run)."""
        self.edit(text, recipe=recipe, runtime=runtime, data=data)

    def _merge_id(self, key: str | None) -> int:
        if key is None:
            return -1
        return self._merge_ids.setdefault(key, len(self._merge_ids) + 1)

    def _apply(self, settings: Settings) -> None:
        if settings.recipe != self.recipe:
            self.recipe = settings.recipe
            self.recipe_changed.emit(self.recipe)
        if settings.runtime != self.runtime:
            self.runtime = settings.runtime
            self.runtime_changed.emit(self.runtime)
        if settings.data != self.data:
            self.data = settings.data
            self.data_changed.emit(self.data)


def predicted_size(summary: Any, recipe: Recipe, reports: list | None, backend: str | None = None):
    """The size the recipe is expected to leave (accelstudio.core.compress.size_prediction.predict_size, where the rules
    live): bytes, nonzero parameters, whether anything changes, and notes on what stays in float."""
    from accelstudio.core.compress.size_prediction import predict_size

    return predict_size(summary, recipe, reports, backend)
