"""The accuracy-recovery group: method (off / fine-tune / distill), epochs and learning rate, with hints.

Like the other control groups it holds no settings: `show` writes a RecoverySpec into the widgets, `compose`
reads them back over the last shown spec (batch, temperature, alpha and sample cap are kept), and `changed`
says which control the user touched. The hints explain when recovery does little or cannot run here.
"""

from __future__ import annotations

import math
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QSpinBox

from accelstudio.app.views.warning_label import WarningLabel
from accelstudio.core.measure.hardware import HardwareWarning
from accelstudio.core.recipe import MAX_RECOVERY_EPOCHS, RECOVERY_LR_RANGE, Recipe, RecoverySpec

RECOVERY_CHOICES = (
    ("none", "off", "No training after pruning."),
    ("finetune", "fine-tune", "Train the pruned model on labeled training data (cross-entropy)."),
    ("distill", "distill", "Train the pruned model to match the original model's outputs and the labels."),
)
LR_LADDER = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)

# What the open model is, as far as recovery cares (see model_kind).
MODEL_NONE, MODEL_EXAMPLE, MODEL_TORCH, MODEL_OTHER = "none", "example", "torch", "other"


def model_kind(loaded) -> str:
    """'example' (brings its own training data, any form), 'torch' (a user's torch model), 'other' (not torch),
    or 'none' when no model is open. `loaded` is a LoadedModel or None."""
    if loaded is None:
        return MODEL_NONE
    if str(loaded.ref).startswith("example:"):
        return MODEL_EXAMPLE
    return MODEL_TORCH if getattr(loaded.handle, "backend", None) == "torch" else MODEL_OTHER


def recovery_hints(recipe: Recipe, kind: str) -> list[HardwareWarning]:
    """Why the recovery settings may do little or fail for this recipe and model (empty when recovery is off)."""
    if not recipe.recovery.active:
        return []
    hints = []
    if not recipe.prune.active:
        hints.append(HardwareWarning(
            "recovery-unpruned", "Nothing is pruned: recovery would only retrain the original model.",
            "Set a pruning amount, or turn recovery off.", "recovery"))
    if kind == MODEL_OTHER:
        hints.append(HardwareWarning(
            "recovery-not-torch", "Recovery needs a torch model; the open model is not one.",
            "Open its .safetensors/.pt form (bundled examples work in either form).", "recovery"))
    elif kind == MODEL_TORCH:
        hints.append(HardwareWarning(
            "recovery-no-data", "Recovery needs labeled training data; only the bundled examples bring it.",
            "Runs of this model will stop with an error; use `accelstudio apply --train-data FILE.npz`.",
            "recovery"))
    return hints


class LearningRateSpin(QDoubleSpinBox):
    """A learning-rate box shown as '0.001' or '1e-05'; the arrows step along 1-3-10 (LR_LADDER)."""

    def __init__(self, parent=None, objectName: str = ""):  # noqa: N803 - Qt's keyword
        super().__init__(parent, objectName=objectName)
        self.setDecimals(9)
        self.setRange(*RECOVERY_LR_RANGE)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt's name
        return f"{value:.3g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        stripped = text.strip()
        try:
            value = float(stripped)
        except ValueError:
            ok = all(c in "0123456789.eE-+" for c in stripped)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        lo, hi = RECOVERY_LR_RANGE
        state = QValidator.State.Acceptable if lo <= value <= hi else QValidator.State.Intermediate
        return state, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        here = math.log10(max(self.value(), LR_LADDER[0]))
        logs = [math.log10(v) for v in LR_LADDER]
        on_rung = [i for i, v in enumerate(logs) if abs(v - here) < 1e-6]
        if on_rung:
            base = on_rung[0]
        elif steps > 0:  # between two rungs: count from the one below when going up, above when going down
            base = max((i for i, v in enumerate(logs) if v < here), default=-1)
        else:
            base = min((i for i, v in enumerate(logs) if v > here), default=len(logs))
        self.setValue(LR_LADDER[max(0, min(len(LR_LADDER) - 1, base + steps))])


class RecoveryGroup(QGroupBox):
    """Recovery method, epochs and learning rate; `changed(description)` after each user edit."""

    changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Accuracy recovery", parent, objectName="recoveryGroup")
        self.setToolTip("After pruning and before quantization, train the pruned model to win back accuracy")
        self._spec = RecoverySpec()
        self._kind = MODEL_NONE
        self._extra: list = []
        self._updating = False
        form = QFormLayout(self)
        self.method_combo = QComboBox(objectName="recoveryMethod")
        for value, label, tip in RECOVERY_CHOICES:
            self.method_combo.addItem(label, value)
            self.method_combo.setItemData(self.method_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.method_combo.currentIndexChanged.connect(lambda: self._changed("Recovery method"))
        form.addRow("Method", self.method_combo)
        self.epochs_spin = QSpinBox(objectName="recoveryEpochs")
        self.epochs_spin.setRange(1, MAX_RECOVERY_EPOCHS)
        self.epochs_spin.setKeyboardTracking(False)
        self.epochs_spin.setToolTip("Passes over the training data (each takes seconds on the examples)")
        self.epochs_spin.valueChanged.connect(lambda: self._changed("Recovery epochs"))
        form.addRow("Epochs", self.epochs_spin)
        self.lr_spin = LearningRateSpin(objectName="recoveryLr")
        self.lr_spin.setToolTip("Adam learning rate at the start (cosine decay to zero); 1e-3 suits the examples")
        self.lr_spin.valueChanged.connect(lambda: self._changed("Recovery learning rate"))
        form.addRow("Learning rate", self.lr_spin)
        self.hint = WarningLabel(objectName="recoveryHint")
        form.addRow(self.hint)
        self.show_spec(self._spec)

    def show_spec(self, spec: RecoverySpec, recipe: Recipe | None = None) -> None:
        """Write `spec` into the widgets without emitting `changed`; refresh the hints for `recipe`."""
        self._spec = spec
        self._updating = True
        try:
            index = self.method_combo.findData(spec.method)
            self.method_combo.setCurrentIndex(max(index, 0))
            self.epochs_spin.setValue(max(1, spec.epochs))
            self.lr_spin.setValue(spec.lr)
        finally:
            self._updating = False
        self._update_enabled()
        self._recipe = recipe if recipe is not None else Recipe(recovery=spec)
        self._update_hint()

    def compose(self) -> RecoverySpec:
        """The spec the widgets show (settings without a widget come from the last shown spec)."""
        return replace(self._spec, method=self.method_combo.currentData(), epochs=self.epochs_spin.value(),
                       lr=float(self.lr_spin.value()))

    def set_model_kind(self, kind: str) -> None:
        """What the open model is (see model_kind); the hints depend on it."""
        self._kind = kind
        self._update_hint()

    def set_extra_warnings(self, warnings: list) -> None:
        """Warnings about recovery from elsewhere (hardware checks), shown with the hints."""
        self._extra = list(warnings)
        self._update_hint()

    def _update_enabled(self) -> None:
        on = self.method_combo.currentData() != "none"
        self.epochs_spin.setEnabled(on)
        self.lr_spin.setEnabled(on)

    def _update_hint(self) -> None:
        self.hint.set_warnings(recovery_hints(self._recipe, self._kind) + self._extra)

    def _changed(self, text: str) -> None:
        if not self._updating:
            self._update_enabled()
            self.changed.emit(text)
