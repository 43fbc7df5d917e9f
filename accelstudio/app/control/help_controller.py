"""Help > Guide and Help > Glossary (F1): the markdown files under resources/help shown in a HelpDialog.

Controls name the glossary term they use: their tooltip ends with "F1: glossary — <term>", and F1 over the
control (or with it focused) opens the glossary at that term.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QCursor, QKeySequence
from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QLineEdit, QSlider,
                               QToolTip, QWidget)

from accelstudio.app.views.help_dialog import GUIDE, HelpDialog
from accelstudio.core.model.examples import resources_dir

TERM_PROPERTY = "glossaryTerm"
TIP_PREFIX = "F1: glossary — "

# (path from the window to the widget, the glossary heading it uses)
CONTROL_TERMS = (
    ("recipe_controls.amount_slider", "Pruning"), ("recipe_controls.amount_spin", "Sparsity"),
    ("recipe_controls.method_combo", "Structured pruning"), ("recipe_controls.scope_combo", "Pruning scope"),
    ("recipe_controls.override_spin", "Per-layer override"), ("recipe_controls.mode_combo", "Quantization"),
    ("recipe_controls.bits_slider", "Simulated quantization"), ("recipe_controls.granularity_combo", "Per-channel"),
    ("recipe_controls.weight_type_combo", "Weight type"), ("recipe_controls.symmetric_check", "Symmetric grid"),
    ("recipe_controls.calib_combo", "Calibration"), ("recipe_controls.calib_samples", "Calibration"),
    ("recipe_controls.recovery.method_combo", "Accuracy recovery"),
    ("recipe_controls.recovery.epochs_spin", "Epoch"), ("recipe_controls.recovery.lr_spin", "Learning rate"),
    ("runtime_panel.backend_combo", "Runtime"), ("runtime_panel.device_combo", "Device"),
    ("runtime_panel.compile_combo", "Compile"), ("runtime_panel.threads_spin", "Threads"),
    ("runtime_panel.batch_spin", "Batch"), ("runtime_panel.budget_spin", "Time budget"),
    ("runtime_panel.profile_check", "Operator profile"), ("runtime_panel.inter_spin", "Threads"),
    ("runtime_panel.spinning_combo", "Threads"), ("runtime_panel.graph_combo", "Graph optimization"),
    ("data_panel.badge", "Fidelity"), ("run_button", "Latency"),
    ("results.tradeoff", "Pareto front"), ("results.histogram", "p50 / p90"), ("results.sizes", "Model size"),
    ("results.run_baseline_button", "Baseline"), ("results.table", "Confidence interval"),
    ("model_view.sparsity_bars", "Sparsity"), ("model_view.histogram", "int8"),
    ("model_view.mask_heatmap", "N:M sparsity"),
)
DATA_TERMS = {"eval": "Evaluation data", "calib": "Calibration", "train": "Training data"}
# every other input in these groups names the group's term
GROUP_TERMS = {"pruneGroup": "Pruning", "recoveryGroup": "Accuracy recovery", "quantGroup": "Quantization",
               "runtimeGroup": "Runtime", "dataGroup": "Evaluation data"}
INPUTS = (QAbstractButton, QAbstractSpinBox, QComboBox, QSlider, QLineEdit)


def term_of(widget: QWidget | None) -> str | None:
    """The glossary term of `widget` or the nearest parent that names one."""
    while widget is not None:
        term = widget.property(TERM_PROPERTY)
        if term:
            return str(term)
        widget = widget.parentWidget()
    return None


def shown_tooltip(widget: QWidget) -> str:
    """The tooltip as it shows: the widget's own text, then the glossary line."""
    term = widget.property(TERM_PROPERTY)
    tip = widget.toolTip()
    if not term:
        return tip
    line = TIP_PREFIX + str(term)
    return f"{tip}\n{line}" if tip else line


def help_text(name: str) -> str:
    """A markdown file of resources/help; a short note when it is missing."""
    path = resources_dir() / "help" / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        return f"# Help missing\n\n{path} could not be read: {exc.strerror or exc}."


class HelpController(QObject):
    """Builds the Help actions, tags the controls with their glossary terms and shows the help dialog."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.dialog: HelpDialog | None = None
        self.tagged: list[QWidget] = []
        self.guide_action = QAction("&Guide", window)
        self.guide_action.setStatusTip("A short guide to the workflow: open, set a recipe, run, compare, export")
        self.guide_action.triggered.connect(self.show_guide)
        self.glossary_action = QAction("G&lossary", window)
        self.glossary_action.setShortcut(QKeySequence(Qt.Key.Key_F1))
        self.glossary_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.glossary_action.setStatusTip("Terms the controls use; F1 over a control opens its term")
        self.glossary_action.triggered.connect(self.show_glossary_here)
        window.addAction(self.glossary_action)
        for path, term in CONTROL_TERMS:
            self.tag(_resolve(window, path), term)
        for role, term in DATA_TERMS.items():
            self.tag(window.data_panel.combos.get(role), term)
        for name, term in GROUP_TERMS.items():
            group = window.findChild(QWidget, name)
            self.tag(group, term)  # inputs added later (a model's input shapes) find it as their parent's
            for widget in group.findChildren(QWidget) if group is not None else []:
                if isinstance(widget, INPUTS) and not widget.property(TERM_PROPERTY) and not _inside_input(widget):
                    self.tag(widget, term)

    def fill_menu(self, menu) -> None:
        menu.addAction(self.guide_action)
        menu.addAction(self.glossary_action)

    def tag(self, widget: QWidget | None, term: str) -> None:
        """Name `term` in `widget`'s tooltip and let F1 over it open the glossary there."""
        if widget is None:
            return
        widget.setProperty(TERM_PROPERTY, term)
        widget.installEventFilter(self)
        self.tagged.append(widget)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ToolTip and isinstance(watched, QWidget) and watched.property(TERM_PROPERTY):
            QToolTip.showText(event.globalPos(), shown_tooltip(watched), watched)
            return True
        return super().eventFilter(watched, event)

    # -- showing --------------------------------------------------------------------------------------------
    def _dialog(self) -> HelpDialog:
        if self.dialog is None:
            self.dialog = HelpDialog(help_text("guide.md"), help_text("glossary.md"), self.window)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def show_guide(self) -> None:
        self._dialog().show_page(GUIDE)

    def show_glossary(self, term: str | None = None) -> None:
        """The glossary, at `term` when given."""
        dialog = self._dialog()
        if not term or not dialog.show_term(term):
            dialog.show_page(1)

    def show_glossary_here(self) -> None:
        """F1: the glossary at the term of the control under the mouse, else of the focused control."""
        hovered = QApplication.widgetAt(QCursor.pos())
        term = term_of(hovered) or term_of(QApplication.focusWidget())
        self.show_glossary(term)


def _inside_input(widget: QWidget) -> bool:
    """True for the parts of a compound input (a spin box's line edit, a combo box's view)."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, (QAbstractSpinBox, QComboBox)):
            return True
        parent = parent.parentWidget()
    return False


def _resolve(root, path: str):
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj
