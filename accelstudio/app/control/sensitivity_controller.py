"""The Sensitivity dock: runs a per-layer sensitivity study of the open model in a worker process (off the GUI
thread, with Cancel), stores it, shows it as a heatmap linked to the layer table, and turns it into recipe edits
through the same per-layer rules the layer table uses (core/recipe_edits.py): exclude the k most sensitive
layers from pruning or keep them in float, or give each layer the largest amount whose loss stays under a
limit. The last stored study of a model comes back when that model is opened again."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from accelstudio.app.control.side_dock import side_tab_dock
from accelstudio.app.bridges.study_thread import StudyThread
from accelstudio.app.control.state import with_override, with_prune_excluded, with_quant_excluded
from accelstudio.app.views.sensitivity_panel import SensitivityPanel
from accelstudio.core.errors import AccelStudioError
from accelstudio.core.progress import ProgressEvent
from accelstudio.core.studies.sensitivity_params import SensitivityParams, quantize_from_text
from accelstudio.core.studies.sensitivity_result import amounts_under, loss_matrix, most_sensitive
from accelstudio.core.studies.sensitivity_store import latest_study


def run_stored_study(params: dict[str, Any], progress, cancel) -> dict[str, Any]:
    """StudyThread's function: the study in a worker process, stored; returns the stored record's result."""
    from accelstudio.core.runs.store import RunStore
    from accelstudio.worker.sensitivity_client import run_sensitivity_study, study_result

    store = RunStore(params.pop("_store"))

    def forward(msg) -> None:
        if getattr(msg, "type", "") == "progress":
            progress(ProgressEvent(msg.stage, msg.fraction, msg.text, dict(msg.partial or {})))

    record = run_sensitivity_study(SensitivityParams.from_dict(params), store, on_message=forward, cancel_event=cancel)
    return study_result(record)


class SensitivityController(QObject):
    """Owns the dock, its menu action and the study thread. `study_shown(result)` after a study is drawn."""

    study_shown = Signal(dict)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.state = window.state
        self.panel = SensitivityPanel()
        self.dock = side_tab_dock(window, "Sensitivity", "sensitivityDock", self.panel)
        self.thread = StudyThread(self)
        self.result: dict[str, Any] | None = None
        self.panel.run_requested.connect(self.start)
        self.panel.cancel_requested.connect(self.thread.cancel)
        self.panel.layer_selected.connect(window.model_view.select_layer)
        self.panel.exclude_requested.connect(self.exclude_top)
        self.panel.amounts_requested.connect(self.set_amounts)
        self.thread.progress.connect(lambda _f, text, _p: self.panel.show_status(text))
        self.thread.finished.connect(self._finished)
        self.thread.cancelled.connect(lambda: self._ended("Cancelled; the layers screened so far are stored."))
        self.thread.failed.connect(lambda message, _trace: self._ended(f"Failed: {message}"))
        self.state.model_changed.connect(lambda _model: self.reload())
        theme = window.theme
        theme.changed.connect(lambda *_: self.panel.apply_colors(theme.colors()))
        self.panel.apply_colors(theme.colors())

    def fill_menu(self, menu) -> None:
        """Add Run > Sensitivity study..."""
        action = menu.addAction("&Sensitivity study…")
        action.setToolTip("Rank the layers by how much pruning or quantizing each one alone costs")
        action.triggered.connect(self.open)

    def open(self) -> None:
        """Show the dock with the recipe's pruning method and quantization mode chosen."""
        if not self.thread.is_running():
            self.panel.choose(self.state.recipe)
        self.dock.show()
        self.dock.raise_()

    # -- running -------------------------------------------------------------------------------------------
    def params(self, form: dict[str, Any]) -> SensitivityParams:
        """The study of the open model that the form asks for (SensitivityError / RecipeError when it cannot)."""
        model = self.state.model
        quantize = None
        if form.get("quantize"):
            quantize = quantize_from_text(form["quantize"])
        data = self.state.data
        return SensitivityParams(model=model.ref, trust=bool(model.trust), data=data.data, calib=data.calib_data,
                                 input_shapes={n: list(d) for n, d in data.input_shapes},
                                 prune_method=form["prune_method"], amounts=tuple(form["amounts"]),
                                 quantize=quantize, samples=int(form["samples"]),
                                 budget_s=float(form["budget_s"])).validate()

    def start(self, form: dict[str, Any]) -> bool:
        """Run the study the form describes on the open model; False (with the reason shown) when it cannot."""
        store = getattr(self.window.runs, "store", None)
        if self.state.model is None or store is None:
            self.panel.show_status("Open a model first." if self.state.model is None else "No run store is open.")
            return False
        try:
            params = self.params(form)
        except AccelStudioError as exc:
            self.panel.show_status(str(exc))
            return False
        if not self.thread.start(run_stored_study, {**params.to_dict(), "_store": str(store.path)}):
            return False
        self.panel.set_running(True)
        self.panel.show_status(f"Screening {self.state.model.ref} in a worker…")
        return True

    def is_running(self) -> bool:
        return self.thread.is_running()

    def _finished(self, result: dict[str, Any]) -> None:
        self.panel.set_running(False)
        model = self.state.model
        if model is None or result.get("params", {}).get("model") != model.ref:  # another model was opened since
            self.panel.show_status(f"Study {result.get('study_id')} of {result.get('params', {}).get('model')} is "
                                   "stored; it shows when that model is open.")
            return
        self.show(result)

    def _ended(self, text: str) -> None:
        self.panel.set_running(False)
        self.panel.show_status(text)

    def shutdown(self) -> None:
        self.thread.shutdown()

    # -- showing -------------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Show the last stored study of the open model (or clear the view when there is none)."""
        store, model = getattr(self.window.runs, "store", None), self.state.model
        if store is None or model is None or self.thread.is_running():
            return
        record = latest_study(store, model.ref)
        if record is None:
            self.result = None
            self.panel.show_study({"rows": []}, [], [], [], "No sensitivity study of this model yet")
            self.panel.show_status("")
            return
        self.show({"study_id": record.study_id, "status": record.status, **record.result})

    def show(self, result: dict[str, Any]) -> None:
        self.result = result
        layers, labels, values = loss_matrix(result)
        samples, metric = result.get("samples", {}), result.get("metric", {})
        title = f"Study {result.get('study_id', '?')}: {metric.get('name', '?')} on {samples.get('n', '?')} samples"
        self.panel.show_study(result, layers, labels, values, title)
        notes = " ".join(result.get("notes", []))
        self.panel.show_status(f"Loss: {metric.get('loss', '')}; screened on {samples.get('n')} samples from "
                               f"{samples.get('split', '?')}. {notes}")
        self.study_shown.emit(result)

    # -- edits ---------------------------------------------------------------------------------------------
    def exclude_top(self, k: int, which: str) -> bool:
        """Exclude the k most sensitive layers from pruning ("prune") or keep them in float ("quant")."""
        if not self.result:
            return False
        names = [n for n in most_sensitive(self.result, k) if n in set(self.state.layer_names())]
        if which == "prune":
            recipe, text = with_prune_excluded(self.state.recipe, names, True), f"Exclude {len(names)} from pruning"
        else:
            recipe, text = with_quant_excluded(self.state.recipe, names, True), f"Keep {len(names)} in float"
        return self.state.edit(f"{text} (most sensitive)", recipe=recipe)

    def set_amounts(self, max_loss: float) -> bool:
        """Each screened layer's own pruning amount: the largest screened amount losing at most `max_loss`
        points; a layer that loses more even at the smallest is excluded from pruning."""
        if not self.result:
            return False
        known = set(self.state.layer_names())
        recipe = self.state.recipe
        for name, amount in amounts_under(self.result, max_loss).items():
            if name not in known:
                continue
            recipe = with_override(recipe, [name], amount) if amount > 0 else with_prune_excluded(recipe, [name], True)
        return self.state.edit(f"Per-layer amounts losing at most {max_loss:g} pts", recipe=recipe)
