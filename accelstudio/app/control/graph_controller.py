"""Keeps the Graph tab in step with the window: builds the open model's graph in the background, keeps its
selection and the layer table's in step both ways, answers overlay requests from the state, the selected runs
and the stored sensitivity studies, and turns its context-menu edits into undoable recipe edits."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from accelstudio.app.control.state import with_override
from accelstudio.core.errors import AccelStudioError
from accelstudio.core.model.graph_groups import GroupTree
from accelstudio.core.graphs import overlays as ov
from accelstudio.core.graphs.runs import best_study, diff_of

OVERLAYS_FOLLOWING_RECIPE = ("sparsity", "precision")
OVERLAYS_FOLLOWING_RUNS = ("time", "diff")


BIG_GRAPH = 20_000  # nodes; above this the build's objects are frozen as it goes (see build_tree)


def build_tree(handle) -> GroupTree:
    """The grouped graph of a loaded model (background thread).

    The app collects garbage on the GUI thread, on a timer (model_loader.collect_garbage_on_gui_thread), so a
    collection there walks every object the build made since the last one: tens of milliseconds per hundred
    thousand objects, a visible stall on a big graph. The graph's objects live as long as the model is open and
    form no reference cycles, so on a big graph they are moved out of the collector's generations (gc.freeze)
    at each progress step, and the collections stay short. Reference counting still frees them."""
    import gc

    from accelstudio.core.graphs.source import op_graph_for_handle

    def checkpoint(_done: int, total: int) -> None:
        if total >= BIG_GRAPH:
            gc.freeze()

    graph = op_graph_for_handle(handle, progress=checkpoint)
    tree = GroupTree(graph, progress=checkpoint if len(graph) >= BIG_GRAPH else None)
    if len(graph) >= BIG_GRAPH:  # small graphs are cheap to walk; freezing would also keep whatever else is alive
        gc.freeze()
    return tree


class GraphController(QObject):
    """Wires a GraphView to the state (models), the model view's table, the results and the run store."""

    status = Signal(str)

    def __init__(self, view, models, model_view, results, runs, parent: QObject | None = None):
        super().__init__(parent)
        self.view, self.models, self.model_view, self.results, self.runs = view, models, model_view, results, runs
        self.state = models.state
        self.view._submit = models.runner.submit
        self._tree_for = None
        self.state.model_changed.connect(self._model_changed)
        self.state.recipe_changed.connect(lambda _r: self._refresh_overlay(OVERLAYS_FOLLOWING_RECIPE))
        self.state.prediction_changed.connect(lambda _r: self._refresh_overlay(OVERLAYS_FOLLOWING_RECIPE))
        self.results.selection_changed.connect(lambda _ids: self._refresh_overlay(OVERLAYS_FOLLOWING_RUNS))
        self.view.layer_selected.connect(self.model_view.select_layer)
        self.model_view.current_layer_changed.connect(self.view.show_layer)
        self.view.layer_action.connect(self.models.layer_action)
        self.view.amount_chosen.connect(self.set_amount)
        self.view.rerun_requested.connect(self.runs.start_run)
        self.view.overlay_requested.connect(self.show_overlay)
        self.view.drawn.connect(self._drawn)

    # -- the graph -------------------------------------------------------------------------------------------
    def _model_changed(self, loaded) -> None:
        self.view.set_graph(None)
        self.view.show_message(f"Reading the graph of {loaded.title}…")
        self._tree_for = loaded

        def done(tree: GroupTree) -> None:
            if self._tree_for is loaded:
                self.view.set_graph(tree)

        def failed(exc: BaseException, _trace: str) -> None:
            if self._tree_for is loaded:
                self.view.show_message(str(exc))

        self.models.runner.submit("graph", lambda: build_tree(loaded.handle), done, failed)

    def _drawn(self) -> None:
        current = self.model_view.current_layer()
        if current:
            self.view.show_layer(current)

    # -- recipe edits ---------------------------------------------------------------------------------------
    def set_amount(self, names: list[str], amount: float) -> None:
        """Give `names` their own pruning amount (an undoable edit, as from the table)."""
        label = names[0] if len(names) == 1 else f"{len(names)} layers"
        try:
            self.state.edit(f"Override {amount:.0%}: {label}", recipe=with_override(self.state.recipe, names, amount))
        except AccelStudioError as exc:  # the recipe rules refuse it: say why, keep the old recipe
            self.status.emit(str(exc))

    # -- overlays ---------------------------------------------------------------------------------------------
    def _refresh_overlay(self, kinds: tuple[str, ...]) -> None:
        if self.view.tree is not None and self.view.current_overlay_key() in kinds:
            self.show_overlay(self.view.current_overlay_key())

    def show_overlay(self, key: str) -> None:
        """Compute overlay `key` in the background and colour the graph with it."""
        tree, loaded = self.view.tree, self.state.model
        if tree is None or loaded is None:
            return
        compute = self._overlay_task(key, tree, loaded)

        def done(overlay) -> None:
            if self.view.tree is tree and self.view.current_overlay_key() == key:
                self.view.set_overlay(overlay)

        self.models.runner.submit("graph-overlay", compute, done,
                                  lambda exc, _t: self.status.emit(f"Could not colour the graph: {exc}"))

    def _overlay_task(self, key: str, tree: GroupTree, loaded):
        graph, summary = tree.graph, loaded.summary
        recipe, prediction = self.state.recipe, self.state.prediction
        backend = "onnx" if self.state.runtime.runtime == "onnxruntime" else "torch"
        selected = self.results.selected_runs()
        run = selected[0] if selected else next(iter(self.results.runs()), None)
        if key == "op":
            return lambda: ov.op_overlay(graph)
        if key == "params":
            return lambda: ov.params_overlay(graph, summary)
        if key == "sparsity":
            return lambda: ov.sparsity_overlay(graph, summary, prediction if not recipe.is_identity else None)
        if key == "precision":
            return lambda: ov.precision_overlay(graph, summary, recipe, backend)
        if key == "time":
            return lambda: ov.time_overlay(graph, run)
        if key == "sensitivity":
            store = self.runs.store
            names = {layer.name for layer in summary.layers}
            return lambda: ov.sensitivity_overlay(graph, best_study(store, names))
        if key == "diff":
            return lambda: diff_of(graph, summary, selected)
        raise ValueError(f"unknown overlay {key!r}")
