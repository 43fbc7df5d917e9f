"""The optimized model files runs keep, from the window: a Runs menu and the runs table's context menu to pin
runs (keep their file), remove the files of selected or all unpinned runs, and set a size cap that is applied
after every run; a status-bar label shows the store's disk use (database + optimized models).

The rules (what a cap removes, sizes, removal only inside the artifacts folder) live in core.runs.artifacts; the
file work runs on the background runner, never on the GUI thread. Removing a file never removes its run.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QLabel, QMenu

from accelstudio.app.views import dialogs
from accelstudio.core.runs.artifacts import DEFAULT_CAP_MB, MB, clean_artifacts, disk_use, size_text

CAP_KEY = "artifacts/capMB"
MAX_CAP_MB = 10_000_000


class ArtifactsController(QObject):
    """Pin/clean actions on the results panel's runs, the size cap setting and the disk-use label."""

    status = Signal(str, int)  # a line for the status bar
    usage_changed = Signal(object)  # DiskUse

    def __init__(self, window, results, runner, settings):
        super().__init__(window)
        self._window, self._results, self._runner, self._settings = window, results, runner, settings
        self._tickets = itertools.count(1)
        self.last_use = None
        self.usage_label = QLabel(objectName="storeUsage")
        self.usage_label.setToolTip("Disk space of the run store: its database and the optimized models runs keep")
        self.pin_action = self._action("&Keep Optimized Model of Selected Runs", "pinRuns", self._toggle_pin,
                                       "Pinned runs keep their optimized model when files are cleaned up")
        self.pin_action.setCheckable(True)
        self.clean_selected_action = self._action("&Remove Optimized Models of Selected Runs", "cleanSelected",
                                                  self.clean_selected, "The runs and their numbers stay")
        self.clean_all_action = self._action("Remove Optimized Models of &All Unpinned Runs…", "cleanUnpinned",
                                             self.clean_unpinned, "The runs and their numbers stay")
        self.cap_action = self._action("Optimized Models Size &Cap…", "artifactCap", self.ask_cap,
                                       "After each run, the oldest unpinned optimized models beyond the cap are "
                                       "removed")
        results.selection_changed.connect(lambda _ids: self._update_enabled())
        self._update_enabled()

    def _action(self, text: str, name: str, slot, tip: str) -> QAction:
        action = QAction(text, self._window, objectName=name)
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def fill_menu(self, menu: QMenu) -> None:
        """Add the artifact actions to a menu (the window's Runs menu)."""
        for action in (self.pin_action, self.clean_selected_action, self.clean_all_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.cap_action)

    def attach_table(self, table, extra_actions=()) -> None:
        """The runs table's context menu: these actions and `extra_actions` (e.g. Save Optimized Model)."""
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for action in (self.pin_action, self.clean_selected_action, self.clean_all_action, *extra_actions):
            table.addAction(action)

    # -- settings ------------------------------------------------------------------------------------------
    def cap_mb(self) -> int:
        """The size cap for all optimized models together, in MB (0: keep only pinned runs' files)."""
        try:
            return max(0, int(self._settings.value(CAP_KEY, DEFAULT_CAP_MB)))
        except (TypeError, ValueError):
            return DEFAULT_CAP_MB

    def set_cap_mb(self, mb: int) -> None:
        """Remember the cap and apply it now."""
        self._settings.setValue(CAP_KEY, int(mb))
        self.apply_cap()

    def ask_cap(self) -> None:
        """Runs > Optimized Models Size Cap…"""
        mb, ok = QInputDialog.getInt(self._window, "Optimized models size cap",
                                     "Keep at most this many MB of optimized models (0: only pinned runs' "
                                     "files).\nThe oldest files of unpinned runs go first; the runs stay.",
                                     self.cap_mb(), 0, MAX_CAP_MB, 100)
        if ok:
            self.set_cap_mb(mb)

    # -- commands ------------------------------------------------------------------------------------------
    def _store(self):
        store = self._results.store
        if store is None:
            self.status.emit("No run store is open, so no optimized models are kept.", 8000)
        return store

    def _toggle_pin(self) -> None:
        store, ids = self._store(), self._results.selected_ids()
        if store is None or not ids:
            return
        pinned = not set(ids) <= store.pinned_ids()
        store.set_pinned(ids, pinned)
        what = "keep their optimized model" if pinned else "no longer keep their optimized model"
        self.status.emit(f"Run(s) {', '.join(map(str, ids))} {what}.", 6000)
        self._update_enabled()
        self.refresh_usage()

    def clean_selected(self) -> None:
        """Remove the optimized models of the selected runs (pinned ones are left alone)."""
        ids = self._results.selected_ids()
        if ids:
            self._clean(lambda store: clean_artifacts(store, run_ids=ids))

    def clean_unpinned(self) -> None:
        """Remove the optimized models of every unpinned run, after a confirmation."""
        store = self._store()
        if store is None:
            return
        use = self.last_use or disk_use(store)
        box = dialogs.confirm_box(self._window, "Remove optimized models?",
                                  "Remove the optimized model files of every run that is not pinned?",
                                  f"The runs and their numbers stay. Now: {use.describe()}.")
        if dialogs.exec_dialog(box) == dialogs.YES:
            self._clean(lambda store: clean_artifacts(store))

    def apply_cap(self) -> None:
        """Remove the oldest unpinned optimized models beyond the cap (after each run and when it changes)."""
        keep = self.cap_mb() * MB
        self._clean(lambda store: clean_artifacts(store, keep_bytes=keep), quiet=True)

    def run_finished(self, _result) -> None:
        """After a run: apply the cap, then show the new disk use."""
        self.apply_cap()

    def _clean(self, job, quiet: bool = False) -> None:
        store = self._store()
        if store is None:
            return

        def work():
            report = job(store)
            return report, disk_use(store)

        def done(result) -> None:
            report, use = result
            if report.removed or report.skipped:
                self._results.reload()
            if report.removed or report.skipped or not quiet:
                self.status.emit(f"Optimized models: {report.describe()}.", 8000)
            self._show_usage(use)

        self._runner.submit(f"artifacts-clean-{next(self._tickets)}", work, done,
                            lambda exc, _t: self.status.emit(f"Could not clean up optimized models: {exc}", 0))

    def refresh_usage(self) -> None:
        """Recompute the store's disk use in the background and show it."""
        store = self._results.store
        if store is None:
            self.usage_label.setText("")
            return
        self._runner.submit("artifacts-usage", lambda: disk_use(store), self._show_usage,
                            lambda exc, _t: self.usage_label.setText(f"Store: size unknown ({exc})"))

    def _show_usage(self, use) -> None:
        self.last_use = use
        self.usage_label.setText(f"Store: {size_text(use.total_bytes)}")
        self.usage_label.setToolTip(f"{use.describe()}. Size cap for optimized models: {self.cap_mb()} MB "
                                    "(Runs menu)")
        self.usage_changed.emit(use)

    def _update_enabled(self) -> None:
        store, ids = self._results.store, self._results.selected_ids()
        has = store is not None and bool(ids)
        self.pin_action.setEnabled(has)
        self.clean_selected_action.setEnabled(has)
        self.clean_all_action.setEnabled(store is not None)
        self.pin_action.setChecked(bool(has and set(ids) <= store.pinned_ids()))
