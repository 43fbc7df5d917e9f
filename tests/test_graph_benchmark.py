"""benchmarks/graph_view.py still runs end to end (--quick: the 1k-node graph) and writes the JSON it promises,
with the open / expand / stall figures and their goals (not the figures themselves: they depend on the machine)."""

from __future__ import annotations

import json

from tests.test_benchmarks_smoke import bench


def test_graph_view_benchmark_quick(tmp_path, qapp):
    out = tmp_path / "results"
    assert bench("graph_view").main(["--quick", "--results-dir", str(out)]) == 0
    doc = json.loads((out / "graph_view.json").read_text())
    graph = doc["graphs"][0]
    assert graph["nodes"] > 900 and graph["groups"] > 0 and graph["layers"] > 0
    assert graph["open_s"] > 0 and len(graph["expands"]) == 3 and graph["max_stall_ms"] is not None
    assert doc["goals"]["expand_ms_at_most"] == 300 and doc["load_average"]["cores"] >= 1
    assert set(doc["result"][graph["label"]]) == {"open", "expand", "stall"}
