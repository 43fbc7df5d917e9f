"""How fast does the Graph tab open and expand big graphs, and does the window stay responsive meanwhile?

For each graph (synthetic transformer-shaped ONNX models of about 1k / 10k / 50k nodes, named like torch's
ONNX export '/encoder/layer.7/attention/self/query/MatMul_12' with one small weight per MatMul/LayerNorm, built in
memory with onnx.helper; or the file given with --model), the real GraphView runs offscreen in this process
with the app's TaskRunner, as in the window:

1. open: from the onnx.ModelProto in memory (parsing a file is the loader's part, timed separately) through
   reading the operator graph and its layers, grouping, laying out the collapsed view (both on the background
   thread) to the items drawn. Goals: <= 2 s for 10k nodes, <= 6 s for 50k nodes (stated for 2 cores);
2. expand: double-click equivalent on the biggest collapsed group, three levels down, each until drawn.
   Goal <= 300 ms each. Then, for scale, many groups opened at once (about 2,000 items visible, more than a
   user opens by hand) and drawn: reported, with the longest single turn of the event loop it took;
3. stall: a 10 ms heartbeat QTimer runs through 1 and 2; the longest gap minus 10 ms is the longest time the
   GUI thread could not answer. Goal <= 100 ms.
Also reported: drawn items against nodes (memory follows what is visible, not the graph's size).

Writes benchmarks/results/graph_view.json. Exits non-zero only on an error, never on a missed goal.
Usage: python benchmarks/graph_view.py [--model FILE] [--json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "graph_view"
SIZES = (1_000, 10_000, 50_000)
GOAL_OPEN_S = {10_000: 2.0, 50_000: 6.0}
GOAL_EXPAND_MS, GOAL_STALL_MS = 300.0, 100.0
EXPAND_LEVELS = 3
DEEP_ITEMS = 2000  # items visible in the last, heaviest step
TIMEOUT_S = 120.0


def synthetic_onnx(n_nodes: int):
    """A transformer-shaped onnx.ModelProto of about `n_nodes` nodes (not meant to run: only drawn)."""
    import onnx
    from onnx import TensorProto, helper

    from accelstudio.core.model.graph_extract import synthetic_transformer_graph

    graph = synthetic_transformer_graph(n_nodes)
    preds: list[list[int]] = [[] for _ in range(len(graph))]
    for a, b in zip(graph.src.tolist(), graph.dst.tolist()):
        preds[b].append(a)
    nodes, inits = [], []
    weight = np.ones((2, 2), dtype=np.float32)
    for i, (name, op, layer) in enumerate(zip(graph.names, graph.op_types, graph.layers)):
        inputs = [f"t{j}" for j in preds[i]] or ["x"]
        if layer and op in ("MatMul", "Gemm", "LayerNormalization"):
            inputs = inputs[:1] + [f"{layer}.weight"]
            inits.append(onnx.numpy_helper.from_array(weight, f"{layer}.weight"))
        nodes.append(helper.make_node(op, inputs, [f"t{i}"], name=name))
    g = helper.make_graph(nodes, "synthetic", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                          [helper.make_tensor_value_info(f"t{len(nodes) - 1}", TensorProto.FLOAT, ["N", 2])], inits)
    return helper.make_model(g)


def measure(app, model, label: str) -> dict:
    """Open `model` in a GraphView, then expand EXPAND_LEVELS levels; times and the heartbeat's stalls."""
    from gui_responsiveness import Heartbeat, wait_until

    from types import SimpleNamespace

    from accelstudio.app.bridges.model_loader import TaskRunner
    from accelstudio.app.control.graph_controller import build_tree
    from accelstudio.app.views.graph_view import GraphView

    runner = TaskRunner()
    view = GraphView(submit=runner.submit)
    view.resize(1400, 900)
    view.show()
    app.processEvents()
    beat = Heartbeat(label=lambda: "reading + grouping (background)" if view.tree is None else
                     "first layout (background)" if view.drawing is None else
                     "expanding" if view.is_busy() else "idle")
    beat.start()
    try:
        start = time.perf_counter()
        handle = SimpleNamespace(onnx_model=model, backend="onnx", name=label)
        runner.submit("graph", lambda: build_tree(handle), view.set_graph)  # as GraphController does
        if not wait_until(lambda: view.drawing is not None, TIMEOUT_S):
            raise RuntimeError(f"{label}: the graph was not drawn within {TIMEOUT_S:.0f} s")
        open_s = time.perf_counter() - start
        tree = view.tree
        expands = []
        for _ in range(EXPAND_LEVELS):
            groups = [int(it) - view.n_nodes for it in view.drawing.items if it >= view.n_nodes]
            if not groups:
                break
            gid = max(groups, key=lambda g: tree.groups[g].size())
            start = time.perf_counter()
            view.expand(gid)
            if not wait_until(lambda: not view.is_busy(), TIMEOUT_S):
                raise RuntimeError(f"{label}: expanding {tree.groups[gid].path} did not finish")
            expands.append({"group": tree.groups[gid].path, "nodes_inside": tree.groups[gid].size(),
                            "ms": (time.perf_counter() - start) * 1000, "items_drawn": len(view.boxes),
                            "scene_build_ms": view.last_build_s * 1000, "longest_turn_ms": view.last_turn_s * 1000})
        stalls = beat.stop()
        deep = expand_many(view, tree, DEEP_ITEMS, wait_until, beat)
    finally:
        beat.timer.stop()
        view.close()
        runner.shutdown()
    return {"label": label, "nodes": len(tree.graph), "edges": int(len(tree.graph.src)),
            "groups": len(tree.groups) - 1, "layers": sum(1 for x in tree.graph.layers if x),
            "open_s": open_s, "items_drawn_collapsed": len(view.drawing.items) if not expands
            else None, "expands": expands, "max_expand_ms": max((e["ms"] for e in expands), default=None),
            "deep_expand": deep, "max_stall_ms": stalls.get("max_stall_ms"),
            "top_stalls": stalls.get("top_stalls", [])[:3]}


def expand_many(view, tree, target: int, wait_until, beat) -> dict:
    """Open groups in tree order until about `target` items are visible (set up without the heartbeat: the
    benchmark's own search), then time drawing that state with the heartbeat running."""
    state = view.state
    for gid in range(1, len(tree.groups)):
        state.expanded.add(gid)
        if gid % 25 == 0 and len(state.build().items) >= target:
            break
    beat.start()
    start = time.perf_counter()
    view.relayout()
    if not wait_until(lambda: not view.is_busy(), TIMEOUT_S):
        raise RuntimeError("the deep expand was not drawn")
    drawn_ms = (time.perf_counter() - start) * 1000
    stalls = beat.stop()
    return {"items_drawn": len(view.boxes), "frames": len(view.drawing.frames), "ms": drawn_ms,
            "scene_build_ms": view.last_build_s * 1000, "longest_turn_ms": view.last_turn_s * 1000,
            "max_stall_ms": stalls.get("max_stall_ms")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an ONNX file to open instead of the synthetic graphs")
    parser.add_argument("--json", action="store_true", help="print the JSON document as the last line")
    parser.add_argument("--quick", action="store_true", help="only the 1k graph")
    parser.add_argument("--results-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    info = common.header("Graph tab: open, expand, stall (offscreen, this process)")
    watch = common.LoadWatch()
    results = []
    if args.model is not None:
        import onnx

        start = time.perf_counter()
        model = onnx.load(str(args.model))
        parse_s = time.perf_counter() - start
        result = measure(app, model, args.model.name)
        result["parse_s"] = parse_s
        results.append(result)
    else:
        for size in SIZES[:1] if args.quick else SIZES:
            results.append(measure(app, synthetic_onnx(size), f"synthetic {size:,}"))
            watch.sample()
    goals = {}
    for r in results:
        print(f"{r['label']}: {r['nodes']:,} nodes, {r['edges']:,} edges, {r['groups']:,} groups, "
              f"{r['layers']:,} layers" + (f"; file parsed in {r['parse_s']:.2f} s" if "parse_s" in r else ""))
        target = next((t for n, t in sorted(GOAL_OPEN_S.items()) if r["nodes"] <= n * 1.05), max(GOAL_OPEN_S.values()))
        goals[r["label"]] = {
            "open": common.goal("  open collapsed to drawn", r["open_s"], target, " s", fmt=".2f"),
            "expand": common.goal("  slowest expand to drawn", r["max_expand_ms"], GOAL_EXPAND_MS, " ms", fmt=".0f"),
            "stall": common.goal("  longest GUI stall", r["max_stall_ms"], GOAL_STALL_MS, " ms", fmt=".0f")}
        for e in r["expands"]:
            print(f"    expand {e['group'][:60]} ({e['nodes_inside']:,} nodes inside): {e['ms']:.0f} ms, "
                  f"{e['items_drawn']} items drawn (scene {e['scene_build_ms']:.0f} ms)")
        d = r["deep_expand"]
        print(f"    many groups open, {d['items_drawn']:,} items + {d['frames']} frames: drawn in {d['ms']:.0f} ms "
              f"(scene {d['scene_build_ms']:.0f} ms in turns of at most {d['longest_turn_ms']:.0f} ms; longest stall "
              f"{d['max_stall_ms'] or 0:.0f} ms)")
    print(watch.summary())
    doc = {"quick": bool(args.quick), "model": str(args.model) if args.model else None,
           "goals": {"open_s_at_most": GOAL_OPEN_S, "expand_ms_at_most": GOAL_EXPAND_MS,
                     "stall_ms_at_most": GOAL_STALL_MS},
           "graphs": results, "result": goals, "qt_platform": os.environ.get("QT_QPA_PLATFORM"),
           "machine": info, "load_average": watch.record()}
    common.write_results(NAME, doc, args.results_dir)
    if args.json:
        print(json.dumps(doc, default=common._json_default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
