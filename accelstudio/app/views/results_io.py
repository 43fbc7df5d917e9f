"""The results panel's export commands: plot to PNG/SVG, runs to CSV/JSON, the optimized model to a file.

Each command has a method that takes the target path (used by tests and scripts) and a QAction that asks for
the path first. File dialogs go through `ask_save_path`, the one place tests replace.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QWidget

from accelstudio.app.views import dialogs
from accelstudio.app.plots.plot_export import copy_file_atomic, export_png, export_svg
from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import RunResult

if TYPE_CHECKING:
    from accelstudio.app.views.results_panel import ResultsPanel


def ask_save_path(parent: QWidget, title: str, suggested: str, filters: str) -> str | None:
    """Ask where to save; None when the user cancels. Tests monkeypatch this."""
    path, _ = QFileDialog.getSaveFileName(parent, title, suggested, filters)
    return path or None


def _with_suffix(path: str, default: str, allowed: tuple[str, ...]) -> Path:
    p = Path(path)
    return p if p.suffix.lower() in allowed else p.with_name(p.name + default)


class ResultsIO:
    """Export actions bound to a ResultsPanel."""

    def __init__(self, panel: "ResultsPanel"):
        self.panel = panel
        self.plot_png = self._action("Export Plot as PNG…", "exportPlotPng", lambda: self._ask_plot(".png"))
        self.plot_svg = self._action("Export Plot as SVG…", "exportPlotSvg", lambda: self._ask_plot(".svg"))
        self.runs_csv = self._action("Export Runs as CSV…", "exportRunsCsv", lambda: self._ask_runs(".csv"))
        self.runs_json = self._action("Export Runs as JSON…", "exportRunsJson", lambda: self._ask_runs(".json"))
        self.save_model = self._action("Save Optimized Model…", "saveOptimizedModel", self._ask_artifact)
        self.save_model.setToolTip("Copy the selected run's optimized model file to a place you choose")

    def _action(self, text: str, name: str, slot) -> QAction:
        action = QAction(text, self.panel)
        action.setObjectName(name)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def actions(self) -> list[QAction]:
        """Every export action, in menu order."""
        return [self.plot_png, self.plot_svg, self.runs_csv, self.runs_json, self.save_model]

    def update_enabled(self, chosen: list[RunResult]) -> None:
        """Enable what makes sense for the selection (runs export needs a store; saving needs an artifact)."""
        has_store = self.panel.store is not None
        self.runs_csv.setEnabled(has_store)
        self.runs_json.setEnabled(has_store)
        scope = f"{len(chosen)} Selected" if chosen else "All"
        self.runs_csv.setText(f"Export {scope} Runs as CSV…")
        self.runs_json.setText(f"Export {scope} Runs as JSON…")
        self.save_model.setEnabled(artifact_of(chosen[0]) is not None if len(chosen) == 1 else False)

    # --- commands with a path -------------------------------------------------------------------------

    def export_plot(self, path: str | Path, widget: QWidget | None = None) -> Path:
        """Save the trade-off plot (or `widget`) as SVG when the path ends in .svg, else PNG."""
        target = widget if widget is not None else self.panel.tradeoff
        if Path(path).suffix.lower() == ".svg":
            return export_svg(target, path, "AccelStudio latency vs accuracy")
        return export_png(target, path)

    def export_runs(self, path: str | Path, ids: list[int] | None = None) -> int:
        """Write runs (`ids`, default the selected ones, or all when none is selected) as JSON when the path
        ends in .json, else CSV, through the store's exporters. Returns the number of runs written."""
        store = self.panel.store
        if store is None:
            raise AccelStudioError("no run store is open; runs cannot be exported")
        if ids is None:
            ids = self.panel.selected_ids() or None
        if Path(path).suffix.lower() == ".json":
            return store.export_json(path, ids)
        return store.export_csv(path, ids)

    def save_artifact(self, path: str | Path, run: RunResult | None = None) -> Path:
        """Copy a run's optimized model (default: the selected run's) to `path`, atomically."""
        if run is None:
            chosen = self.panel.selected_runs()
            run = chosen[0] if chosen else None
        source = artifact_of(run) if run is not None else None
        if source is None:
            raise AccelStudioError("the selected run has no optimized model file; run it with the artifact kept")
        return copy_file_atomic(source, path)

    # --- interactive --------------------------------------------------------------------------------

    def _ask_plot(self, suffix: str) -> None:
        kind = suffix[1:].upper()
        path = ask_save_path(self.panel, f"Export Plot as {kind}", f"tradeoff{suffix}", f"{kind} image (*{suffix})")
        if path:
            self._guard("Export failed", lambda: self.export_plot(_with_suffix(path, suffix, (suffix,))))

    def _ask_runs(self, suffix: str) -> None:
        kind = suffix[1:].upper()
        path = ask_save_path(self.panel, f"Export Runs as {kind}", f"runs{suffix}", f"{kind} (*{suffix})")
        if path:
            self._guard("Export failed", lambda: self.export_runs(_with_suffix(path, suffix, (suffix,))))

    def _ask_artifact(self) -> None:
        chosen = self.panel.selected_runs()
        source = artifact_of(chosen[0]) if chosen else None
        if source is None:
            return
        path = ask_save_path(self.panel, "Save Optimized Model", source.name, f"Model (*{source.suffix})")
        if path:
            self._guard("Saving the model failed", lambda: self.save_artifact(path, chosen[0]))

    def _guard(self, title: str, command) -> bool:
        try:
            command()
        except (AccelStudioError, OSError) as exc:
            dialogs.exec_dialog(dialogs.error_box(self.panel, title, str(exc)))
            return False
        return True


def artifact_of(run: RunResult) -> Path | None:
    """The run's optimized model file, when it still exists."""
    if not run.artifact:
        return None
    path = Path(run.artifact)
    return path if path.is_file() else None
