"""Help > Guide and Help > Glossary (F1): markdown from resources/help, every control's glossary term exists,
F1 over a control opens the glossary at its term."""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from accelstudio.app.control.help_controller import CONTROL_TERMS, TIP_PREFIX, help_text, shown_tooltip, term_of
from accelstudio.core.model.examples import resources_dir

TERM_LINE = re.compile(re.escape(TIP_PREFIX) + r"(.+)$", re.MULTILINE)
REQUIRED = ("Pruning", "Sparsity", "Structured pruning", "N:M sparsity", "int8", "Per-channel", "Calibration",
            "Distillation", "p50 / p90", "Pareto front", "Fidelity", "Confidence interval")


def glossary_headings() -> set[str]:
    text = (resources_dir() / "help" / "glossary.md").read_text(encoding="utf-8")
    return {m.group(1).strip().lower() for m in re.finditer(r"^#{2,3} (.+)$", text, re.MULTILINE)}


def test_every_glossary_term_a_tooltip_names_is_in_glossary_md(make_window):
    window = make_window(load=False)
    headings = glossary_headings()
    assert {t.lower() for t in REQUIRED} <= headings
    tagged = window.help.tagged
    assert len(tagged) >= len(CONTROL_TERMS)  # every listed control was found in the window
    named = []
    for widget in tagged:
        tip = shown_tooltip(widget)
        match = TERM_LINE.search(tip)
        assert match, (widget.objectName(), tip)
        named.append(match.group(1).strip())
    missing = sorted({t for t in named if t.lower() not in headings})
    assert not missing, f"tooltips name terms glossary.md lacks: {missing}"
    assert "Pareto front" in named and "Calibration" in named
    controls = window.controls_dock.widget()  # every input among the controls names a term
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QPushButton, QSlider

    inputs = [w for kind in (QPushButton, QAbstractSpinBox, QComboBox, QSlider) for w in controls.findChildren(kind)]
    assert inputs and all(term_of(w) for w in inputs), [w.objectName() or w.text() for w in inputs if not term_of(w)]


def test_tooltip_event_shows_the_glossary_line(make_window, qtbot):
    window = make_window(load=False)
    spin = window.recipe_controls.amount_spin
    window.recipe_controls.amount_spin.setToolTip("Share of weights to remove")
    event = QHelpEvent(QEvent.Type.ToolTip, QPoint(2, 2), spin.mapToGlobal(QPoint(2, 2)))
    QApplication.sendEvent(spin, event)
    qtbot.waitUntil(QToolTip.isVisible)
    assert QToolTip.text() == "Share of weights to remove\n" + TIP_PREFIX + "Sparsity"
    QToolTip.hideText()


def test_f1_on_a_focused_control_opens_the_glossary_at_its_term(make_window, qtbot):
    window = make_window(load=False)
    window.activateWindow()
    combo = window.recipe_controls.calib_combo
    combo.setEnabled(True)
    combo.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is combo)
    qtbot.keyClick(combo, Qt.Key.Key_F1)  # the F1 key, as the user presses it
    dialog = window.help.dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.tabs.currentWidget() is dialog.glossary
    assert dialog.current_heading() == "Calibration"
    assert dialog.glossary.verticalScrollBar().value() > 0  # scrolled down to it
    window.help.show_guide()
    assert dialog.tabs.currentWidget() is dialog.guide
    assert "Pareto front" in dialog.guide.toPlainText() and "Run" in dialog.guide.toPlainText()
    dialog.close()


def test_help_files_are_markdown_and_a_missing_one_says_so(monkeypatch, tmp_path):
    assert help_text("guide.md").startswith("# AccelStudio guide")
    monkeypatch.setattr("accelstudio.app.control.help_controller.resources_dir", lambda: tmp_path)
    assert "could not be read" in help_text("guide.md")


def test_f1_over_a_hovered_control_opens_its_term(make_window, qtbot):
    from PySide6.QtGui import QCursor

    window = make_window(load=False)
    window.resize(1280, 720)
    plot = window.results.tradeoff
    qtbot.waitUntil(lambda: plot.isVisible() and plot.width() > 50)
    window.recipe_controls.amount_spin.setFocus()  # the hovered control wins over the focused one
    QCursor.setPos(plot.mapToGlobal(plot.rect().center()))
    hovered = QApplication.widgetAt(QCursor.pos())
    assert hovered is plot or plot.isAncestorOf(hovered)
    window.help.show_glossary_here()
    assert window.help.dialog.current_heading() == "Pareto front"
    window.help.dialog.close()
