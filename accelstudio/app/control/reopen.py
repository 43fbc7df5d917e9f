"""Reopen last: the window remembers the model and recipe it last had open (in the app's settings) and
`reopen_last()` opens them again at start. A model file that is gone gives a status-bar message, not a dialog.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QObject

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.recipe import Recipe

MODEL_KEY, BACKEND_KEY, RECIPE_KEY = "last/model", "last/backend", "last/recipe"
EXAMPLE_PREFIX = "example:"
MESSAGE_MS = 12_000


class ReopenController(QObject):
    """Keeps the last model (ref and backend) and recipe in `window.settings`; opens them on request."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.settings = window.settings
        self.remembering = True  # False: this window's model and recipe are not kept (a smoke run's are not)
        window.model_loaded.connect(self._model_loaded)
        window.state.recipe_changed.connect(self._recipe_changed)

    def _model_loaded(self, loaded) -> None:
        if not self.remembering:
            return
        ref = str(loaded.ref)
        if not ref.startswith(EXAMPLE_PREFIX):
            ref = str(Path(ref).resolve())
        self.settings.setValue(MODEL_KEY, ref)
        self.settings.setValue(BACKEND_KEY, loaded.backend or "")  # as it was asked for (None: from the file)
        self._recipe_changed(self.window.state.recipe)

    def _recipe_changed(self, recipe: Recipe) -> None:
        if self.remembering and self.window.state.model is not None:
            self.settings.setValue(RECIPE_KEY, json.dumps(recipe.to_dict(), sort_keys=True))

    def last_model(self) -> tuple[str, str | None] | None:
        """(ref, backend) of the model last open, or None."""
        ref = str(self.settings.value(MODEL_KEY, "") or "")
        if not ref:
            return None
        backend = str(self.settings.value(BACKEND_KEY, "") or "") or None
        return ref, backend

    def last_recipe(self) -> Recipe | None:
        """The recipe last in use, or None (none kept, or not readable: a status message says why)."""
        text = self.settings.value(RECIPE_KEY, "")
        if not text:
            return None
        try:
            return Recipe.from_dict(json.loads(str(text)))
        except (ValueError, AccelStudioError) as exc:
            self.window.statusBar().showMessage(f"The last recipe could not be restored: {exc}", MESSAGE_MS)
            return None

    def reopen_last(self) -> bool:
        """Open the last model with its recipe; False (and a status message when a file is gone) when there is
        nothing to reopen, so the caller opens the default instead."""
        last = self.last_model()
        if last is None:
            return False
        ref, backend = last
        if not ref.startswith(EXAMPLE_PREFIX) and not Path(ref).is_file():
            self.window.statusBar().showMessage(f"The last model is no longer there: {ref}", MESSAGE_MS)
            return False
        recipe = self.last_recipe()
        if recipe is not None:  # set first: the model's arrival fits it to the model's layers
            self.window.state.edit("Reopen the last recipe", recipe=recipe)
        self.window.open_model(ref, backend=backend)
        return True
