"""The layer table: one row per weighted layer, numbers sorted as numbers, filter by name or type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt

from accelstudio.app.plots.model_plots import human_bytes
from accelstudio.core.recipe import Recipe

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
NAME_ROLE = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True)
class Column:
    title: str
    tip: str
    numeric: bool = False


COLUMNS = (
    Column("Layer", "Layer name, as recipes name it"),
    Column("Type", "Operation type"),
    Column("Weight shape", "Shape of the weight tensor"),
    Column("Params", "Weights + bias", True),
    Column("Size", "Bytes in memory (weights + bias)", True),
    Column("Dtype", "Storage type of the weights"),
    Column("MFLOPs", "Million floating-point operations per sample (a multiply-add counts 2)", True),
    Column("Sparsity %", "Share of weights that are exactly zero now", True),
    Column("Predicted %", "Sparsity the prune setting would reach (l1-structured: share of channels removed)",
           True),
    Column("Recipe", "Per-layer overrides and exclusions"),
)


class LayerTableModel(QAbstractTableModel):
    """Rows from a ModelSummary's layers, plus the predicted sparsity and per-layer recipe notes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._layers: list[Any] = []
        self._reports: list | None = None
        self._predicted: dict[str, float] = {}
        self._notes: dict[str, str] = {}

    # -- content -------------------------------------------------------------------------------------------
    def set_layers(self, layers: list[Any]) -> None:
        """Replace all rows (LayerStats objects)."""
        self.beginResetModel()
        self._layers = list(layers)
        self._reports = None
        self._predicted = {}
        self._notes = {}
        self.endResetModel()

    def set_predicted(self, reports: list | None) -> None:
        """Update the predicted column from LayerReports (None clears it)."""
        self._reports = reports
        self._predicted = {r.name: float(r.achieved) for r in (reports or [])}
        self._column_changed(8)

    def predicted_reports(self) -> list | None:
        """The LayerReports last shown (None before the first prediction of this model)."""
        return self._reports

    def set_recipe(self, recipe: Recipe) -> None:
        """Update the Recipe column from the recipe's overrides and exclusions."""
        notes = {}
        for layer in self._layers:
            parts = []
            if layer.name in recipe.prune.exclude:
                parts.append("no pruning")
            elif layer.name in recipe.prune.overrides:
                parts.append(f"prune {recipe.prune.overrides[layer.name]:.0%}")
            if layer.name in recipe.quantize.exclude:
                parts.append("keep fp32")
            notes[layer.name] = ", ".join(parts)
        self._notes = notes
        self._column_changed(9)

    def layer_names(self) -> list[str]:
        return [layer.name for layer in self._layers]

    def predicted(self, name: str) -> float | None:
        """Predicted sparsity (fraction) of layer `name`, None before the first prediction."""
        return self._predicted.get(name)

    def _column_changed(self, column: int) -> None:
        if self._layers:
            self.dataChanged.emit(self.index(0, column), self.index(len(self._layers) - 1, column))

    # -- Qt model ------------------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._layers)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMNS[section].tip
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        layer = self._layers[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(layer, column)
        if role == SORT_ROLE:
            return self._sort_value(layer, column)
        if role == NAME_ROLE:
            return layer.name
        if role == Qt.ItemDataRole.TextAlignmentRole and COLUMNS[column].numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(layer)
        return None

    def _display(self, layer: Any, column: int) -> str:
        predicted = self._predicted.get(layer.name)
        values = (
            layer.name, layer.op_type, "×".join(str(d) for d in layer.weight_shape) or "-",
            f"{layer.params:,}", human_bytes(layer.bytes), layer.dtype, f"{layer.flops / 1e6:.3f}",
            f"{layer.sparsity * 100:.1f}", "…" if predicted is None else f"{predicted * 100:.1f}",
            self._notes.get(layer.name, ""),
        )
        return values[column]

    def _sort_value(self, layer: Any, column: int):
        values = (
            layer.name, layer.op_type, _numel(layer.weight_shape), layer.params, layer.bytes, layer.dtype,
            layer.flops, layer.sparsity, self._predicted.get(layer.name, -1.0), self._notes.get(layer.name, ""),
        )
        return values[column]

    def _tooltip(self, layer: Any) -> str:
        by_dtype = ", ".join(f"{k}: {human_bytes(v)}" for k, v in layer.bytes_by_dtype.items())
        return (f"{layer.name} ({layer.op_type})\n{layer.params:,} params, {human_bytes(layer.bytes)} "
                f"({by_dtype})\n{layer.zeros:,} zero weights\n{layer.macs:,} MACs per sample")


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n if shape else 0


class LayerFilterProxy(QSortFilterProxyModel):
    """Sorts by the raw numbers and keeps rows whose name or type contains the filter text."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self._needle = ""

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:  # noqa: N802
        if not self._needle:
            return True
        model = self.sourceModel()
        return any(self._needle in str(model.data(model.index(source_row, c, source_parent))).lower() for c in (0, 1))

    def set_filter_text(self, text: str) -> None:
        """Filter on a plain substring of the layer name or type."""
        self._needle = text.strip().lower()
        self.setFilterFixedString(self._needle)  # re-runs the filter
