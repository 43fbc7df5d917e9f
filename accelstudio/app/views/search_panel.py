"""The Search panel: constraint, objective, budget, what may vary, Start / Stop, the Pareto plot of the trials,
the best so far and "Use this recipe". It only lays out; the search itself runs in core through the worker."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QLabel, \
    QPushButton, QSpinBox, QTabWidget, QVBoxLayout, QWidget

from accelstudio.app.plots.pareto_plot import ParetoPlot

# what may vary: (key, label, checked by default)
VARY = (("granularity", "Granularity", "per-channel or per-tensor scales", True),
        ("weight-type", "Weight type", "qint8 or quint8 weights", False),
        ("calibration", "Calibration", "static int8's calibration method and number of samples", False),
        ("float-kinds", "Op kinds float", "keep all convolutions or all linear layers in float", False),
        ("keep-float", "Sensitive float", "keep the k most sensitive layers in float (needs a stored sensitivity "
                                          "study of this model)", True),
        ("prune", "Pruning", "structured (channel) pruning, 25% or 50%", True),
        ("recovery", "Recovery", "fine-tune after pruning (needs training data)", False),
        ("graph-opt", "Graph opt", "ONNX Runtime's graph optimization level", False),
        ("spinning", "Spinning", "ONNX Runtime's intra-op thread spinning", False))
MODES = (("dynamic-int8", True), ("static-int8", True), ("fp16", True), ("weight-int8", False))
MODE_LABELS = {"dynamic-int8": "dyn int8", "static-int8": "static int8", "fp16": "fp16", "weight-int8": "w-int8"}


class SearchPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("searchPanel")
        form = QFormLayout()
        self.constraint_kind = QComboBox(objectName="searchConstraintKind")
        self.constraint_kind.addItems(["Max drop (pts)", "Min cosine"])
        self.constraint_kind.setToolTip("Max drop: judged on the lower bound of the accuracy drop's 95% interval "
                                        "where the data have labels; otherwise the cosine to the original outputs")
        self.constraint_value = QDoubleSpinBox(objectName="searchConstraintValue", decimals=4, minimum=0.0,
                                               maximum=100.0, singleStep=0.5, value=1.0)
        self.constraint_kind.currentIndexChanged.connect(self._kind_changed)
        form.addRow("Constraint", self.constraint_kind)
        form.addRow("Limit", self.constraint_value)
        self.objective = QComboBox(objectName="searchObjective")
        self.objective.addItems(["latency", "throughput", "size"])
        form.addRow("Objective", self.objective)
        self.budget = QSpinBox(objectName="searchBudget", minimum=1, maximum=600, value=10, suffix=" min")
        form.addRow("Budget", self.budget)
        self.mode_boxes = {m: QCheckBox(MODE_LABELS[m], checked=on, toolTip=m) for m, on in MODES}
        modes = QGridLayout()
        for i, box in enumerate(self.mode_boxes.values()):
            modes.addWidget(box, i // 2, i % 2)
        form.addRow("Modes", modes)
        self.vary_boxes = {key: QCheckBox(label, checked=on, objectName=f"searchVary-{key}", toolTip=tip)
                           for key, label, tip, on in VARY}
        vary = QGridLayout()
        for i, box in enumerate(self.vary_boxes.values()):  # two narrow columns: the dock shares 1280 px
            vary.addWidget(box, i % 5, i // 5)
        form.addRow("May vary", vary)
        self.start_button = QPushButton("Start", objectName="searchStart")
        self.stop_button = QPushButton("Stop", objectName="searchStop", enabled=False)
        self.use_button = QPushButton("Use this recipe", objectName="searchUse", enabled=False)
        self.resume_button = QPushButton("Resume", objectName="searchResume", enabled=False,
                                         toolTip="Continue this model's last stopped search with the budget above")
        buttons = QGridLayout()
        buttons.addWidget(self.start_button, 0, 0)
        buttons.addWidget(self.resume_button, 0, 1)
        buttons.addWidget(self.stop_button, 0, 2)
        buttons.addWidget(self.use_button, 0, 3)
        self.status = QLabel("Open a model, set the constraint and start.", objectName="searchStatus",
                             wordWrap=True)
        self.best = QLabel("", objectName="searchBest", wordWrap=True)
        self.selected = QLabel("Click a point to select its trial.", objectName="searchSelected", wordWrap=True)
        self.notes = QLabel("", objectName="searchNotes", wordWrap=True)
        self.plot = ParetoPlot()
        self.plot.setMinimumHeight(160)
        # two pages, so that the plot gets the dock's height: what to search, and the trials found
        setup, trials = QWidget(), QWidget()
        setup_layout = QVBoxLayout(setup)
        setup_layout.addLayout(form)
        setup_layout.addStretch(1)
        trials_layout = QVBoxLayout(trials)
        trials_layout.setContentsMargins(2, 2, 2, 2)
        for widget, stretch in ((self.best, 0), (self.plot, 1), (self.selected, 0), (self.notes, 0)):
            trials_layout.addWidget(widget, stretch)
        self.pages = QTabWidget(objectName="searchPages")
        self.pages.addTab(setup, "Setup")
        self.pages.addTab(trials, "Trials")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.pages, 1)

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
        if running:
            self.resume_button.setEnabled(False)
        if running:
            self.pages.setCurrentIndex(1)
