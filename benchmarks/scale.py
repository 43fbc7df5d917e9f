"""Can the product open and inspect a large model? A ~1 GB ONNX model with external data, opened with load_model
and summarized with inspect_model in a child process.

The model (8 Gemm layers alternating 4096x8192 and 8192x4096 float32 weights, random values, ~1.07 GB) is built
with onnx.helper in a temporary folder; its weights are written layer by layer straight into one external data
file (the layout onnx.save_model(save_as_external_data=True) produces) so building it never holds the whole model
in memory. Then:

* a baseline child process only imports what the open needs (accelstudio.core.model.loading and .inspect, hence torch
  and onnx);
* a second child process imports the same, then times load_model + inspect_model.

Peak memory is the child's peak RSS from resource.getrusage(RUSAGE_CHILDREN).ru_maxrss read after each child
(the maximum over finished children, so the baseline runs first), minus the baseline's. Goals: open + inspect
<= 10 s; peak memory above the baseline <= 2x the model's size on disk.

Writes benchmarks/results/scale.json. Skips (exit 0, with a message) when the temp folder has < 3 GB free.
Exits non-zero only on an error, never on a missed goal.
Usage: python benchmarks/scale.py [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "scale"
GOAL_SECONDS, GOAL_MEMORY_RATIO = 10.0, 2.0
MIN_FREE_BYTES = 3 * 1024**3
LAYERS = 8
FULL_DIMS, QUICK_DIMS = (4096, 8192), (1024, 1536)  # ~1.07 GB and ~50 MB of float32 weights
DATA_FILE = "model.onnx.data"
IMPORTS = "import accelstudio.core.model.loading, accelstudio.core.model.inspect"


def build_model(folder: Path, dims: tuple[int, int], layers: int = LAYERS, seed: int = 0) -> Path:
    """Write model.onnx (+ model.onnx.data) into `folder`: a chain of `layers` Gemm nodes with ReLU between
    them, weights alternating (a, b) and (b, a), input x of shape (N, a). Returns the .onnx path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    a, b = dims
    rng = np.random.default_rng(seed)
    nodes, inits, offset = [], [], 0
    prev = "x"
    with open(folder / DATA_FILE, "wb") as data:
        for i in range(layers):
            k, n = (a, b) if i % 2 == 0 else (b, a)
            w = rng.standard_normal((k, n), dtype=np.float32)
            w *= np.float32(1.0 / np.sqrt(k))
            raw = w.tobytes()
            data.write(raw)
            tensor = TensorProto(name=f"fc{i}.weight", data_type=TensorProto.FLOAT, dims=[k, n])
            for key, value in (("location", DATA_FILE), ("offset", str(offset)), ("length", str(len(raw)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            tensor.data_location = TensorProto.EXTERNAL
            offset += len(raw)
            del raw, w
            bias = numpy_helper.from_array(np.zeros(n, np.float32), f"fc{i}.bias")
            inits += [tensor, bias]
            out = f"h{i}" if i < layers - 1 else "logits"
            nodes.append(helper.make_node("Gemm", [prev, f"fc{i}.weight", f"fc{i}.bias"],
                                          [f"g{i}" if i < layers - 1 else out], name=f"fc{i}"))
            if i < layers - 1:
                nodes.append(helper.make_node("Relu", [f"g{i}"], [out], name=f"relu{i}"))
            prev = out
    last = a if layers % 2 == 0 else b
    graph = helper.make_graph(nodes, "scale-gemm-chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", a])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", last])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="accelstudio-bench")
    path = folder / "model.onnx"
    onnx.save_model(model, str(path))
    return path


def child_open(path: Path) -> int:
    """In the child: import, then time load_model + inspect_model; print one JSON line."""
    t0 = time.perf_counter()
    from accelstudio.core.model.inspect import inspect_model
    from accelstudio.core.model.loading import load_model

    t1 = time.perf_counter()
    handle = load_model(path)
    t2 = time.perf_counter()
    summary = inspect_model(handle)
    t3 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "inspect_s": t3 - t2, "open_inspect_s": t3 - t1,
                      "layers": len(summary.layers), "params": summary.total_params,
                      "total_bytes": summary.total_bytes, "file_bytes": summary.file_bytes,
                      "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    return 0


def child_baseline() -> int:
    """In the baseline child: the same imports, nothing else."""
    t0 = time.perf_counter()
    exec(IMPORTS)  # noqa: S102 - a fixed string of imports
    print(json.dumps({"import_s": time.perf_counter() - t0,
                      "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    return 0


def children_maxrss_bytes() -> int:
    """Peak RSS of the largest finished child so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def measure(path: Path) -> dict:
    """Run the baseline child, then the open+inspect child; their figures and the peak-RSS difference."""
    script = str(Path(__file__).resolve())
    before = children_maxrss_bytes()
    base = common.last_json_line(common.run_python([script, "--child-baseline"]).stdout)
    base_peak = children_maxrss_bytes()
    start = time.perf_counter()
    opened = common.last_json_line(common.run_python([script, "--child-open", str(path)]).stdout)
    child_wall = time.perf_counter() - start
    open_peak = children_maxrss_bytes()
    return {"baseline": base, "open": opened, "child_wall_s": child_wall,
            "children_maxrss_before_bytes": before, "baseline_peak_rss_bytes": base_peak,
            "open_peak_rss_bytes": open_peak, "peak_above_baseline_bytes": open_peak - base_peak,
            "rusage_children_valid": before <= base_peak}


def folder_bytes(folder: Path) -> int:
    """Bytes of the files in `folder` (the .onnx plus its external data)."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~50 MB model instead of ~1 GB")
    parser.add_argument("--keep", action="store_true", help="keep the temporary model folder (prints its path)")
    parser.add_argument("--results-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-open", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_open:
        return child_open(args.child_open)
    if args.child_baseline:
        return child_baseline()
    return run(args)


def run(args) -> int:
    """Check the disk, build, measure, print, write JSON, clean up."""
    info = common.header("opening and inspecting a large ONNX model with external data")
    watch = common.LoadWatch()
    dims = QUICK_DIMS if args.quick else FULL_DIMS
    expected = LAYERS * dims[0] * dims[1] * 4
    tmp_root = Path(tempfile.gettempdir())
    free = shutil.disk_usage(tmp_root).free
    need = MIN_FREE_BYTES if not args.quick else 3 * expected
    doc = {"quick": bool(args.quick), "layers": LAYERS, "dims": list(dims), "machine": info,
           "goals": {"open_inspect_s_at_most": GOAL_SECONDS, "peak_memory_ratio_at_most": GOAL_MEMORY_RATIO},
           "temp_folder": str(tmp_root), "free_bytes": free}
    if free < need:
        print(f"skipped: {tmp_root} has {free / 1e9:.1f} GB free; this benchmark needs {need / 1e9:.1f} GB")
        common.write_results(NAME, {**doc, "skipped": True, "load_average": watch.record()}, args.results_dir)
        return 0
    folder = Path(tempfile.mkdtemp(prefix="accelstudio-scale-"))
    try:
        t0 = time.perf_counter()
        path = build_model(folder, dims)
        build_s = time.perf_counter() - t0
        size = folder_bytes(folder)
        print(f"built {path.name} + {DATA_FILE}: {size / 1e9:.3f} GB in {build_s:.1f} s ({folder})")
        m = measure(path)
        watch.sample()
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    o = m["open"]
    print(f"load_model {o['load_s']:.2f} s + inspect_model {o['inspect_s']:.2f} s ({o['layers']} layers, "
          f"{o['params'] / 1e6:.0f} M params; imports {o['import_s']:.1f} s, not counted)")
    g_time = common.goal("open + inspect wall time", o["open_inspect_s"], GOAL_SECONDS, " s", fmt=".2f")
    ratio = m["peak_above_baseline_bytes"] / size
    print(f"peak RSS: open child {m['open_peak_rss_bytes'] / 1e9:.2f} GB, import-only child "
          f"{m['baseline_peak_rss_bytes'] / 1e9:.2f} GB, difference {m['peak_above_baseline_bytes'] / 1e9:.2f} GB "
          f"for a {size / 1e9:.2f} GB model")
    g_mem = common.goal("peak memory above the import baseline / model size", ratio, GOAL_MEMORY_RATIO, "x",
                        fmt=".2f")
    print(watch.summary())
    doc.update(model_bytes=size, build_s=build_s, measurement=m, peak_memory_ratio=ratio,
               result={"open_inspect_s": g_time, "peak_memory_ratio": g_mem}, load_average=watch.record(),
               skipped=False)
    common.write_results(NAME, doc, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
