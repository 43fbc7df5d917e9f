"""run_job stores a per-operator profile only when the runtime settings ask for one."""

from __future__ import annotations

from dataclasses import replace

from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.measure import ceilings
from accelstudio.core.measure.roofline import BOUNDS
from accelstudio.core.pipeline import run_job
from accelstudio.core.recipe import QuantSpec, Recipe

FAST = RuntimeSettings(threads=1, warmup=2, repeats=20, time_budget_s=0.5)


def test_pipeline_stores_the_profile_when_asked_and_not_otherwise(monkeypatch):
    monkeypatch.setattr(ceilings, "GEMM_N", 128)  # small roof measurements: same code, less time
    monkeypatch.setattr(ceilings, "COPY_BYTES", 4 * 2**20)
    recipe = Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=True))
    events = []
    asked = run_job(JobSpec("example:digits-mlp", recipe=recipe, runtime=replace(FAST, profile=True),
                            max_eval_samples=64), progress=events.append)
    profile = asked.metrics["profile"]
    assert profile["source"] == "onnxruntime" and profile["calls"] >= 1
    assert {r["name"]: r["precision"] for r in profile["layers"]}["fc1"] == "int8"
    assert asked.spec["runtime"]["profile"] is True
    assert "profile" in [e.stage for e in events]
    roof = asked.metrics["roofline"]
    assert [p["name"] for p in roof["layers"]] == [r["name"] for r in profile["layers"]]
    assert all(p["bound"] in BOUNDS for p in roof["layers"]) and roof["ceilings"]["fp32_gflops"] > 0
    fc1 = next(p for p in roof["layers"] if p["name"] == "fc1")
    assert fc1["flops"] > 0 and fc1["bytes"] > 0 and fc1["precision"] == "int8"
    plain = run_job(JobSpec("example:digits-mlp", recipe=recipe, runtime=FAST, evaluate=False))
    assert not {"profile", "profile_error", "roofline"} & set(plain.metrics)


def test_old_stored_specs_without_the_profile_field_still_load():
    old = RuntimeSettings().to_dict()
    del old["profile"]
    assert RuntimeSettings.from_dict(old).profile is False
    spec = JobSpec("example:digits-mlp").to_dict()
    del spec["runtime"]["profile"]
    assert JobSpec.from_dict(spec).runtime.profile is False
