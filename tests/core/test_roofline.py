"""This machine's ceilings (measured, cached) and the roofline classification of layers."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from accelstudio.core.measure import ceilings as ceilings_mod
from accelstudio.core.measure.ceilings import Ceilings, measure_ceilings
from accelstudio.core.measure.roofline import BOUNDS, LayerWork, classify, layer_work, roofline
from accelstudio.core.model.loading import open_model
from accelstudio.core.paths import data_dir

# a made-up machine: 100 GFLOP/s fp32, 400 GOP/s int8, 10 GB/s: ridge at 10 FLOP/byte (fp32), 40 (int8)
MACHINE = Ceilings(cpu="test CPU", key="k", threads=1, fp32_gflops=100.0, bandwidth_gbs=10.0, int8_gops=400.0)


@pytest.fixture
def small_ceilings(monkeypatch):
    """Small problem sizes: the same code paths in a fraction of the time (speed is benchmarks/roofline.py's)."""
    monkeypatch.setattr(ceilings_mod, "GEMM_N", 128)
    monkeypatch.setattr(ceilings_mod, "COPY_BYTES", 4 * 2**20)
    monkeypatch.setattr(ceilings_mod, "REPS", 2)


def test_classify_follows_the_stated_rule():
    # 1 GFLOP over 1 MB = 1000 FLOP/byte: compute side; 10 ms = 100 GFLOP/s achieved, at the roof
    assert classify(10.0, 1e9, 1e6, 100.0, 10.0) == "compute"
    # 1 MFLOP over 1 MB = 1 FLOP/byte: memory side (roof 10 GFLOP/s); 0.2 ms = 5 GFLOP/s achieved
    assert classify(0.2, 1e6, 1e6, 100.0, 10.0) == "memory"
    assert classify(0.015, 1e9, 1e6, 100.0, 10.0) == "overhead"  # under 20 us, whatever it computes
    assert classify(0.1, 1e5, 1e3, 100.0, 10.0) == "overhead"  # 1 GFLOP/s under a 100 GFLOP/s roof, 100 us
    assert classify(400.0, 1e9, 1e6, 100.0, 10.0) == "compute"  # as far below, but long: not overhead
    assert classify(0.5, 0, 0, 100.0, 10.0) == "memory"  # no FLOPs counted: moves data
    assert classify(0.05, 5e5, 5e4, 100.0, 10.0) == "compute"  # exactly at the ridge (10 FLOP/byte), 10% of it


def test_roofline_uses_the_roof_of_the_precision_that_ran():
    profile = {"total_ms": 2.0, "layers": [
        {"name": "a", "time_ms": 1.0, "share": 0.5, "precision": "fp32"},
        {"name": "b", "time_ms": 0.5, "share": 0.25, "precision": "int8"},
        {"name": "relu", "time_ms": 0.5, "share": 0.25, "precision": "fp32"}]}
    # intensity 20 FLOP/byte: above the fp32 ridge (10), below the int8 ridge (40)
    work = {"a": LayerWork("a", 20_000_000, 1_000_000, 0), "b": LayerWork("b", 20_000_000, 500_000, 500_000),
            "relu": LayerWork("relu", 0, 0, 1000)}
    r = roofline(profile, work, MACHINE)
    rows = {p["name"]: p for p in r["layers"]}
    assert rows["a"]["bound"] == "compute" and rows["a"]["intensity"] == pytest.approx(20.0)
    assert rows["b"]["bytes"] == 1_000_000  # int8 activations: 1 byte each
    assert rows["b"]["bound"] == "memory" and rows["b"]["roof_gflops"] == pytest.approx(200.0)
    assert rows["a"]["achieved_gflops"] == pytest.approx(20.0)
    assert rows["relu"]["flops"] == 0 and rows["relu"]["bound"] == "memory"
    model = r["model"]
    assert model["flops"] == 40_000_000 and model["bound"] in BOUNDS
    assert model["precision"] in ("fp32", "int8")  # a tie here; the precision doing most FLOPs sets the roof
    more_int8 = dict(work, b=LayerWork("b", 30_000_000, 500_000, 500_000))
    assert roofline(profile, more_int8, MACHINE)["model"]["precision"] == "int8"
    assert r["ceilings"]["fp32_gflops"] == 100.0 and "ridge" in r["rule"]


def test_ceilings_are_positive_and_cached_per_machine(small_ceilings):
    first = measure_ceilings(threads=1)
    assert not first.cached and first.threads == 1
    assert first.fp32_gflops > 0 and first.bandwidth_gbs > 0 and first.sources["fp32"]
    assert all(v is None or v > 0 for v in (first.int8_gops, first.bf16_gflops, first.fp16_gflops))
    assert (data_dir() / "ceilings.json").is_file()
    second = measure_ceilings(threads=1)
    assert second.cached and second.fp32_gflops == first.fp32_gflops and second.key == first.key
    assert measure_ceilings(threads=2).key != first.key  # another thread count is another entry
    assert not measure_ceilings(threads=1, refresh=True).cached


def test_layer_work_counts_at_the_run_shapes_of_a_dynamic_axis_model(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    path = tmp_path / "mlp.onnx"
    buf = io.BytesIO()
    torch.onnx.export(model, (torch.zeros(1, 16),), buf, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
    path.write_bytes(buf.getvalue())
    handle = open_model(str(path))
    one, eight = layer_work(handle, {"x": (1, 16)}), layer_work(handle, {"x": (8, 16)})
    first = next(iter(one))
    assert eight[first].flops == 8 * one[first].flops > 0
    assert eight[first].activation_elements == 8 * one[first].activation_elements == 8 * (16 + 32)
    assert one[first].weight_bytes == (16 * 32 + 32) * 4


def test_layer_work_of_a_torch_model_sees_its_activations():
    handle = open_model("example:digits-mlp", backend="torch")
    work = layer_work(handle, {handle.inputs[0].name: (2, *handle.inputs[0].shape[1:])})
    assert all(w.activation_elements > 0 and w.flops > 0 for w in work.values())
