"""Where the models sit under this machine's roofs, and how long measuring the roofs takes.

1. The ceilings (core/measure/ceilings.py): measured afresh into a temporary ACCELSTUDIO_HOME (the user's cache
   is never touched), timed against the goal of at most 10 s (torch and onnxruntime already imported, as they
   are in the worker that profiles), then read back from the cache.
2. For each model, ONNX Runtime at batch 1 and the given threads: a per-operator profile (20 calls after 3
   warm-up calls, core/measure/profile.py) and each layer's roofline position and bound class
   (core/measure/roofline.py). Models: the bundled examples in fp32 and static int8 per-channel, onnx's
   light_resnet50.onnx (random input 1x3x224x224) and a small transformer encoder exported here with dynamic
   batch and sequence axes (torch.onnx.export, dynamo=False; measured at sequence 128) in fp32 and dynamic int8.

Writes benchmarks/results/roofline.json. Exits non-zero only on error, never on a missed goal.
Usage: python benchmarks/roofline.py [--threads N] [--calls N] [--no-extra] [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "roofline"
GOAL_CEILINGS_S = 10.0
EXAMPLES = ("digits-mlp", "digits-cnn", "digits-resnet", "digits-vit")
STATIC_INT8 = {"quantize": {"mode": "static-int8", "per_channel": True}}
DYNAMIC_INT8 = {"quantize": {"mode": "dynamic-int8", "per_channel": True}}
SEQ = 128


def measure_roofs(threads: int) -> dict:
    """Fresh measurement (timed) and a cached read of this machine's ceilings."""
    import onnxruntime  # noqa: F401 - loaded already in a worker that profiles: the goal times the measuring
    import torch  # noqa: F401

    from accelstudio.core.measure.ceilings import measure_ceilings

    t0 = time.perf_counter()
    fresh = measure_ceilings(threads, refresh=True)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    cached = measure_ceilings(threads)
    return {"ceilings": fresh.to_dict(), "measure_s": seconds, "cached_read_s": time.perf_counter() - t1,
            "cached": cached.cached}


def light_model(name: str) -> Path | None:
    import onnx

    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / name
    return path if path.is_file() else None


def transformer_onnx(folder: Path) -> Path:
    """A 4-block pre-norm transformer encoder (d_model 256, 4 heads, MLP 1024) with dynamic batch and sequence."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, d: int = 256, heads: int = 4):
            super().__init__()
            self.heads = heads
            self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            b, s, d = x.shape
            q, k, v = self.qkv(self.norm1(x)).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            att = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
            x = x + self.out((att @ v).transpose(1, 2).reshape(b, s, d))
            return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(x))))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(1000, 256)
            self.blocks = nn.Sequential(*[Block() for _ in range(4)])
            self.head = nn.Linear(256, 2)

        def forward(self, ids):
            return self.head(self.blocks(self.embed(ids)).mean(dim=1))

    torch.manual_seed(0)
    model = Encoder().eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, 16, dtype=torch.long),), buf, input_names=["input_ids"],
                          output_names=["logits"], dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                                                 "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    path = folder / "encoder.onnx"
    path.write_bytes(buf.getvalue())
    return path


def position(label: str, handle, inputs: dict, threads: int, calls: int) -> dict:
    """Profile `handle` on ONNX Runtime and place its layers under the roofs."""
    from accelstudio.core.job import RuntimeSettings
    from accelstudio.core.measure.ceilings import measure_ceilings
    from accelstudio.core.measure.profile import profile_model
    from accelstudio.core.measure.roofline import layer_work, roofline

    settings = RuntimeSettings(runtime="onnxruntime", threads=threads)
    profile = profile_model(handle, settings, inputs, calls=calls, warmup=3)
    work = layer_work(handle, {k: tuple(v.shape) for k, v in inputs.items()})
    roof = roofline(profile, work, measure_ceilings(threads))
    layers = [p for p in roof["layers"] if p["flops"] > 0]
    by_time = Counter()
    for p in roof["layers"]:
        by_time[p["bound"]] += p["share"]
    model = roof["model"] or {}
    top = sorted(roof["layers"], key=lambda p: -p["time_ms"])[:3]
    print(f"{label:<34} {profile['total_ms']:8.3f} ms  {model.get('achieved_gflops', 0):7.2f} GFLOP/s at "
          f"{model.get('intensity', 0):6.1f} FLOP/B -> {model.get('bound', '-'):<8}  time share "
          + " ".join(f"{k} {by_time[k]:.0%}" for k in ("compute", "memory", "overhead"))
          + f"  conversions {profile['conversions']['share']:.1%}")
    for p in top:
        print(f"    {p['name'][:40]:<40} {p['precision']:<5} {p['time_ms']:.4f} ms {p['share']:5.1%} "
              f"{p['intensity']:7.1f} FLOP/B {p['achieved_gflops']:8.2f} GFLOP/s  {p['bound']}")
    return {"label": label, "total_ms": profile["total_ms"], "model": model,
            "share_by_bound": {k: by_time[k] for k in ("compute", "memory", "overhead")},
            "layers_by_bound": dict(Counter(p["bound"] for p in layers)),
            "conversions": profile["conversions"], "top": top, "rows": len(profile["layers"])}


def example_inputs(handle) -> dict:
    from accelstudio.core.data.datasets import load_dataset

    data = load_dataset(None, handle)
    return {k: np.ascontiguousarray(v[:1]) for k, v in data.inputs.items()}


def run_models(threads: int, calls: int, examples, extra: bool, folder: Path) -> list[dict]:
    from accelstudio.core.compress.apply import apply_recipe
    from accelstudio.core.model.loading import load_example, open_model
    from accelstudio.core.recipe import Recipe

    out = []
    for name in examples:
        base = load_example(name, backend="onnx")
        inputs = example_inputs(base)
        out.append(position(f"{name} fp32", base, inputs, threads, calls))
        quant = apply_recipe(base, Recipe.from_dict(STATIC_INT8)).handle
        out.append(position(f"{name} static-int8 per-channel", quant, inputs, threads, calls))
    if not extra:
        return out
    resnet = light_model("light_resnet50.onnx")
    if resnet is not None:
        handle = open_model(str(resnet))
        rng = np.random.default_rng(0)
        x = {handle.inputs[0].name: rng.random((1, 3, 224, 224), dtype=np.float32)}
        out.append(position("light_resnet50 fp32", handle, x, threads, max(calls // 4, 3)))
    encoder = open_model(str(transformer_onnx(folder)))
    ids = {"input_ids": np.random.default_rng(0).integers(0, 1000, (1, SEQ), dtype=np.int64)}
    out.append(position(f"encoder (seq {SEQ}) fp32", encoder, ids, threads, calls))
    quant = apply_recipe(encoder, Recipe.from_dict(DYNAMIC_INT8)).handle
    out.append(position(f"encoder (seq {SEQ}) dynamic-int8", quant, ids, threads, calls))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    parser.add_argument("--calls", type=int, default=20, help="profiled calls per model (default 20)")
    parser.add_argument("--no-extra", action="store_true", help="only the bundled examples")
    parser.add_argument("--quick", action="store_true", help="one small example, small roof measurements")
    parser.add_argument("--results-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    info = common.header("roofline: this machine's roofs and where the models sit under them")
    watch = common.LoadWatch()
    with tempfile.TemporaryDirectory(prefix="accelstudio-roofline-") as home:
        previous = os.environ.get("ACCELSTUDIO_HOME")
        os.environ["ACCELSTUDIO_HOME"] = home  # the cache of this run only
        try:
            if args.quick:
                from accelstudio.core.measure import ceilings

                ceilings.GEMM_N, ceilings.COPY_BYTES = 128, 4 * 2**20
            roofs = measure_roofs(args.threads)
            c = roofs["ceilings"]
            from accelstudio.cli.profile_format import ceilings_lines

            print("\n".join(ceilings_lines(c)))
            goal = common.goal("measuring the roofs", roofs["measure_s"], GOAL_CEILINGS_S, " s")
            print(f"second call read the cache: {roofs['cached']} ({roofs['cached_read_s'] * 1000:.1f} ms)")
            examples = EXAMPLES[:1] if args.quick else EXAMPLES
            models = run_models(args.threads, 3 if args.quick else args.calls, examples,
                                extra=not (args.quick or args.no_extra), folder=Path(home))
        finally:
            if previous is None:
                os.environ.pop("ACCELSTUDIO_HOME", None)
            else:
                os.environ["ACCELSTUDIO_HOME"] = previous
    print(watch.summary())
    doc = {"threads": args.threads, "batch": 1, "calls": args.calls, "quick": args.quick,
           "goals": {"ceilings_seconds_at_most": GOAL_CEILINGS_S}, "ceilings_goal": goal, **roofs,
           "models": models, "environment": info["environment"], "machine": info, "load_average": watch.record()}
    common.write_results(NAME, doc, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
