"""A job that times the unchanged model interleaved with its own (JobSpec.baseline_latency) and evaluates one
half of the data (JobSpec.eval_split)."""

from __future__ import annotations

from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.pipeline import run_job
from accelstudio.core.recipe import QuantSpec, Recipe

FAST = RuntimeSettings(threads=1, warmup=2, repeats=40, time_budget_s=0.2)


def test_interleaved_speedup_and_test_half():
    spec = JobSpec("example:digits-mlp", Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=True)), FAST,
                   eval_split="test", baseline_latency=True, keep_artifact=False)
    m = run_job(spec).metrics
    inter = m["interleaved"]
    assert inter["lo"] <= inter["ratio"] <= inter["hi"] and inter["n"] >= 20
    assert inter["baseline_p50_ms"] > 0 and inter["run_p50_ms"] > 0
    assert m["data"]["eval"]["split"] == "test" and m["n_eval"] == 180  # the other half of 360


def test_an_unchanged_model_is_its_own_baseline_unless_the_reference_settings_differ():
    same = run_job(JobSpec("example:digits-mlp", runtime=FAST, baseline_latency=True, keep_artifact=False))
    assert same.metrics["interleaved"]["ratio"] == 1.0 and same.metrics["interleaved"]["n"] == 0
    other = run_job(JobSpec("example:digits-mlp", runtime=FAST, baseline_latency=True, keep_artifact=False,
                            baseline_runtime={"graph_opt_level": "disabled"}))
    assert other.metrics["interleaved"]["n"] >= 20  # measured against the reference settings
    assert "interleaved" not in run_job(JobSpec("example:digits-mlp", runtime=FAST, keep_artifact=False)).metrics
