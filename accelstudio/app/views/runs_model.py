"""The runs table: one row per stored run (failed and cancelled ones too, with their reason), sortable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QFont

from accelstudio.app.plots import run_metrics as rm
from accelstudio.core.job import RunResult

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RUN_ID_ROLE = Qt.ItemDataRole.UserRole + 2
BROKEN_COLOR = "#d62728"
Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class Column:
    """A table column: header, the cell text, and the value it sorts by."""

    title: str
    text: Callable[[RunResult], str]
    key: Callable[[RunResult], Any]
    tip: str = ""


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "" if value is None else f"{value:{spec}}{suffix}"


def _time(result: RunResult) -> str:
    """The run's creation time in local time (stored as UTC ISO 8601)."""
    created = result.created or ""
    try:
        stamp = datetime.fromisoformat(created)
    except ValueError:
        return created[:19].replace("T", " ")
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone()
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def _accuracy(result: RunResult) -> float | None:
    point = rm.quality(result)
    return None if point is None else point.value


def _quality_text(result: RunResult) -> str:
    """The report's headline: '98.6%' accuracy, '97.0% agree' or 'cos 0.993' fidelity."""
    point = rm.quality(result)
    if point is None:
        return ""
    if point.kind == "cosine":
        return f"cos {point.value / 100:.4f}"
    return f"{point.value:.1f}%" + (" agree" if point.kind == "agreement" else "")


def _delta_text(result: RunResult) -> str:
    change = rm.report(result).quality.change
    if change is None:
        return ""
    if change.interval is None:
        return f"{change.delta_pts:+.1f}"
    half = (change.interval.hi - change.interval.lo) / 2
    mark = "" if change.verdict != "within noise" else " ~"
    return f"{change.delta_pts:+.1f} ± {half:.1f}{mark}"


def _delta_value(result: RunResult) -> float | None:
    change = rm.report(result).quality.change
    return None if change is None else change.delta_pts


def _flags(result: RunResult) -> str:
    """BROKEN, the random-inputs badge and warnings, from the run report."""
    return ", ".join(rm.report(result).flags()) if result.status == "done" else ""


def _threads(result: RunResult) -> int | None:
    value = rm.runtime(result).get("threads")
    return value if isinstance(value, int) else None


def _batch(result: RunResult) -> int | None:
    value = rm.runtime(result).get("batch")
    return value if isinstance(value, int) else None


COLUMNS: tuple[Column, ...] = (
    Column("Id", lambda r: str(r.run_id or ""), lambda r: r.run_id),
    Column("Time", _time, lambda r: r.created or ""),
    Column("Model", rm.model_name, rm.model_name),
    Column("Recipe", rm.recipe_label, rm.recipe_label),
    Column("Runtime", rm.runtime_label, rm.runtime_label),
    Column("Threads", lambda r: "all" if _threads(r) == 0 else _fmt(_threads(r), "d"), _threads),
    Column("Batch", lambda r: _fmt(_batch(r), "d"), _batch),
    Column("p50 ms", lambda r: _fmt(rm.metric(r, "p50_ms"), ".3g"), lambda r: rm.metric(r, "p50_ms"),
           "median latency per call, milliseconds"),
    Column("p90 ms", lambda r: _fmt(rm.metric(r, "p90_ms"), ".3g"), lambda r: rm.metric(r, "p90_ms"),
           "90th percentile latency per call, milliseconds"),
    Column("Throughput /s", lambda r: _fmt(rm.metric(r, "throughput"), ",.0f"), lambda r: rm.metric(r, "throughput"),
           "samples per second"),
    Column("Quality", _quality_text, _accuracy,
           "accuracy on labeled data; without labels, fidelity to the uncompressed model: 'agree' = top-1 "
           "agreement, 'cos' = mean cosine (embedding or regression outputs)"),
    Column("Δacc pts", _delta_text, _delta_value,
           "accuracy change vs the baseline in points, ± half the 95% interval; '~' marks a change within noise "
           "(exact McNemar test)"),
    Column("Size MB", lambda r: _fmt(rm.size_mb(r), ".3g"), lambda r: rm.metric(r, "size_bytes"),
           "parameter bytes in MB (10^6 bytes)"),
    Column("Flags", _flags, _flags, "BROKEN: fidelity collapsed; random inputs: fidelity only; ⚠ warnings"),
    Column("Status", lambda r: r.status, lambda r: r.status),
    Column("Reason", lambda r: (r.reason or "").splitlines()[0] if r.reason else "", lambda r: r.reason or ""),
)
COLUMN_INDEX = {c.title: i for i, c in enumerate(COLUMNS)}


class RunsTableModel(QAbstractTableModel):
    """Runs, newest first as given; `add_run` puts a new run on top or replaces one with the same id."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._runs: list[RunResult] = []

    def set_runs(self, runs: list[RunResult]) -> None:
        """Replace every row."""
        self.beginResetModel()
        self._runs = list(runs)
        self.endResetModel()

    def add_run(self, result: RunResult) -> None:
        """Insert a run at the top, or update the row holding the same run id."""
        row = self.row_of(result.run_id) if result.run_id is not None else -1
        if row >= 0:
            self._runs[row] = result
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
            return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._runs.insert(0, result)
        self.endInsertRows()

    def runs(self) -> list[RunResult]:
        """Every run, in row order."""
        return list(self._runs)

    def run_at(self, row: int) -> RunResult:
        """The run in a source row."""
        return self._runs[row]

    def row_of(self, run_id: int | None) -> int:
        """The source row of a run id, -1 when absent."""
        for row, run in enumerate(self._runs):
            if run.run_id is not None and run.run_id == run_id:
                return row
        return -1

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self._runs)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run, column = self._runs[index.row()], COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(run)
        if role == SORT_ROLE:
            return column.key(run)
        if role == RUN_ID_ROLE:
            return run.run_id
        if role == Qt.ItemDataRole.ToolTipRole:
            if column.title == "Recipe":  # long recipes are cut by the column width
                return column.text(run)
            if column.title == "Flags" and run.status == "done":
                rep = rm.report(run)
                tips = ([rep.broken.text()] if rep.broken else []) + list(rep.warnings)
                return "\n".join(tips) or None
            return run.reason if column.title in ("Status", "Reason") and run.reason else None
        if role == Qt.ItemDataRole.ForegroundRole and column.title == "Flags" and "BROKEN" in column.text(run):
            return QColor(BROKEN_COLOR)
        if role == Qt.ItemDataRole.FontRole and run.status != "done":
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and column.title not in ("Model", "Recipe", "Reason"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMNS[section].tip or None
        return None


class RunsSortProxy(QSortFilterProxyModel):
    """Sorts by each column's raw value (numbers as numbers); empty cells always sort last."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self._accepts = None

    def set_run_filter(self, accepts) -> None:
        """Show only runs for which `accepts(run)` is true (None: every run)."""
        self._accepts = accepts
        self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: Index) -> bool:  # noqa: N802 (Qt API)
        return self._accepts is None or self._accepts(self.sourceModel().run_at(row))

    def lessThan(self, left: Index, right: Index) -> bool:  # noqa: N802
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a is None or b is None:
            descending = self.sortOrder() == Qt.SortOrder.DescendingOrder
            # None last in both orders: in descending order Qt reverses the result.
            return (a is not None) != descending if (a is None) != (b is None) else False
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)
