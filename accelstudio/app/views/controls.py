"""The controls: pruning, accuracy recovery and quantization groups (runtime settings live in runtime_panel.py).

The panels hold no settings of their own: `show_recipe` writes a recipe into the widgets (without echoing it
back) and every user change emits `recipe_edited(recipe, description, merge_key)`, which the window turns
into an undoable edit. A slider drag carries a merge key so one drag is one undo step.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QSlider, QSpinBox, QVBoxLayout, QWidget)

from accelstudio.app.views.recovery_controls import RecoveryGroup
from accelstudio.app.views.warning_label import WarningLabel
from accelstudio.core.quant_modes import QUANT_MODE_TABLE, QUANT_MODES, quant_mode
from accelstudio.core.recipe import CALIBRATIONS, PRUNE_METHODS, WEIGHT_TYPES, Recipe

QUANT_MODE_TIPS = {mode.name: mode.tip for mode in QUANT_MODE_TABLE}


def _combo(items, tips: dict[str, str] | None = None) -> QComboBox:
    box = QComboBox()
    for item in items:
        box.addItem(item, item)
        if tips and item in tips:
            box.setItemData(box.count() - 1, tips[item], Qt.ItemDataRole.ToolTipRole)
    return box


def _set_combo(box: QComboBox, value) -> None:
    index = box.findData(value)
    if index >= 0:
        box.setCurrentIndex(index)


class RecipeControls(QWidget):
    """Pruning, recovery and quantization groups; emits `recipe_edited` and `selection_action(key)` for the
    table rows."""

    recipe_edited = Signal(object, str, object)  # Recipe, description, merge key or None
    selection_action = Signal(str)  # layer action key applied to the selected table rows

    def __init__(self, parent=None):
        super().__init__(parent)
        self._recipe = Recipe()
        self._sim_bits = 4
        self._updating = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._build_prune())
        self.recovery = RecoveryGroup()
        self.recovery.changed.connect(self._emit)
        layout.addWidget(self.recovery)
        layout.addWidget(self._build_quant())

    # -- building --------------------------------------------------------------------------------------------
    def _build_prune(self) -> QGroupBox:
        group = QGroupBox("Pruning", objectName="pruneGroup")
        form = QFormLayout(group)
        self.amount_slider = QSlider(Qt.Orientation.Horizontal, objectName="pruneSlider")
        self.amount_slider.setRange(0, 99)
        self.amount_slider.setToolTip("Share of weights (or channels, for l1-structured) to remove")
        self.amount_spin = QSpinBox(suffix=" %", objectName="pruneSpin")
        self.amount_spin.setRange(0, 99)
        self.amount_slider.valueChanged.connect(self._slider_moved)
        self.amount_spin.valueChanged.connect(self._spin_changed)
        row = QHBoxLayout()
        row.addWidget(self.amount_slider, 1)
        row.addWidget(self.amount_spin)
        form.addRow("Amount", row)
        self.method_combo = _combo(PRUNE_METHODS)
        self.method_combo.setObjectName("pruneMethod")
        self.method_combo.setToolTip("l1-structured removes whole channels (real speed-up); the others set "
                                     "weights to zero (smaller when compressed, same speed on dense kernels)")
        self.method_combo.currentIndexChanged.connect(lambda: self._emit("Pruning method"))
        form.addRow("Method", self.method_combo)
        self.scope_combo = QComboBox(objectName="pruneScope")
        self.scope_combo.addItem("global (rank all layers together)", "global")
        self.scope_combo.addItem("per layer (same share each)", "layer")
        self.scope_combo.currentIndexChanged.connect(lambda: self._emit("Pruning scope"))
        form.addRow("Scope", self.scope_combo)
        self.override_spin = QSpinBox(suffix=" %", objectName="overrideSpin")
        self.override_spin.setRange(0, 99)
        self.override_spin.setValue(50)
        override_button = QPushButton("Set for selected")
        override_button.setToolTip("Give the layers selected in the table their own pruning amount")
        override_button.clicked.connect(lambda: self.selection_action.emit("override"))
        row = QHBoxLayout()
        row.addWidget(self.override_spin)
        row.addWidget(override_button, 1)
        form.addRow("Per layer", row)
        row = QHBoxLayout()
        for key, text in (("prune-exclude", "Exclude"), ("prune-include", "Include"),
                          ("clear-override", "Clear override")):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, k=key: self.selection_action.emit(k))
            button.setToolTip("Applies to the layers selected in the table")
            row.addWidget(button)
        form.addRow("Selected", row)
        self.prune_layers_label = QLabel(wordWrap=True)
        form.addRow(self.prune_layers_label)
        self.prune_warning = WarningLabel(objectName="pruneWarning")
        form.addRow(self.prune_warning)
        return group

    def _build_quant(self) -> QGroupBox:
        group = QGroupBox("Quantization", objectName="quantGroup")
        form = QFormLayout(group)
        self.mode_combo = _combo(QUANT_MODES, QUANT_MODE_TIPS)
        self.mode_combo.setObjectName("quantMode")
        self.mode_combo.currentIndexChanged.connect(lambda: self._emit("Quantization mode"))
        form.addRow("Mode", self.mode_combo)
        self.bits_slider = QSlider(Qt.Orientation.Horizontal, objectName="bitsSlider")
        self.bits_slider.setRange(2, 8)
        self.bits_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.bits_slider.setPageStep(1)
        self.bits_label = QLabel("8 bits")
        self.bits_slider.valueChanged.connect(self._bits_moved)
        row = QHBoxLayout()
        row.addWidget(self.bits_slider, 1)
        row.addWidget(self.bits_label)
        form.addRow("Bits (sim)", row)
        self.granularity_combo = QComboBox(objectName="quantGranularity")
        self.granularity_combo.addItem("per-tensor", False)
        self.granularity_combo.addItem("per-channel", True)
        self.granularity_combo.currentIndexChanged.connect(lambda: self._emit("Quantization granularity"))
        form.addRow("Granularity", self.granularity_combo)
        self.weight_type_combo = _combo(WEIGHT_TYPES)
        self.weight_type_combo.currentIndexChanged.connect(lambda: self._emit("Weight type"))
        form.addRow("Weight type", self.weight_type_combo)
        self.symmetric_check = QCheckBox("symmetric (zero maps to zero)")
        self.symmetric_check.toggled.connect(lambda: self._emit("Symmetric grid"))
        form.addRow("Grid", self.symmetric_check)
        self.calib_combo = _combo(CALIBRATIONS)
        self.calib_samples = QSpinBox()
        self.calib_samples.setRange(1, 100_000)
        self.calib_combo.currentIndexChanged.connect(lambda: self._emit("Calibration method"))
        self.calib_samples.valueChanged.connect(lambda: self._emit("Calibration samples"))
        row = QHBoxLayout()
        row.addWidget(self.calib_combo, 1)
        row.addWidget(QLabel("samples"))
        row.addWidget(self.calib_samples)
        form.addRow("Calibration", row)
        row = QHBoxLayout()
        for key, text in (("quant-exclude", "Keep fp32"), ("quant-include", "Quantize")):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, k=key: self.selection_action.emit(k))
            button.setToolTip("Applies to the layers selected in the table")
            row.addWidget(button)
        form.addRow("Selected", row)
        self.quant_layers_label = QLabel(wordWrap=True)
        form.addRow(self.quant_layers_label)
        self.quant_warning = WarningLabel(objectName="quantWarning")
        form.addRow(self.quant_warning)
        return group

    # -- state -> widgets ------------------------------------------------------------------------------------
    def show_recipe(self, recipe: Recipe) -> None:
        """Write `recipe` into the widgets without emitting edits."""
        self._recipe = recipe
        self._updating = True
        try:
            p, q = recipe.prune, recipe.quantize
            self.amount_slider.setValue(round(p.amount * 100))
            self.amount_spin.setValue(round(p.amount * 100))
            _set_combo(self.method_combo, p.method)
            _set_combo(self.scope_combo, p.scope)
            _set_combo(self.mode_combo, q.mode)
            simulated = quant_mode(q.mode).simulated
            if simulated:
                self._sim_bits = q.bits
            self.bits_slider.setValue(q.bits if simulated else self._sim_bits)
            self.bits_label.setText(f"{self.bits_slider.value()} bits")
            _set_combo(self.granularity_combo, q.per_channel)
            _set_combo(self.weight_type_combo, q.weight_type)
            self.symmetric_check.setChecked(q.symmetric)
            _set_combo(self.calib_combo, q.calibration)
            self.calib_samples.setValue(q.calib_samples)
        finally:
            self._updating = False
        self.recovery.show_spec(recipe.recovery, recipe)
        self._update_enabled()
        self._update_layer_labels()

    def show_warnings(self, warnings: list) -> None:
        """Put each HardwareWarning under the group whose control causes it."""
        self.prune_warning.set_warnings([w for w in warnings if w.control == "prune"])
        self.recovery.set_extra_warnings([w for w in warnings if w.control == "recovery"])
        self.quant_warning.set_warnings([w for w in warnings if w.control not in ("prune", "recovery")])

    def set_model_kind(self, kind: str) -> None:
        """What the open model is (recovery_controls.model_kind): recovery hints depend on it."""
        self.recovery.set_model_kind(kind)

    def override_amount(self) -> float:
        """The per-layer amount for 'Override selected', as a fraction."""
        return self.override_spin.value() / 100.0

    def _update_enabled(self) -> None:
        two_four = self.method_combo.currentData() == "2:4"
        self.amount_slider.setEnabled(not two_four)
        self.amount_spin.setEnabled(not two_four)
        self.scope_combo.setEnabled(not two_four and self.method_combo.currentData() != "l1-structured")
        mode = quant_mode(self.mode_combo.currentData() or "none")
        self.bits_slider.setEnabled(mode.simulated)
        self.bits_label.setEnabled(mode.simulated)
        self.granularity_combo.setEnabled(mode.per_channel_allowed)
        self.weight_type_combo.setEnabled(mode.weight_type_allowed)
        self.symmetric_check.setEnabled(mode.symmetric_allowed)
        self.calib_combo.setEnabled(mode.needs_calibration)
        self.calib_samples.setEnabled(mode.needs_calibration)
        self.mode_combo.setToolTip(mode.tip)

    def _update_layer_labels(self) -> None:
        p, q = self._recipe.prune, self._recipe.quantize
        parts = [f"{name} {amount:.0%}" for name, amount in p.overrides.items()]
        text = ("Overrides: " + ", ".join(parts)) if parts else ""
        if p.exclude:
            text += ("<br>" if text else "") + "Not pruned: " + ", ".join(p.exclude)
        self.prune_layers_label.setText(text)
        self.prune_layers_label.setVisible(bool(text))
        self.quant_layers_label.setText(("Kept fp32: " + ", ".join(q.exclude)) if q.exclude else "")
        self.quant_layers_label.setVisible(bool(q.exclude))

    # -- widgets -> edits ------------------------------------------------------------------------------------
    def _slider_moved(self, value: int) -> None:
        if self._updating:
            return
        self._updating = True
        self.amount_spin.setValue(value)
        self._updating = False
        self._emit("Pruning amount", "prune-drag" if self.amount_slider.isSliderDown() else None)

    def _spin_changed(self, value: int) -> None:
        if self._updating:
            return
        self._updating = True
        self.amount_slider.setValue(value)
        self._updating = False
        self._emit("Pruning amount")

    def _bits_moved(self, value: int) -> None:
        self.bits_label.setText(f"{value} bits")
        if not self._updating:
            self._sim_bits = value
            self._emit("Simulated bits", "bits-drag" if self.bits_slider.isSliderDown() else None)

    def compose(self) -> Recipe:
        """The recipe the widgets show, with the overrides and exclusions of the last shown recipe."""
        method = self.method_combo.currentData()
        amount = self.amount_slider.value() / 100.0
        if method == "2:4":
            amount = 0.5
        prune = replace(self._recipe.prune, amount=amount, method=method, scope=self.scope_combo.currentData())
        mode = self.mode_combo.currentData()
        bits = self.bits_slider.value() if quant_mode(mode).simulated else 8  # the other modes' width is fixed
        quant = replace(self._recipe.quantize, mode=mode, bits=bits,
                        per_channel=bool(self.granularity_combo.currentData()),
                        weight_type=self.weight_type_combo.currentData(),
                        symmetric=self.symmetric_check.isChecked(), calibration=self.calib_combo.currentData(),
                        calib_samples=self.calib_samples.value())
        return Recipe(prune=prune, quantize=quant, recovery=self.recovery.compose())

    def _emit(self, text: str, merge_key: str | None = None) -> None:
        if self._updating:
            return
        self._update_enabled()
        recipe = self.compose()
        if recipe != self._recipe:
            self.recipe_edited.emit(recipe, text, merge_key)
