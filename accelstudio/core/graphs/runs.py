"""The stored runs and studies the Graph tab's overlays read: a run's optimized graph, the sensitivity study
that fits the open model, and the diff of two runs (plain functions; the controller calls them off the GUI
thread)."""

from __future__ import annotations

from pathlib import Path

from accelstudio.core.graphs import overlays as ov


def artifact_node_names(run) -> set[str] | None:
    """Node names of a run's optimized ONNX model when it is still kept, else None."""
    path = Path(run.artifact) if getattr(run, "artifact", None) else None
    if path is None or path.suffix.lower() != ".onnx" or not path.is_file():
        return None
    import onnx

    from accelstudio.core.model.graph_extract import op_graph_from_onnx

    try:
        return set(op_graph_from_onnx(onnx.load(str(path), load_external_data=False), with_layers=False).names)
    except Exception:  # a damaged artifact only loses the removed/added part of the diff
        return None


def best_study(store, names: set[str]):
    """The newest finished (or stopped) sensitivity study that covers the most of `names`."""
    if store is None:
        return None
    best, best_overlap = None, 0
    for study in store.list_studies(kind="sensitivity"):
        if study.status not in ("done", "stopped") or not study.result:
            continue
        overlap = len(names & {layer.get("name") for layer in study.result.get("layers", [])})
        if overlap > best_overlap:
            best, best_overlap = study, overlap
    return best


def diff_of(graph, summary, selected: list):
    """The diff overlay of the first two selected runs (the first is the reference), or a note asking for two."""
    if len(selected) < 2:
        return ov.Overlay("diff", "Diff", categories=tuple([ov.UNCHANGED] * len(graph)),
                          note="select two runs in the Results table (Ctrl+click); the first is the reference")
    run_a, run_b = selected[0], selected[1]
    names_a, names_b = artifact_node_names(run_a), artifact_node_names(run_b)
    if names_a is None and ov.run_recipe(run_a)[0].is_identity:  # the reference is the model as opened
        names_a = set(graph.names)
    return ov.diff_overlay(graph, summary, run_a, run_b, nodes_b=names_b, nodes_a=names_a)
