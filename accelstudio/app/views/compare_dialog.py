"""Two runs side by side: their headline metrics read through the core run report (quality under its own name,
fidelity figures, data, broken verdicts, notes), and a per-layer table of sparsity, parameters and dtype."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout, QWidget)

from accelstudio.app.plots import run_metrics as rm
from accelstudio.core.job import RunResult
from accelstudio.core.runs.report import compare_speed

BROKEN_COLOR = "#d62728"

# The per-layer fields, with the keys a layer dict may use for each (first found wins).
LAYER_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sparsity", ("sparsity", "achieved")),
    ("params", ("params", "params_after")),
    ("dtype", ("dtype",)),
)


@dataclass(frozen=True)
class LayerDiff:
    """One layer in both runs: {field: value} for each (None where the run lacks the layer or the field)."""

    name: str
    a: dict[str, Any]
    b: dict[str, Any]

    @property
    def changed(self) -> bool:
        return any(self.a.get(f) != self.b.get(f) for f, _ in LAYER_FIELDS)


def _layer_values(layer: dict[str, Any] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field, keys in LAYER_FIELDS:
        values[field] = next((layer[k] for k in keys if layer and layer.get(k) is not None), None)
    return values


def layer_diff_rows(a: RunResult, b: RunResult) -> list[LayerDiff]:
    """Every layer named in either run (in run A's order, then B's extra ones) with both runs' values."""
    layers_a = {str(layer.get("name")): layer for layer in a.layers or [] if isinstance(layer, dict)}
    layers_b = {str(layer.get("name")): layer for layer in b.layers or [] if isinstance(layer, dict)}
    names = list(layers_a) + [n for n in layers_b if n not in layers_a]
    return [LayerDiff(n, _layer_values(layers_a.get(n)), _layer_values(layers_b.get(n))) for n in names]


def _fmt(field: str, value: Any) -> str:
    if value is None:
        return "–"
    if field == "sparsity" and isinstance(value, (int, float)):
        return f"{value:.1%}"
    if field == "params" and isinstance(value, (int, float)):
        return f"{int(value):,}"
    return str(value)


def metric_rows(a: RunResult, b: RunResult) -> list[tuple[str, str, str]]:
    """(what, run A, run B) rows of the headline numbers, each run read through its core report: the quality
    headline under its own name (fidelity, not "Accuracy", for unlabeled runs), cosine and max error, data,
    broken verdicts, B's speed-up over A only when like-for-like, and the runs' notes."""
    ra, rb = rm.report(a), rm.report(b)

    def num(run: RunResult, key: str, spec: str, scale: float = 1.0) -> str:
        value = rm.metric(run, key)
        return "–" if value is None else f"{value * scale:{spec}}"

    def opt(value, spec: str) -> str:
        return "–" if value is None else f"{value:{spec}}"

    rows = [("Status", a.status, b.status), ("Model", rm.model_name(a), rm.model_name(b)),
            ("Recipe", rm.recipe_label(a), rm.recipe_label(b)),
            ("Runtime", rm.runtime_label(a), rm.runtime_label(b)),
            ("Settings", ra.settings, rb.settings),
            ("Data", ra.data.describe(), rb.data.describe()),
            ("Input shapes", ra.data.shapes_text() or "–", rb.data.shapes_text() or "–")]
    for label, key, spec in (("p50 (ms)", "p50_ms", ".3g"), ("p90 (ms)", "p90_ms", ".3g"),
                             ("p99 (ms)", "p99_ms", ".3g"), ("Throughput (samples/s)", "throughput", ",.0f"),
                             ("Cold start (ms)", "cold_start_ms", ".3g")):
        rows.append((label, num(a, key, spec), num(b, key, spec)))
    qa, qb = ra.quality, rb.quality
    heading = "Accuracy" if qa.headline == qb.headline == "accuracy" else "Quality"
    rows.append((heading, qa.headline_text() or "–", qb.headline_text() or "–"))
    rows.append(("Δ accuracy vs baseline", qa.change.text() if qa.change else "–",
                 qb.change.text() if qb.change else "–"))
    rows.append(("Fidelity: top-1 agreement", opt(qa.agreement, ".1%"), opt(qb.agreement, ".1%")))
    rows.append(("Fidelity: cosine", opt(qa.cosine, ".4f"), opt(qb.cosine, ".4f")))
    rows.append(("Fidelity: max error", opt(qa.max_abs_error, ".4g"), opt(qb.max_abs_error, ".4g")))
    rows.append(("Broken", ra.broken.text() if ra.broken else "no", rb.broken.text() if rb.broken else "no"))
    rows.append(("Size (MB)", num(a, "size_bytes", ".3g", 1e-6), num(b, "size_bytes", ".3g", 1e-6)))
    rows.append(("Parameters", num(a, "params", ",.0f"), num(b, "params", ",.0f")))
    rows.append(("Sparsity", num(a, "sparsity", ".1%"), num(b, "sparsity", ".1%")))
    speed, why = compare_speed(a, b)
    rows.append(("B compared with A", "", speed.text() if speed else why))
    rows.append(("Warnings", "\n".join(ra.warnings) or "–", "\n".join(rb.warnings) or "–"))
    rows.append(("Notes", "\n".join(ra.notes) or "–", "\n".join(rb.notes) or "–"))
    return rows


def _table(headers: list[str], rows: list[list[str]], bold_rows: frozenset[int] | set[int] = frozenset()) -> QTableWidget:
    table = QTableWidget(len(rows), len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    bold = QFont()
    bold.setBold(True)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if r in bold_rows:
                item.setFont(bold)
            table.setItem(r, c, item)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.resizeRowsToContents()  # notes and warnings span several lines
    return table


def _mark_broken(table: QTableWidget) -> None:
    """Broken verdicts in red."""
    for r in range(table.rowCount()):
        if table.item(r, 0) is not None and table.item(r, 0).text() == "Broken":
            for c in (1, 2):
                item = table.item(r, c)
                if item is not None and item.text() != "no":
                    item.setForeground(QColor(BROKEN_COLOR))


class CompareDialog(QDialog):
    """Run A and run B: a metrics tab and a per-layer tab (changed layers in bold)."""

    def __init__(self, a: RunResult, b: RunResult, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compareDialog")
        self.setWindowTitle(f"Compare run {a.run_id} (A) and run {b.run_id} (B)")
        self.resize(760, 520)
        self.diffs = layer_diff_rows(a, b)
        head = [f"A: run {a.run_id}", f"B: run {b.run_id}"]
        self.metrics_table = _table(["", *head], [list(r) for r in metric_rows(a, b)])
        _mark_broken(self.metrics_table)
        for column in (1, 2):  # both runs get the same width
            self.metrics_table.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        self.metrics_table.resizeRowsToContents()
        layer_rows = [[d.name] + [_fmt(f, side.get(f)) for f, _ in LAYER_FIELDS for side in (d.a, d.b)]
                      for d in self.diffs]
        layer_head = ["Layer"] + [f"{f} {s}" for f, _ in LAYER_FIELDS for s in ("A", "B")]
        changed = {i for i, d in enumerate(self.diffs) if d.changed}
        self.layers_table = _table(layer_head, layer_rows, changed)
        self.layers_table.setSortingEnabled(True)
        tabs = QTabWidget()
        tabs.addTab(self.metrics_table, "Metrics")
        layers_page = QWidget()
        lay = QVBoxLayout(layers_page)
        note = "No per-layer report in these runs." if not self.diffs else \
            f"{len(changed)} of {len(self.diffs)} layers differ (bold)."
        lay.addWidget(QLabel(note))
        lay.addWidget(self.layers_table)
        tabs.addTab(layers_page, "Layers")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)
