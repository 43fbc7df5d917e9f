"""The Search panel: constraint, objective, budget, what may vary, Start / Stop, the Pareto plot of the trials,
the best so far and "Use this recipe". It only lays out; the search itself runs in core through the worker."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QHBoxLayout, \
    QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from accelstudio.app.plots.pareto_plot import ParetoPlot

# what may vary: (key, label, checked by default)
VARY = (("granularity", "Per-channel / per-tensor", True), ("weight-type", "Weight type", False),
        ("calibration", "Calibration method and samples", False), ("float-kinds", "Op kinds kept float", False),
        ("keep-float", "Most sensitive layers kept float", True), ("prune", "Structured pruning", True),
        ("recovery", "Recovery (fine-tune)", False), ("graph-opt", "Graph optimization level", False),
        ("spinning", "Thread spinning", False))
MODES = (("dynamic-int8", True), ("static-int8", True), ("fp16", True), ("weight-int8", False))


class SearchPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("searchPanel")
        form = QFormLayout()
        self.constraint_kind = QComboBox(objectName="searchConstraintKind")
        self.constraint_kind.addItems(["Max accuracy drop (pts)", "Min cosine"])
        self.constraint_value = QDoubleSpinBox(objectName="searchConstraintValue", decimals=4, minimum=0.0,
                                               maximum=100.0, singleStep=0.5, value=1.0)
        self.constraint_kind.currentIndexChanged.connect(self._kind_changed)
        row = QHBoxLayout()
        row.addWidget(self.constraint_kind)
        row.addWidget(self.constraint_value)
        form.addRow("Constraint", row)
        self.objective = QComboBox(objectName="searchObjective")
        self.objective.addItems(["latency", "throughput", "size"])
        form.addRow("Objective", self.objective)
        self.budget = QSpinBox(objectName="searchBudget", minimum=1, maximum=600, value=10, suffix=" min")
        form.addRow("Budget", self.budget)
        self.mode_boxes = {m: QCheckBox(m, checked=on) for m, on in MODES}
        modes = QHBoxLayout()
        for box in self.mode_boxes.values():
            modes.addWidget(box)
        form.addRow("Modes", modes)
        self.vary_boxes = {key: QCheckBox(label, checked=on, objectName=f"searchVary-{key}")
                           for key, label, on in VARY}
        vary = QGridLayout()
        for i, box in enumerate(self.vary_boxes.values()):
            vary.addWidget(box, i // 2, i % 2)
        form.addRow("May vary", vary)
        self.start_button = QPushButton("Start search", objectName="searchStart")
        self.stop_button = QPushButton("Stop", objectName="searchStop", enabled=False)
        self.use_button = QPushButton("Use this recipe", objectName="searchUse", enabled=False)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.use_button):
            buttons.addWidget(b)
        self.status = QLabel("Open a model, set the constraint and start.", objectName="searchStatus",
                             wordWrap=True)
        self.best = QLabel("", objectName="searchBest", wordWrap=True)
        self.selected = QLabel("", objectName="searchSelected", wordWrap=True)
        self.plot = ParetoPlot()
        self.plot.setMinimumHeight(180)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.best)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.selected)

    def _kind_changed(self, index: int) -> None:
        if index == 1:
            self.constraint_value.setRange(0.0, 1.0)
            self.constraint_value.setSingleStep(0.001)
            self.constraint_value.setValue(0.99)
        else:
            self.constraint_value.setRange(0.0, 100.0)
            self.constraint_value.setSingleStep(0.5)
            self.constraint_value.setValue(1.0)

    def constraint(self) -> dict:
        key = "min_cosine" if self.constraint_kind.currentIndex() == 1 else "max_drop"
        return {key: float(self.constraint_value.value())}

    def vary(self) -> set[str]:
        return {k for k, box in self.vary_boxes.items() if box.isChecked()}

    def modes(self) -> tuple[str, ...]:
        return ("none",) + tuple(m for m, box in self.mode_boxes.items() if box.isChecked())

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
