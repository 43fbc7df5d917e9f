"""The results side of the window: trade-off plot, latency distribution, sizes, the verdict line, the runs table,
compare and export. It only shows runs and sends commands (restore a run's settings, compare, export).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFrame, QHBoxLayout, QLabel, QMenu, QPushButton,
                               QScrollArea, QSizePolicy, QSplitter, QTableView, QToolButton, QVBoxLayout, QWidget)

from accelstudio.app.plots import run_metrics as rm
from accelstudio.app.views import results_io
from accelstudio.app.views.compare_dialog import CompareDialog
from accelstudio.app.views.explain_dialog import WhyBox
from accelstudio.app.plots.result_plots import LatencyHistogram, SizeBars, TradeoffPlot
from accelstudio.app.views.runs_model import RUN_ID_ROLE, RunsSortProxy, RunsTableModel
from accelstudio.core.runs import baseline as bl
from accelstudio.core.job import RunResult

LIVE_REDRAW_MS = 150  # at most ~7 histogram redraws a second while a run streams latencies
MIN_TABLE_ROWS = 3  # the runs table never shrinks below this many visible rows
DETAIL_LINES = 3  # the run's data, fidelity and warning lines show this many lines, then scroll
MAX_COLUMN_WIDTH = 260
VERDICT_COLORS = {"drop": "#d55e00", "gain": "#009e73"}
BROKEN_COLOR = "#d62728"


def identity_matcher(sha256: str | None = None, name: str | None = None,
                     path: str | None = None) -> Callable[[RunResult], bool] | None:
    """A predicate: does a run measure this model? SHA-256 decides when both sides have one, then the path,
    then the name. None when nothing identifies the model."""
    if not (sha256 or name or path):
        return None
    resolved = str(Path(path).resolve()) if path else None

    def matches(run: RunResult) -> bool:
        ident = run.model_identity or {}
        if sha256 and ident.get("sha256"):
            return ident["sha256"] == sha256
        if resolved and ident.get("path"):
            return str(Path(ident["path"]).resolve()) == resolved
        return bool(name) and ident.get("name") == name

    return matches


class _DetailsArea(QScrollArea):
    """A scroll area whose preferred height is `height` (the layout gives it that much when there is room)."""

    def __init__(self, height: int):
        super().__init__()
        self._height = height

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(super().sizeHint().width(), self._height)


def details_text(lines: list[str]) -> str:
    """The data, calibration and fidelity facts run on in one wrapped paragraph (the panel is wide and short);
    each warning keeps a line of its own."""
    warnings = [line for line in lines if line.startswith("⚠")]
    facts = [line for line in lines if not line.startswith("⚠")]
    return "\n".join(["  ·  ".join(facts)] + warnings)


def table_height(table: QTableView, rows: int) -> int:
    """Pixels a table needs to show its header, `rows` rows and a horizontal scroll bar."""
    header = table.horizontalHeader().sizeHint().height()
    scroll = table.horizontalScrollBar().sizeHint().height()
    return header + rows * table.verticalHeader().defaultSectionSize() + scroll + 2 * table.frameWidth()


class ResultsPanel(QWidget):
    """Runs from a RunStore, plotted and tabulated. Signals: restore_requested(RunResult) when the user clicks
    a point (the window restores that run's recipe and runtime), selection_changed(list of run ids),
    run_baseline_requested(JobSpec) when the user asks for the missing like-for-like baseline of a run."""

    restore_requested = Signal(object)
    selection_changed = Signal(list)
    run_baseline_requested = Signal(object)

    def __init__(self, store=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("resultsPanel")
        self.store = None
        self._matcher: Callable[[RunResult], bool] | None = None
        self._baseline_hint: int | None = None
        self._baseline_wanted: RunResult | None = None
        self._live: list[float] | None = None
        self._live_timer = QTimer(self, singleShot=True, interval=LIVE_REDRAW_MS)
        self._live_timer.timeout.connect(self._draw_live)
        self._build()
        self.io = results_io.ResultsIO(self)
        self._build_toolbar_menu()
        if store is not None:
            self.set_store(store)
        self._update_controls()

    # --- construction -----------------------------------------------------------------------------------

    def _build(self) -> None:
        self.text_areas: list[_DetailsArea] = []  # the summary and details: a few lines, then they scroll
        self.tradeoff = TradeoffPlot()
        self.tradeoff.run_clicked.connect(self._on_point_clicked)
        self.histogram = LatencyHistogram()
        self.sizes = SizeBars()
        self.summary = QLabel("Select a run to compare it with its baseline.")
        self.summary.setObjectName("resultsSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.broken_label = QLabel()
        self.broken_label.setObjectName("resultsBroken")
        self.broken_label.setWordWrap(True)
        self.broken_label.setStyleSheet(f"color: {BROKEN_COLOR}; font-weight: bold;")
        self.broken_label.hide()
        self.details = QLabel()
        self.details.setObjectName("resultsDetails")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.why = WhyBox()  # "why is it (not) faster?" and the Explain… dialog
        self.why.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)  # spare room goes to text
        self.badge = QLabel()
        self.badge.setObjectName("resultsBadge")
        self.badge.setStyleSheet("background: #f0e442; color: #000; padding: 1px 6px; border-radius: 3px;")
        self.badge.hide()
        self.run_baseline_button = QPushButton("Run baseline")
        self.run_baseline_button.setObjectName("runBaselineButton")
        self.run_baseline_button.setToolTip("Measure the unchanged model with this run's runtime, device, threads "
                                            "and batch, so the run has a like-for-like baseline")
        self.run_baseline_button.clicked.connect(self.request_baseline)
        self.run_baseline_button.hide()
        self.scope = QComboBox()
        self.scope.setObjectName("modelScope")
        self.scope.addItems(["This model", "All models"])
        self.scope.setToolTip("Plot only the open model's runs, or every model's (others greyed)")
        self.scope.currentIndexChanged.connect(lambda _: self._refresh_plot())
        self.compare_button = QPushButton("Compare…")
        self.compare_button.setToolTip("Select two runs in the table to compare them side by side")
        self.compare_button.clicked.connect(self.compare_selected)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)

        self.model = RunsTableModel(self)
        self.proxy = RunsSortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setObjectName("runsTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection)
        self.table.setMinimumHeight(table_height(self.table, MIN_TABLE_ROWS))

        # side by side rather than stacked: the plots stay tall enough to read in a short dock
        self.plots = QSplitter(Qt.Orientation.Horizontal)
        for index, (plot, stretch) in enumerate(((self.tradeoff, 5), (self.histogram, 3), (self.sizes, 2))):
            self.plots.addWidget(plot)
            self.plots.setStretchFactor(index, stretch)
            self.plots.setCollapsible(index, False)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show:"))
        bar.addWidget(self.scope)
        bar.addSpacing(12)
        bar.addWidget(self._scrolled(self.summary), 1)  # a long verdict scrolls rather than squeezing the plots
        bar.addWidget(self.run_baseline_button)
        bar.addWidget(self.compare_button)
        bar.addWidget(self.export_button)
        info = QHBoxLayout()
        info.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignTop)
        info.addWidget(self._scrolled(self.details), 1)
        table_box = QWidget()
        table_layout = QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addLayout(bar)
        table_layout.addWidget(self.broken_label)
        table_layout.addLayout(info)
        table_layout.addWidget(self.why)
        table_layout.addWidget(self.table)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.plots)
        split.addWidget(table_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setCollapsible(0, False)
        split.setCollapsible(1, False)
        split.setSizes([600, 400])
        self.split = split
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def _scrolled(self, label: QLabel) -> QScrollArea:
        """`label` in a frameless scroll area that asks for DETAIL_LINES lines and makes do with two: however many
        warnings a run has, the details never push the window past a 1280x720 screen."""
        line = label.fontMetrics().lineSpacing()
        area = _DetailsArea(line * DETAIL_LINES + 6)
        self.text_areas.append(area)
        area.setWidget(label)
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        area.setMaximumHeight(line * DETAIL_LINES + 6)
        area.setMinimumHeight(line + 6)  # one line (and a scroll bar) when the window is short
        area.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        return area

    def fit_text_lines(self, line: int, compact: bool = False) -> None:
        """The summary and details areas for text `line` pixels high: up to DETAIL_LINES lines when there is
        room, down to one (then they scroll) when the window is short. `compact` (presenter mode, where text is
        large and the plots need the room): the verdict in one scrolling line and the details line hidden."""
        most, pad = (1, 2) if compact else (DETAIL_LINES, 6)
        for area in self.text_areas:
            area._height = line * most + pad
            area.setMaximumHeight(line * most + pad)
            area.setMinimumHeight(line + pad)
            area.updateGeometry()
        if len(self.text_areas) > 1:
            self.text_areas[1].setVisible(not compact)

    def _build_toolbar_menu(self) -> None:
        menu = QMenu(self)
        for action in self.export_actions():
            menu.addAction(action)
        self.export_button.setMenu(menu)

    def export_actions(self) -> list[QAction]:
        """Export plot PNG/SVG, export runs CSV/JSON (selected runs, or all when none is selected), save the
        selected run's optimized model. The window may add these to its File menu."""
        return self.io.actions()

    # --- data -------------------------------------------------------------------------------------------

    def set_store(self, store) -> None:
        """Show every run of `store` (a RunStore), newest first."""
        self.store = store
        runs = store.list_runs() if store is not None else []
        self.model.set_runs(runs)
        self._fit_columns()
        self._refresh_plot()
        self._update_controls()

    def _fit_columns(self) -> None:
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        for column in range(self.model.columnCount() - 1):
            header.resizeSection(column, min(header.sectionSize(column), MAX_COLUMN_WIDTH))

    def _widen_columns(self) -> None:
        """Widen columns too narrow for a new run's text (never narrower: the user may have sized them)."""
        header = self.table.horizontalHeader()
        for column in range(self.model.columnCount() - 1):
            wanted = min(max(self.table.sizeHintForColumn(column), header.sectionSizeHint(column)), MAX_COLUMN_WIDTH)
            if header.sectionSize(column) < wanted:
                header.resizeSection(column, wanted)

    def reload(self) -> None:
        """Read the store again (runs added by another process, e.g. the command line)."""
        selected = self.selected_ids()
        self.set_store(self.store)
        if selected:
            self.select_runs(selected)

    def runs(self) -> list[RunResult]:
        """Every run shown, newest first."""
        return self.model.runs()

    def run(self, run_id: int) -> RunResult | None:
        """The run with this id, if shown."""
        row = self.model.row_of(run_id)
        return self.model.run_at(row) if row >= 0 else None

    @Slot(object)
    def add_run(self, result: RunResult) -> None:
        """Show a new (or updated) run and select it."""
        self._live = None
        self._live_timer.stop()
        self.model.add_run(result)
        self._widen_columns()
        self._refresh_plot()
        if result.run_id is not None:
            self.select_run(result.run_id)
        self._update_controls()

    def set_current_model(self, sha256: str | None = None, name: str | None = None, path: str | None = None) -> None:
        """Which model the window has open: its runs are highlighted (or the only ones, in 'This model' mode)."""
        self._matcher = identity_matcher(sha256, name, path)
        self._refresh_plot()

    def set_baseline_hint(self, run_id: int | None) -> None:
        """Compare selected runs with this run instead of the newest baseline run of the same model."""
        self._baseline_hint = run_id
        self._on_table_selection()

    def baseline_for(self, result: RunResult) -> RunResult | None:
        """The run a result is compared with: the hinted run when it is a like-for-like baseline, else the
        like-for-like baseline found in the store (accelstudio.core.runs.baseline); never another."""
        if self._baseline_hint is not None:
            hinted = self.run(self._baseline_hint)
            if hinted is not None and rm.is_baseline(hinted) and not bl.mismatches(result, hinted):
                return hinted
        return rm.find_baseline(result, self.runs())

    def _refresh_plot(self) -> None:
        only_this = self.scope.currentIndex() == 0 and self._matcher is not None
        self.proxy.set_run_filter(self._matcher if only_this else None)  # the table lists what the plot shows
        self.tradeoff.set_runs(self.runs(), self._matcher, show_others=not only_this, selected=set(self.selected_ids()))

    # --- selection --------------------------------------------------------------------------------------

    def selected_ids(self) -> list[int]:
        """Run ids of the selected table rows, in table order."""
        rows = sorted(self.table.selectionModel().selectedRows(), key=lambda i: i.row())
        return [i.data(RUN_ID_ROLE) for i in rows if i.data(RUN_ID_ROLE) is not None]

    def selected_runs(self) -> list[RunResult]:
        """The selected runs, in table order."""
        return [r for r in (self.run(i) for i in self.selected_ids()) if r is not None]

    def select_run(self, run_id: int) -> bool:
        """Select one run's row and scroll to it; False when the run is not shown."""
        return self.select_runs([run_id])

    def select_runs(self, run_ids: list[int]) -> bool:
        """Select these runs' rows (replacing the selection)."""
        selection = self.table.selectionModel()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        found = False
        selection.clearSelection()
        for run_id in run_ids:
            row = self.model.row_of(run_id)
            if row < 0:
                continue
            index = self.proxy.mapFromSource(self.model.index(row, 0))
            selection.select(index, flags)
            if not found:
                selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
                self.table.scrollTo(index)
            found = True
        return found

    @Slot(int)
    def _on_point_clicked(self, run_id: int) -> None:
        run = self.run(run_id)
        if run is None:
            return
        self.select_run(run_id)
        self.restore_requested.emit(run)

    def _on_table_selection(self, *_: Any) -> None:
        chosen = self.selected_runs()
        self.tradeoff.set_selected({r.run_id for r in chosen})
        primary = chosen[0] if chosen else None
        if self._live is None:
            self._show_latencies(primary)
        self._show_comparison(primary, chosen)
        self._update_controls()
        self.selection_changed.emit([r.run_id for r in chosen])

    def _show_latencies(self, run: RunResult | None) -> None:
        if run is None:
            self.histogram.set_latencies([], "Latency distribution")
        else:
            self.histogram.set_latencies(run.latencies_ms, f"Latency of run {run.run_id}",
                                         detail=f"Run {run.run_id}: {rm.recipe_label(run)}\n"
                                                f"{rm.model_name(run)} · {rm.runtime_label(run)}")

    def _show_comparison(self, primary: RunResult | None, chosen: list[RunResult]) -> None:
        self._baseline_wanted = None
        if primary is None:
            self.sizes.set_bars([])
            self._show_report_text("Select a run to compare it with its baseline.", "", None)
            self.why.show_run(None, None)
            return
        baseline = self.baseline_for(primary)
        self.sizes.set_bars(self._size_bars(primary, baseline, chosen))
        self.why.show_run(primary, baseline)
        rep = rm.report(primary, baseline)
        verdict = "broken" if rep.broken is not None else rm.VERDICT_KEYS.get(rep.accuracy_verdict, "")
        text = rep.verdict_line()
        if primary.status == "done" and not rep.is_baseline and baseline is None:
            self._baseline_wanted = primary
        self._show_report_text(text if primary.status != "done" else f"Run {primary.run_id}: {text}", verdict, rep)

    def _size_bars(self, primary: RunResult, baseline: RunResult | None,
                   chosen: list[RunResult]) -> list[tuple[str, float, bool]]:
        bars: list[tuple[str, float, bool]] = []
        if baseline is not None and rm.size_mb(baseline) is not None:
            bars.append((f"baseline #{baseline.run_id}", rm.size_mb(baseline), True))
        elif rm.size_mb(primary, "baseline_size_bytes") is not None:
            bars.append(("baseline", rm.size_mb(primary, "baseline_size_bytes"), True))
        for run in chosen[:6]:
            if rm.size_mb(run) is not None and (baseline is None or run.run_id != baseline.run_id):
                bars.append((f"#{run.run_id}", rm.size_mb(run), rm.is_baseline(run)))
        return bars

    def _show_report_text(self, text: str, verdict: str, rep) -> None:
        """The verdict line (coloured by the accuracy verdict), the broken line in red, the data badge, the
        data/fidelity/warning details and the Run baseline offer."""
        self.summary.setProperty("verdict", verdict)
        color = VERDICT_COLORS.get(verdict)
        safe = html.escape(text)
        self.summary.setText(f'<span style="color:{color}">{safe}</span>' if color else safe)
        broken = rep.broken.text() if rep is not None and rep.broken is not None else ""
        self.broken_label.setText(broken)
        self.broken_label.setVisible(bool(broken))
        badge = rep.data.badge if rep is not None and rep.status == "done" else ""
        self.badge.setText(badge)
        self.badge.setVisible(bool(badge))
        self.details.setText(details_text(rm.details_lines(rep)) if rep is not None and rep.status == "done" else "")
        self.run_baseline_button.setVisible(self._baseline_wanted is not None)
        if self._baseline_wanted is not None:
            self.run_baseline_button.setToolTip(f"Measure the unchanged model with {rep.settings} (the like-for-like "
                                                "baseline this run lacks)")

    def request_baseline(self) -> None:
        """Ask for the selected run's missing like-for-like baseline: emits run_baseline_requested(JobSpec)."""
        run = self._baseline_wanted
        if run is None:
            return
        try:
            spec = bl.baseline_spec(run)
        except Exception as exc:  # an old or damaged record cannot be run again
            self.summary.setText(html.escape(f"Cannot run the baseline of run {run.run_id}: {exc}"))
            return
        self.run_baseline_requested.emit(spec)

    def _update_controls(self) -> None:
        chosen = self.selected_runs()
        self.compare_button.setEnabled(len(chosen) == 2)
        self.io.update_enabled(chosen)

    # --- live results ---------------------------------------------------------------------------------

    @Slot()
    def job_started(self) -> None:
        """A run started: the histogram waits for its first latencies."""
        self._live = []
        self.histogram.set_latencies([], "Current run", live=True)

    @Slot(str, float, str, dict)
    def show_progress(self, stage: str, fraction: float, text: str, partial: dict) -> None:
        """Take a progress message: partial {"latencies_ms": the new per-call times, "n": calls so far}
        extends the live histogram (a chunk starting at call 0 begins a new measurement)."""
        chunk = (partial or {}).get("latencies_ms")
        if not isinstance(chunk, list):
            return
        live = self._live if self._live is not None else []
        n = (partial or {}).get("n")
        start = n - len(chunk) if isinstance(n, int) else len(live)
        self._live = (live[:start] if 0 <= start <= len(live) else []) + [float(x) for x in chunk if x is not None]
        if not self._live_timer.isActive():
            self._live_timer.start()

    def _draw_live(self) -> None:
        if self._live is not None:
            self.histogram.set_latencies(self._live, "Current run", live=True)

    def connect_bridge(self, bridge) -> None:
        """Follow a JobBridge: live latencies while it runs, the finished run added and selected."""
        bridge.started.connect(self.job_started)
        bridge.progress.connect(self.show_progress)
        bridge.finished.connect(self.add_run)
        bridge.failed.connect(lambda _msg: self._end_live())

    def _end_live(self) -> None:
        self._live = None
        self._live_timer.stop()
        self._on_table_selection()

    # --- commands -------------------------------------------------------------------------------------

    def compare_selected(self) -> CompareDialog | None:
        """Open the compare dialog for the two selected runs (non-modal); returns it."""
        chosen = sorted(self.selected_runs(), key=lambda r: r.run_id or 0)  # the older run is A
        if len(chosen) != 2:
            return None
        dialog = CompareDialog(chosen[0], chosen[1], self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog
