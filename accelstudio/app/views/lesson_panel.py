"""The lesson side panel: which lesson, which step, what it does and why (with its formula), what to look at,
the step's own plot (training curves or the scaling plot) and Back / Run this step / Next / Cancel.

A view only: it shows what the lesson controller gives it and emits what the user asks for.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QStackedWidget,
                               QVBoxLayout, QWidget)

from accelstudio.app.plots.scaling_plot import ScalingPlot
from accelstudio.app.plots.training_plot import TrainingPlot

ACTION_BUTTON = {"show": "Apply", "run": "Run this step", "sweep": "Run these jobs", "transfer": "Train"}


class LessonPanel(QWidget):
    """Signals: lesson_chosen(name), back(), next(), run_step(), cancel()."""

    lesson_chosen = Signal(str)
    back = Signal()
    next = Signal()  # noqa: A003 - the button's name
    run_step = Signal()
    cancel = Signal()

    def __init__(self, lessons: list[tuple[str, str]], parent=None):
        super().__init__(parent)
        self.setObjectName("lessonPanel")
        self.chooser = QComboBox(objectName="lessonChooser")
        for name, title in lessons:
            self.chooser.addItem(title, name)
        self.chooser.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.chooser.setMinimumContentsLength(16)  # long lesson titles must not widen the dock
        self.chooser.activated.connect(lambda i: self.lesson_chosen.emit(self.chooser.itemData(i)))
        self.summary = QLabel(wordWrap=True, objectName="lessonSummary")
        self.summary.setEnabled(False)  # secondary text, drawn muted
        self.counter = QLabel(objectName="lessonCounter")
        self.title = QLabel(wordWrap=True, objectName="lessonStepTitle")
        self.text = QLabel(wordWrap=True, objectName="lessonText")
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.formula = QLabel(wordWrap=True, objectName="lessonFormula")
        self.formula.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._fit_fonts()
        self.formula.setStyleSheet("QLabel#lessonFormula { border: 1px solid palette(mid); border-radius: 4px;"
                                   " padding: 6px; background: palette(alternate-base); }")
        self.look = QLabel(wordWrap=True, objectName="lessonLook")
        self.status = QLabel(wordWrap=True, objectName="lessonStatus")
        self.progress = QProgressBar(objectName="lessonProgress", textVisible=False)
        self.progress.setRange(0, 1000)
        self.progress.setMaximumHeight(8)
        self.progress.hide()
        self.training = TrainingPlot()
        self.scaling = ScalingPlot()
        self.results = QLabel(wordWrap=True, objectName="lessonResults")
        self.results.setTextFormat(Qt.TextFormat.RichText)
        self.results.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.stack = QStackedWidget(objectName="lessonPlots")
        for page in (self.results, self.training, self.scaling):
            self.stack.addWidget(page)
        self.back_button = QPushButton("◀", objectName="lessonBack", toolTip="Previous step")
        self.action_button = QPushButton("Run this step", objectName="lessonRun")
        self.next_button = QPushButton("▶", objectName="lessonNext", toolTip="Next step")
        self.cancel_button = QPushButton("Cancel", objectName="lessonCancel")
        for arrow in (self.back_button, self.next_button):
            arrow.setFixedWidth(arrow.fontMetrics().horizontalAdvance("▶") + 28)  # narrow docks keep every button
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.action_button.clicked.connect(self.run_step)
        self.cancel_button.clicked.connect(self.cancel)
        self._build()
        self.set_busy(False)

    def _fit_fonts(self) -> None:
        """The step title a quarter larger and bold, the formula in a monospace font, both scaled from the
        panel's font (so zoom and presenter mode enlarge them too)."""
        base = self.font().pointSizeF()
        font = QFont(self.font())
        font.setPointSizeF(base * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        mono = QFont("DejaVu Sans Mono")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        mono.setPointSizeF(base * 1.1)
        self.formula.setFont(mono)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange and hasattr(self, "formula"):
            self._fit_fonts()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.chooser)
        layout.addWidget(self.summary)
        layout.addWidget(self.counter)
        head = QHBoxLayout()  # the buttons stay at the top, where they are seen without scrolling
        for button in (self.back_button, self.action_button, self.next_button, self.cancel_button):
            head.addWidget(button)
        layout.addLayout(head)
        layout.addWidget(self.progress)
        layout.addWidget(self.title)
        layout.addWidget(self.text)
        layout.addWidget(self.formula)
        layout.addWidget(self.look)
        layout.addWidget(self.status)
        layout.addWidget(self.stack, 1)

    # -- controller -> view --------------------------------------------------------------------------------
    def show_lesson(self, name: str, summary: str) -> None:
        self.chooser.setCurrentIndex(max(0, self.chooser.findData(name)))
        self.summary.setText(summary)

    def show_step(self, index: int, count: int, step) -> None:
        """Show step `index` (0-based) of `count`, a core LessonStep."""
        self.counter.setText(f"Step {index + 1} of {count}")
        self.summary.setVisible(index == 0)  # the lesson's introduction, then room for the steps
        self.title.setText(step.title)
        self.text.setText(html.escape(step.text))
        self.formula.setText(step.formula)
        self.formula.setVisible(bool(step.formula))
        where = f"Look at the <b>{plot_title(step.plot)}</b>." if step.plot else ""
        self.look.setText(f"{where} {html.escape(step.look)}".strip())
        self.look.setVisible(bool(where or step.look))
        self.action_button.setText(ACTION_BUTTON.get(step.action, "Run this step"))
        self.action_button.setVisible(step.action != "show")
        self.back_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < count - 1)
        self.status.setText("")
        page = {"trainingPlot": self.training, "scalingPlot": self.scaling}.get(step.plot)
        self.stack.setCurrentWidget(page or self.results)

    def set_busy(self, busy: bool) -> None:
        self.action_button.setEnabled(not busy)
        self.cancel_button.setVisible(busy)
        self.progress.setVisible(busy)
        if not busy:
            self.progress.setValue(0)

    def set_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        self.status.setText(html.escape(text))

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def show_results(self, html_text: str) -> None:
        """Rich text shown under the buttons when the step has no plot of its own."""
        self.results.setText(html_text)
        if self.stack.currentWidget() is self.results or not html_text:
            return

    def apply_colors(self, colors) -> None:
        self.training.apply_colors(colors)
        self.scaling.apply_colors(colors)


PLOT_TITLES = {"weightTabs": "weight histogram and mask (model view)", "tradeoffPlot": "latency vs accuracy plot",
               "trainingPlot": "training curves below", "scalingPlot": "scaling plot below",
               "latencyHistogram": "latency distribution", "sizeBars": "size bars", "layerTable": "layer table"}


def plot_title(name: str) -> str:
    """How the panel names a plot it points at."""
    return PLOT_TITLES.get(name, name)
