"""Compiled forms side by side: does compiling pay, and after how many calls?

For each model and backend, core/measure/compile_step.py builds the eager and the compiled form in a child process
of its own (so one runtime's threads never disturb another's), times them interleaved for the time budget, and
reports compile time, medians, the speed-up with its 95% interval, calls to pay the compile time back (with the
range the interval allows), graph breaks and whether the compile did nothing measurable. A backend is marked
recommended only when its whole interval is above 1.0.

Backends: inductor (torch.compile) and torchscript against torch eager on the torch examples; ort-levels (basic,
extended, all against disabled) on the ONNX forms, onnx's light_resnet50 and a small transformer exported here
with dynamic axes; openvino where the provider is installed (otherwise recorded as unavailable).

Writes benchmarks/results/compile.json. Exits non-zero only on error, never on a figure.
Usage: python benchmarks/compile.py [--quick] [--threads N] [--budget S] [--results-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "compile"
CHILD = r"""
import json, sys, os
import numpy as np
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.measure.compile_step import compile_metrics
from accelstudio.core.model.loading import load_example, open_model
model, backend, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
budget, shapes = float(sys.argv[4]), json.loads(sys.argv[5])
import torch
torch.set_num_threads(threads)
if model.startswith("example:"):
    name, fmt = model[8:].split("@")
    handle = load_example(name, backend=fmt)
else:
    handle = open_model(model)
rng = np.random.default_rng(0)
inputs = {}
for spec in handle.inputs:
    shape = shapes.get(spec.name) or spec.concrete_shape(1)
    dtype = np.dtype(spec.dtype)
    inputs[spec.name] = (rng.integers(0, 100, size=shape).astype(dtype) if dtype.kind in "iu"
                         else rng.random(shape).astype(dtype))
settings = RuntimeSettings(threads=threads, compile=backend, time_budget_s=budget, repeats=100000, warmup=3)
print(json.dumps(compile_metrics(handle, settings, inputs)))
"""


def light_model(name: str) -> str | None:
    """A model from onnx's backend test data, when installed."""
    import onnx

    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"{name}.onnx"
    return str(path) if path.is_file() else None


def export_transformer(folder: Path) -> str:
    """A small transformer encoder (2 layers, d=128, 4 heads) exported with dynamic batch and sequence axes."""
    import torch

    layer = torch.nn.TransformerEncoderLayer(128, 4, 256, batch_first=True, dropout=0.0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 128), torch.nn.TransformerEncoder(layer, 2,
                                                                                       enable_nested_tensor=False))
    model.eval()
    path = folder / "transformer.onnx"
    torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder kernel has no ONNX export
    with torch.no_grad():
        torch.onnx.export(model, (torch.randn(1, 64, 32),), str(path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}}, opset_version=17,
                          dynamo=False)
    return str(path)


def cases(quick: bool, folder: Path) -> list[tuple[str, str, str, dict]]:
    """(label, model reference, backend, input shapes)."""
    if quick:
        return [("digits-cnn (torch)", "example:digits-cnn@torch", "torchscript", {}),
                ("digits-cnn (onnx)", "example:digits-cnn@onnx", "ort-levels", {})]
    out = []
    for name in ("digits-cnn", "digits-resnet", "digits-vit"):
        for backend in ("inductor", "torchscript"):
            out.append((f"{name} (torch)", f"example:{name}@torch", backend, {}))
        out.append((f"{name} (onnx)", f"example:{name}@onnx", "ort-levels", {}))
    out.append(("digits-resnet (onnx)", "example:digits-resnet@onnx", "openvino", {}))
    resnet = light_model("light_resnet50")
    if resnet:
        out.append(("light_resnet50", resnet, "ort-levels", {}))
    out.append(("transformer (exported, seq 64)", export_transformer(folder), "ort-levels", {"x": [1, 64, 32]}))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="two small cases (a smoke test)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--budget", type=float, default=4.0, help="seconds of interleaved timing per form pair")
    p.add_argument("--results-dir", type=Path, default=None)
    args = p.parse_args(argv)
    info = common.header("Compiled forms against eager")
    budget = 0.5 if args.quick else args.budget
    results = []
    with tempfile.TemporaryDirectory(prefix="accelstudio-compile-") as tmp:
        for label, model, backend, shapes in cases(args.quick, Path(tmp)):
            proc = common.run_python(["-c", CHILD, model, backend, str(args.threads), str(budget), json.dumps(shapes)],
                                     env={"ACCELSTUDIO_HOME": tmp}, timeout=1200)
            doc = common.last_json_line(proc.stdout)
            print(f"{label}: " + doc["summary"])
            results.append({"model": label, **doc})
    common.write_results(NAME, {"machine": info, "load_average": {"values": common.load_average(),
                                                                  "cores": common.cores()},
                                "threads": args.threads, "budget_s": budget, "results": results}, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
