"""The model view: a totals strip, the filterable layer table and three plots (sizes, sparsity, weights).

It only shows what it is given and reports what the user picks: `current_layer_changed(name)` when the
current row changes, `layer_action(action, names)` from the table's context menu.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFrame, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMenu,
                               QSizePolicy, QSplitter, QTableView, QTabWidget, QVBoxLayout, QWidget)

from accelstudio.app.views.layer_table import NAME_ROLE, LayerFilterProxy, LayerTableModel
from accelstudio.app.plots.model_plots import SizeBars, SparsityBars, WeightHistogram, human_bytes
from accelstudio.app.plots.mask_plot import MaskHeatmap
from accelstudio.app.plots.theme import PlotColors
from accelstudio.core.model.layer_groups import GROUPING_TITLES, MANY_LAYERS, MAX_BLOCKS, group_layers

PLOT_STEP_MS = 20
BAR_PIXELS, MIN_BLOCKS = 24, 6  # blocks of consecutive layers: one per this many pixels of plot, at least 6  # pause between the plots of a newly shown model, so each paints in its own turn

LAYER_ACTIONS = (
    ("override", "Prune these layers by the override amount"),
    ("clear-override", "Clear pruning override"),
    ("prune-exclude", "Exclude from pruning"),
    ("prune-include", "Include in pruning again"),
    ("quant-exclude", "Keep in fp32 (exclude from quantization)"),
    ("quant-include", "Quantize again"),
)


class TotalsStrip(QFrame):
    """Model totals that stay visible: name, params, size, MFLOPs and the predicted size after the recipe."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        self.labels: dict[str, QLabel] = {}
        for key, tip in (("model", "Open model and the form it is held in"),
                         ("params", "Parameters in the whole model"),
                         ("size", "Bytes of all parameters in memory (file size in brackets)"),
                         ("flops", "Million floating-point operations per sample"),
                         ("predicted", "Estimated size after the current recipe, and parameters left nonzero")):
            label = QLabel("-")
            label.setToolTip(tip)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setMinimumWidth(40)  # long values elide instead of widening the window
            label.setSizePolicy(QSizePolicy.Policy.Ignored if key == "predicted" else QSizePolicy.Policy.Preferred,
                                QSizePolicy.Policy.Preferred)
            self.labels[key] = label
            layout.addWidget(label, 1 if key == "predicted" else 0)
            layout.addSpacing(18)

    def show_summary(self, title: str, summary) -> None:
        """Fill in the totals of a ModelSummary: the table's sums plus what no weighted layer holds."""
        file_part = f" (file {human_bytes(summary.file_bytes)})" if summary.file_bytes else ""
        self.labels["model"].setText(f"<b>{title}</b>")
        self.labels["params"].setText(f"Params <b>{summary.total_params:,}</b>")
        self.labels["size"].setText(f"Size <b>{summary.total_bytes / 1e6:.3f} MB</b>{file_part}")
        layer_params = summary.total_params - summary.other_params
        layer_bytes = summary.total_bytes - summary.other_bytes
        breakdown = (f"{layer_params:,} in the {len(summary.layers)} layers of the table + "
                     f"{summary.other_params:,} other parameters (outside weighted layers)")
        self.labels["params"].setToolTip(f"Parameters in the whole model: {breakdown}")
        self.labels["size"].setToolTip(f"Bytes of everything the model stores, in memory: {human_bytes(layer_bytes)}"
                                       f" in the table's layers + {human_bytes(summary.other_bytes)} other"
                                       + (f"; file on disk {human_bytes(summary.file_bytes)}" if file_part else ""))
        flops_text = ("MFLOPs <b>not counted</b> (see tooltip)" if not summary.flops_counted
                      else f"<b>{summary.total_flops / 1e6:.2f}</b> MFLOPs/sample")
        shape = ", ".join(f"{s.name} {'x'.join(str(d) for d in s.shape)}" for s in summary.inputs)
        self.labels["flops"].setText(flops_text)
        self.labels["flops"].setToolTip(f"Million floating-point operations per call at {shape}"
                                        + ("\n" + "\n".join(summary.warnings) if summary.warnings else ""))
        self.labels["predicted"].setText("After recipe: …")

    def show_predicted(self, prediction, recipe_text: str) -> None:
        """The estimate for the current recipe (a SizePrediction; None while it is being computed)."""
        label = self.labels["predicted"]
        if prediction is None:
            label.setText("After recipe: …")
            return
        if not prediction.changes:
            label.setText("After recipe: <i>no change</i> (no pruning or quantization set)")
            label.setToolTip("Set pruning or quantization to see the predicted size")
            return
        mark = " <span style='color:#c77c00'>(some layers stay float)</span>" if prediction.float_layers else ""
        label.setText(f"After recipe: <b>{prediction.bytes / 1e6:.3f} MB</b>, "
                      f"{prediction.nonzero_params:,} nonzero params{mark}")
        notes = "".join(f"\n• {note}" for note in prediction.notes)
        label.setToolTip(f"Estimated for: {recipe_text}\nSize: dense storage (unstructured zeros only shrink a "
                         f"compressed file); nonzero: weights left{notes}")


class ModelView(QWidget):
    """Totals strip, filter box, layer table and plots for the open model."""

    current_layer_changed = Signal(str)
    layer_action = Signal(str, list)  # action key, layer names

    def __init__(self, parent=None):
        super().__init__(parent)
        self.totals = TotalsStrip()
        self.table_model = LayerTableModel(self)
        self.proxy = LayerFilterProxy(self)
        self.proxy.setSourceModel(self.table_model)
        self.filter_edit = QLineEdit(placeholderText="Filter layers by name or type (e.g. conv, fc)"
                                     " · right-click rows for per-layer settings")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._filter_changed)
        self.count_label = QLabel()
        self.grouping_combo = QComboBox(objectName="layerGrouping")  # how the bar plots below group the layers
        for key, title in GROUPING_TITLES.items():
            self.grouping_combo.addItem(title, key)
        self.grouping_combo.setToolTip("Bar plots: one bar per layer, per block of layers or per operator type "
                                       "(models with many layers start grouped by block)")
        self.grouping_combo.activated.connect(self._grouping_picked)
        self._grouping_chosen = False
        self._bar_layers: dict[str, str] = {}  # bar name -> the layer a click on it selects
        self.table = self._make_table()
        self.histogram = WeightHistogram()
        self.mask_heatmap = MaskHeatmap()
        self.weight_tabs = QTabWidget(objectName="weightTabs")  # the layer's weights, and its pruning mask
        self.weight_tabs.addTab(self.histogram, "Weights")
        self.weight_tabs.addTab(self.mask_heatmap, "Mask W×M")
        self.weight_tabs.setDocumentMode(True)
        for page in (self.histogram, self.mask_heatmap):  # the tab bar takes what the plots give up
            page.setMinimumHeight(page.minimumHeight() - self.weight_tabs.tabBar().sizeHint().height())
        self.size_bars = SizeBars()
        self.sparsity_bars = SparsityBars()
        for bars in (self.size_bars, self.sparsity_bars):
            bars.layer_clicked.connect(lambda name: self.select_layer(self._bar_layers.get(name, name)))
        self._layers: list = []
        self._shown = 0  # counts models shown, so a deferred plot step of an older model is dropped
        self._plots_pending = False
        self._build()

    def _make_table(self) -> QTableView:
        table = QTableView()
        table.setObjectName("layerTable")
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # model order until the user clicks a header
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setAlternatingRowColors(True)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(22)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        table.horizontalHeader().setStretchLastSection(True)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.customContextMenuRequested.connect(self._context_menu)
        table.selectionModel().currentRowChanged.connect(self._current_changed)
        return table

    def _build(self) -> None:
        table_panel = QWidget()
        tl = QVBoxLayout(table_panel)
        tl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.filter_edit, 1)
        row.addWidget(self.count_label)
        row.addSpacing(12)
        row.addWidget(QLabel("Plots:"))
        row.addWidget(self.grouping_combo)
        tl.addLayout(row)
        tl.addWidget(self.table, 1)
        self.plot_split = QSplitter(Qt.Orientation.Horizontal, objectName="modelPlotSplit")
        for plot in (self.size_bars, self.sparsity_bars, self.weight_tabs):
            self.plot_split.addWidget(plot)
        self.plot_split.setSizes([400, 360, 360])
        self.main_split = QSplitter(Qt.Orientation.Vertical, objectName="modelMainSplit")
        self.main_split.addWidget(table_panel)
        self.main_split.addWidget(self.plot_split)
        self.main_split.setSizes([200, 300])
        self.main_split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.totals)
        layout.addWidget(self.main_split, 1)

    # -- showing state -------------------------------------------------------------------------------------
    def show_model(self, title: str, summary) -> None:
        """A newly loaded model: fill the table and the totals and select the first layer (its histogram is
        computed in the background) now; draw the two bar plots in the next turns of the event loop, one per
        turn, so that no single step holds the window for long on a model with hundreds of layers."""
        self._layers = list(summary.layers)
        if not self._grouping_chosen:
            self._set_grouping("block" if len(self._layers) > MANY_LAYERS else "layer")
        self.table_model.set_layers(self._layers)
        self._fit_columns()
        self._fit_table_height()
        self.totals.show_summary(title, summary)
        self._update_count()
        self._shown += 1
        self._plots_pending = True
        shown = self._shown
        QTimer.singleShot(0, self, lambda: self._show_plots(shown))  # dropped with the view
        if self._layers:
            self.select_layer(self._layers[0].name)
        else:
            self.histogram.clear_histogram("This model has no layers with weights")

    def plots_pending(self) -> bool:
        """True while the bar plots of the model just shown are still to be drawn."""
        return self._plots_pending

    def _show_plots(self, shown: int, step: int = 0) -> None:
        """Plot in pieces: one bar plot per turn of the event loop, with a short pause between them so each is
        painted on its own."""
        if shown != self._shown:  # another model arrived meanwhile
            return
        self._redraw_bars(self.table_model.predicted_reports(), which="size" if step == 0 else "sparsity")
        if step == 0:
            QTimer.singleShot(PLOT_STEP_MS, self, lambda: self._show_plots(shown, 1))
        else:
            self._plots_pending = False

    def _fit_columns(self, sample: int = 40) -> None:
        """Column widths for the header and the first `sample` rows (resizeColumnsToContents asks the model for
        every cell of every row, which takes a noticeable time on models with hundreds of layers)."""
        metrics = self.table.fontMetrics()
        rows = min(self.table_model.rowCount(), sample)
        header = self.table.horizontalHeader()
        for column in range(self.table_model.columnCount()):
            texts = [str(self.table_model.headerData(column, Qt.Orientation.Horizontal))]
            texts += [str(self.table_model.index(r, column).data() or "") for r in range(rows)]
            width = max(metrics.horizontalAdvance(t) for t in texts) + 24
            header.resizeSection(column, min(width, 360))

    def _fit_table_height(self) -> None:
        """Give the table room for up to 5 rows; the plots get the rest."""
        rows = min(max(len(self._layers), 3), 5)
        wanted = rows * self.table.verticalHeader().defaultSectionSize() + 2 * self.table.frameWidth() + 70
        total = sum(self.main_split.sizes()) or 500
        self.main_split.setSizes([wanted, max(total - wanted, 200)])

    def show_recipe(self, recipe) -> None:
        """Mark per-layer overrides and exclusions in the table."""
        self.table_model.set_recipe(recipe)

    def show_prediction(self, reports: list | None, prediction, recipe_text: str) -> None:
        """Predicted sparsity per layer and the predicted totals (a SizePrediction)."""
        self.table_model.set_predicted(reports)
        self.totals.show_predicted(prediction, recipe_text)
        self._redraw_bars(reports)

    def grouping(self) -> str:
        """How the bar plots group layers: "layer", "block" or "type"."""
        return str(self.grouping_combo.currentData())

    def _set_grouping(self, key: str) -> None:
        self.grouping_combo.setCurrentIndex(self.grouping_combo.findData(key))

    def _grouping_picked(self, _index: int) -> None:
        self._grouping_chosen = True  # the user's choice holds for the next models too
        self._redraw_bars(self.table_model.predicted_reports())

    def set_grouping(self, key: str) -> None:
        """Group the bar plots by "layer", "block" or "type" (as if picked in the box)."""
        self._set_grouping(key)
        self._grouping_picked(self.grouping_combo.currentIndex())

    def _redraw_bars(self, reports: list | None, which: str = "both") -> None:
        names = [layer.name for layer in self._layers]
        current = [layer.sparsity for layer in self._layers]
        by_name = {r.name: r.achieved for r in (reports or [])}
        predicted = [by_name.get(n, c) for n, c in zip(names, current)] if reports is not None else None
        layers = self._layers
        room = max(self.size_bars.width(), self.sparsity_bars.width())  # a bar per BAR_PIXELS of the plot
        groups = group_layers(names, [la.op_type for la in layers], [la.params for la in layers],
                              [la.bytes for la in layers], current, predicted or current, self.grouping(),
                              max_blocks=max(MIN_BLOCKS, min(MAX_BLOCKS, room // BAR_PIXELS)))
        self._bar_layers = {g.name: g.layers[0] for g in groups}
        bars = [g.name for g in groups]
        after = [g.predicted for g in groups]
        if which in ("both", "size"):
            self.size_bars.set_data(bars, [g.bytes for g in groups], after)
        if which in ("both", "sparsity"):
            self.sparsity_bars.set_data(bars, [g.sparsity for g in groups], after if predicted is not None else None)

    def apply_colors(self, colors: PlotColors) -> None:
        """Restyle every plot."""
        for plot in (self.histogram, self.mask_heatmap, self.size_bars, self.sparsity_bars):
            plot.apply_colors(colors)

    # -- selection -----------------------------------------------------------------------------------------
    def selected_layers(self) -> list[str]:
        """Names of the selected rows, in table order."""
        rows = sorted(self.table.selectionModel().selectedRows(), key=lambda i: i.row())
        return [self.proxy.data(i, NAME_ROLE) for i in rows]

    def current_layer(self) -> str | None:
        """The layer whose weights the histogram shows."""
        index = self.table.currentIndex()
        return self.proxy.data(index, NAME_ROLE) if index.isValid() else None

    def select_layer(self, name: str) -> None:
        """Make `name` the current and only selected row (clears the filter if it hides that row)."""
        row = self.table_model.layer_names().index(name) if name in self.table_model.layer_names() else -1
        if row < 0:
            return
        index = self.proxy.mapFromSource(self.table_model.index(row, 0))
        if not index.isValid():
            self.filter_edit.clear()
            index = self.proxy.mapFromSource(self.table_model.index(row, 0))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().setCurrentIndex(index, flags)
        self.table.scrollTo(index)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.current_layer_changed.emit(self.proxy.data(current, NAME_ROLE))

    def _filter_changed(self, text: str) -> None:
        self.proxy.set_filter_text(text)
        self._update_count()

    def _update_count(self) -> None:
        self.count_label.setText(f"{self.proxy.rowCount()} of {self.table_model.rowCount()} layers")

    def _context_menu(self, pos) -> None:
        names = self.selected_layers()
        if not names:
            return
        menu = QMenu(self)
        label = names[0] if len(names) == 1 else f"{len(names)} layers"
        title = menu.addAction(label)
        title.setEnabled(False)
        menu.addSeparator()
        for key, text in LAYER_ACTIONS:
            action = QAction(text, menu)
            action.triggered.connect(lambda _=False, k=key: self.layer_action.emit(k, names))
            menu.addAction(action)
        menu.popup(self.table.viewport().mapToGlobal(pos))
