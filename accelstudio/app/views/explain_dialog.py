"""'Why is it (not) faster?' in the results: a short Why line under the verdict, and the Explain… dialog with the
named causes (evidence and what to do instead) and the per-layer Amdahl breakdown. Both only lay out the
Explanation that accelstudio.core.runs.explain computed."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from accelstudio.core.job import RunResult
from accelstudio.core.runs import baseline as bl
from accelstudio.core.runs.explain import explain_run
from accelstudio.core.runs.explain_model import Explanation

ROW_COLUMNS = ("Layer", "Op", "Precision", "Before ms", "After ms", "Speed-up", "Share", "Change")


def why_text(exp: Explanation) -> str:
    """The short Why line: the main cause and the bound, or that nothing was found."""
    parts = []
    if exp.causes:
        parts.append(exp.causes[0].title + (f" (+{len(exp.causes) - 1} more)" if len(exp.causes) > 1 else ""))
    if exp.bound is not None and exp.bound.max_speedup != float("inf"):
        parts.append(f"at most {exp.bound.max_speedup:.2f}x possible with this recipe here")
    return "Why: " + ("; ".join(parts) if parts else "no cause found in the recorded evidence")


class WhyBox(QWidget):
    """The Why line and its Explain… button, shown for a finished run that is not a baseline."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._pair: tuple[RunResult, RunResult | None] | None = None
        self.label = QLabel(objectName="whyLabel", wordWrap=True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton("Explain…", objectName="explainButton")
        self.button.setToolTip("Why this run is (not) faster than its baseline: causes with evidence, and the "
                               "per-layer breakdown")
        self.button.clicked.connect(self.open_dialog)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignTop)
        self.dialog: ExplainDialog | None = None
        self.hide()

    def show_run(self, run: RunResult | None, baseline: RunResult | None) -> None:
        """Explain `run` against `baseline` in one line (the graph file is read only by the dialog)."""
        if run is None or (run.status == "done" and bl.is_baseline_run(run)):
            self._pair = None
            self.hide()
            return
        self._pair = (run, baseline)
        exp = explain_run(run, baseline, graph_ops={})
        compiled = "".join(f"<br>Compile: {html.escape(c)}" for c in exp.compiled)
        self.label.setText(html.escape(why_text(exp)) + compiled)
        self.show()

    def open_dialog(self) -> "ExplainDialog | None":
        """The full explanation of the shown run, in a non-modal dialog."""
        if self._pair is None:
            return None
        self.dialog = ExplainDialog(explain_run(*self._pair), self)
        self.dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog.show()
        return self.dialog


class ExplainDialog(QDialog):
    """The summary, the causes (evidence and advice) and the breakdown table of one Explanation."""

    def __init__(self, exp: Explanation, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("explainDialog")
        self.setWindowTitle(f"Why is run {exp.run_id} (not) faster?")
        self.explanation = exp
        summary = QLabel(html.escape(exp.summary), objectName="explainSummary", wordWrap=True)
        summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.causes = QLabel(self._causes_html(exp), objectName="explainCauses", wordWrap=True)
        self.causes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.causes.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.table = self._table(exp)
        tabs = QTabWidget()
        tabs.addTab(self.causes, f"Causes ({len(exp.causes)})")
        tabs.addTab(self.table, f"Breakdown ({len(exp.rows)} layers)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy as text", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(exp.text()))
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(tabs, 1)
        for line in exp.compiled:
            layout.addWidget(QLabel(html.escape(f"Compile: {line}"), wordWrap=True))
        for note in exp.notes:
            layout.addWidget(QLabel(html.escape(note), wordWrap=True))
        layout.addWidget(buttons)
        self.resize(820, 520)

    @staticmethod
    def _causes_html(exp: Explanation) -> str:
        if not exp.causes:
            return "No cause detected from the evidence recorded."
        items = []
        for c in exp.causes:
            items.append(f"<p><b>{html.escape(c.title)}</b><br>Evidence ({html.escape(', '.join(c.source))}): "
                         f"{html.escape(c.evidence)}<br>Instead: {html.escape(c.advice)}</p>")
        bound = exp.bound
        if bound is not None and bound.max_speedup != float("inf"):
            items.append(f"<p><i>Bound: at most {bound.max_speedup:.2f}x. {html.escape(bound.basis)}.</i></p>")
        return "".join(items)

    @staticmethod
    def _table(exp: Explanation) -> QTableWidget:
        table = QTableWidget(len(exp.rows), len(ROW_COLUMNS), objectName="explainTable")
        table.setHorizontalHeaderLabels(ROW_COLUMNS)
        for i, r in enumerate(exp.rows):
            values = (r.name, r.op_type, r.precision, _f(r.before_ms, 4), _f(r.after_ms, 4),
                      _f(r.speedup, 2, "x"), "-" if r.share_before is None else f"{r.share_before * 100:.1f}%",
                      r.change)
            for j, v in enumerate(values):
                table.setItem(i, j, QTableWidgetItem(v))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        return table


def _f(v: float | None, digits: int, suffix: str = "") -> str:
    return "-" if v is None else f"{v:.{digits}f}{suffix}"
