"""The Sensitivity dock's contents: what to screen, Run / Cancel, the heatmap, the layer table of the study and
the two edits it offers (exclude the k most sensitive layers; per-layer pruning amounts under a loss limit).
It only lays out what the study computed; the controller runs it and applies the edits."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from accelstudio.app.plots.sensitivity_heatmap import SensitivityHeatmap
from accelstudio.core.recipe import PRUNE_METHODS
from accelstudio.core.studies.sensitivity_params import DEFAULT_AMOUNTS, DEFAULT_BUDGET_S, DEFAULT_SAMPLES

QUANT_CHOICES = ("none", "dynamic-int8", "static-int8", "weight-int8", "weight-int4", "fp16", "bf16", "sim-8",
                 "sim-4")
FIXED_COLUMNS = ("rank", "layer", "latency", "score")


class SensitivityPanel(QWidget):
    """Signals: run_requested(settings dict), cancel_requested(), layer_selected(name),
    exclude_requested(k, "prune" | "quant"), amounts_requested(max points lost)."""

    run_requested = Signal(dict)
    cancel_requested = Signal()
    layer_selected = Signal(str)
    exclude_requested = Signal(int, str)
    amounts_requested = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.method = QComboBox(objectName="sensitivityMethod")
        self.method.addItems([*PRUNE_METHODS, "none"])
        self.amounts = QLineEdit(", ".join(f"{a:.0%}".rstrip("%") for a in DEFAULT_AMOUNTS),
                                 objectName="sensitivityAmounts")
        self.amounts.setToolTip("pruning amounts in percent, comma-separated")
        self.quantize = QComboBox(objectName="sensitivityQuantize")
        self.quantize.addItems(QUANT_CHOICES)
        self.samples = QSpinBox(objectName="sensitivitySamples", minimum=8, maximum=100_000, value=DEFAULT_SAMPLES)
        self.budget = QSpinBox(objectName="sensitivityBudget", minimum=5, maximum=3600, value=int(DEFAULT_BUDGET_S),
                               suffix=" s")
        self.run_button = QPushButton("Run study", objectName="sensitivityRun")
        self.cancel_button = QPushButton("Cancel", objectName="sensitivityCancel", enabled=False)
        self.status = QLabel("", objectName="sensitivityStatus", wordWrap=True)
        self.heatmap = SensitivityHeatmap()
        self.table = QTableWidget(0, len(FIXED_COLUMNS), objectName="sensitivityTable")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.top_k = QSpinBox(objectName="sensitivityTopK", minimum=1, maximum=999, value=3)
        self.exclude_prune = QPushButton("Exclude from pruning", objectName="sensitivityExcludePrune", enabled=False)
        self.keep_float = QPushButton("Keep in float", objectName="sensitivityKeepFloat", enabled=False)
        self.max_loss = QDoubleSpinBox(objectName="sensitivityMaxLoss", minimum=0.0, maximum=100.0, value=1.0,
                                       singleStep=0.5, suffix=" pts")
        self.set_amounts = QPushButton("Set per-layer amounts", objectName="sensitivitySetAmounts", enabled=False)
        self._build()
        self._rows: list[str] = []
        self.run_button.clicked.connect(lambda: self.run_requested.emit(self.settings()))
        self.cancel_button.clicked.connect(self.cancel_requested.emit)
        self.table.itemSelectionChanged.connect(self._row_selected)
        self.heatmap.cell_clicked.connect(lambda layer, _label: self.select_row(layer))
        self.exclude_prune.clicked.connect(lambda: self.exclude_requested.emit(self.top_k.value(), "prune"))
        self.keep_float.clicked.connect(lambda: self.exclude_requested.emit(self.top_k.value(), "quant"))
        self.set_amounts.clicked.connect(lambda: self.amounts_requested.emit(self.max_loss.value()))

    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Prune method", self.method)
        form.addRow("Amounts (%)", self.amounts)
        form.addRow("Quantize", self.quantize)
        limits = QHBoxLayout()
        limits.addWidget(self.samples)
        limits.addWidget(QLabel("samples, budget"))
        limits.addWidget(self.budget)
        form.addRow("Screen on", limits)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        top = QHBoxLayout()
        top.addWidget(QLabel("Top"))
        top.addWidget(self.top_k)
        top.addWidget(QLabel("layers:"))
        top.addWidget(self.exclude_prune)
        top.addWidget(self.keep_float)
        top.addStretch(1)
        amounts = QHBoxLayout()
        limit = QLabel("Loss at most")
        limit.setToolTip("Set per-layer amounts gives each layer the largest screened amount that loses at most "
                         "this many points")
        amounts.addWidget(limit)
        amounts.addWidget(self.max_loss)
        amounts.addWidget(self.set_amounts)
        amounts.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.heatmap, 3)
        layout.addWidget(self.table, 2)
        layout.addLayout(top)
        layout.addLayout(amounts)

    def settings(self) -> dict[str, Any]:
        """What the form asks for: prune_method ("" for none), amounts (fractions), quantize (text or ""),
        samples, budget_s. Amounts that do not parse are left out (the study refuses an empty list)."""
        amounts = []
        for part in self.amounts.text().replace(";", ",").split(","):
            try:
                amounts.append(float(part.strip().rstrip("%")) / 100.0)
            except ValueError:
                continue
        method = self.method.currentText()
        quant = self.quantize.currentText()
        return {"prune_method": "" if method == "none" else method, "amounts": amounts,
                "quantize": "" if quant == "none" else quant, "samples": self.samples.value(),
                "budget_s": float(self.budget.value())}

    def choose(self, recipe) -> None:
        """Preselect a recipe's pruning method and quantization mode (sim-N for the simulated mode)."""
        self.method.setCurrentText(recipe.prune.method)
        q = recipe.quantize
        text = f"sim-{q.bits}" if q.mode == "sim" else q.mode
        if self.quantize.findText(text) < 0:
            self.quantize.addItem(text)
        self.quantize.setCurrentText(text)

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def show_status(self, text: str) -> None:
        self.status.setText(text)

    def show_study(self, result: dict[str, Any], layers: list[str], labels: list[str], values: list[list[float]],
                   title: str) -> None:
        """The heatmap and the table of a study (rows in `layers` order: most sensitive first)."""
        self.heatmap.show_matrix(layers, labels, np.asarray(values, dtype=float), title)
        rows = {r["layer"]: r for r in result.get("rows", [])}
        rank = {name: i + 1 for i, name in enumerate(result.get("ranking", []))}
        self.table.blockSignals(True)
        self.table.clear()
        self.table.setColumnCount(len(FIXED_COLUMNS) + len(labels))
        self.table.setHorizontalHeaderLabels([*FIXED_COLUMNS, *labels])
        self.table.setRowCount(len(layers))
        for i, name in enumerate(layers):
            row = rows[name]
            share = row.get("latency_share")
            texts = [str(rank.get(name, "-")), name, "-" if share is None else f"{share:.1%}",
                     "not screened" if row.get("score") is None else f"{row['score']:.2f}"]
            texts += ["-" if np.isnan(v) else f"{v:+.2f}" for v in values[i]]
            for j, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if j != 1:
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.table.blockSignals(False)
        self._rows = list(layers)
        has_rank = bool(result.get("ranking"))
        self.exclude_prune.setEnabled(has_rank)
        self.keep_float.setEnabled(has_rank and bool(result.get("quantize")))
        self.set_amounts.setEnabled(has_rank and any(s["kind"] == "prune" for s in result.get("settings", [])))

    def select_row(self, layer: str) -> None:
        """Select `layer`'s row (and report it, as a click on the row would)."""
        if layer in self._rows:
            self.table.selectRow(self._rows.index(layer))

    def selected_layer(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self._rows[rows[0].row()] if rows else None

    def _row_selected(self) -> None:
        name = self.selected_layer()
        if name is not None:
            self.layer_selected.emit(name)

    def apply_colors(self, colors) -> None:
        self.heatmap.apply_colors(colors)
