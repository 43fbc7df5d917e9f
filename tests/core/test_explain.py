""""Why is it (not) faster?": each cause is named on a case built to show it, and not on a case without it.

Real runs (digits-cnn / digits-mlp through run_job with a per-operator profile) wherever this machine can show
the cause; constructed records only where it cannot: a CPU without VNNI or without native fp16 (this machine has
both), a CUDA request that ran on the CPU (no GPU here), and a quiet machine (the test machine is shared, so a real
run may always be "busy")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from accelstudio.core.job import JobSpec, RunResult, RuntimeSettings
from accelstudio.core.pipeline import run_job
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe
from accelstudio.core.runs.explain import explain_run

FAST = dict(warmup=2, repeats=30, time_budget_s=0.5, profile=True)
QUIET = {"load_1min": 0.1, "other_cpu_pct": 0.0, "busy": False}


def _run(recipe=Recipe(), run_id=1, model="example:digits-cnn", **rt) -> RunResult:
    settings = RuntimeSettings(**{"threads": 1, **FAST, **rt})
    res = run_job(JobSpec(model=model, recipe=recipe, runtime=settings, evaluate=False, keep_artifact=False))
    return replace(res, run_id=run_id)


def _quiet(run: RunResult) -> RunResult:
    return replace(run, metrics={**run.metrics, "machine": QUIET})


@pytest.fixture(scope="module")
def cnn():
    base = _run()
    return {"base": base,
            "dynamic": _run(Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=True)), 2),
            "static": _run(Recipe(quantize=QuantSpec(mode="static-int8", per_channel=True)), 3),
            "pruned": _run(Recipe(prune=PruneSpec(amount=0.6, method="l1-unstructured")), 4)}


@pytest.fixture(scope="module")
def cnn_unoptimized():
    return {"base": _run(graph_opt_level="disabled"),
            "static": _run(Recipe(quantize=QuantSpec(mode="static-int8", per_channel=True)), 2,
                           graph_opt_level="disabled")}


def codes(run, base, **kw):
    return explain_run(run, base, **kw).cause_codes()


def test_dynamic_int8_leaves_convolutions_in_fp32(cnn):
    exp = explain_run(cnn["dynamic"], cnn["base"])
    assert "dynamic-int8-convs-fp32" in exp.cause_codes()
    cause = next(c for c in exp.causes if c.code == "dynamic-int8-convs-fp32")
    assert "profile" in cause.source and "static-int8" in cause.advice
    conv_rows = [r for r in exp.rows if r.op_type == "Conv"]
    assert conv_rows and all(r.precision == "fp32" for r in conv_rows)
    assert exp.bound is not None and exp.bound.float_share > 0.2 and exp.bound.max_speedup < 5
    assert "at most" in exp.summary and exp.speedup["lo"] <= exp.speedup["ratio"] <= exp.speedup["hi"]
    assert "dynamic-int8-convs-fp32" not in codes(cnn["static"], cnn["base"])  # QLinearConv there
    assert "convinteger-slow" not in exp.cause_codes()  # no ConvInteger in this graph


def test_unfused_qdq_is_named_when_graph_optimization_is_off(cnn, cnn_unoptimized):
    exp = explain_run(cnn_unoptimized["static"], cnn_unoptimized["base"])
    cause = next(c for c in exp.causes if c.code == "qdq-not-fused")
    assert "disabled" in cause.evidence and "execution" in cause.source
    assert exp.conversions and exp.conversions["count"] > 2
    assert "qdq-not-fused" not in codes(cnn["static"], cnn["base"])  # fused into QLinearConv / QGemm


def test_unstructured_zeros_named_only_when_not_faster(cnn):
    exp = explain_run(cnn["pruned"], cnn["base"])
    assert ("sparsity-no-speedup" in exp.cause_codes()) == (exp.speedup["verdict"] != "faster")
    assert "sparsity-no-speedup" not in codes(cnn["dynamic"], cnn["base"])


def test_small_model_call_overhead_named_and_not_for_a_large_batch(cnn):
    assert "call-overhead" in codes(cnn["dynamic"], cnn["base"])  # digits-cnn at batch 1: ~0.02 ms a call
    big = _run(batch=256, repeats=10)
    big_q = _run(Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=True)), 2, batch=256, repeats=10)
    assert big.metrics["p50_ms"] > 0.1
    assert "call-overhead" not in codes(big_q, big)


def test_per_tensor_int8_without_vnni_from_the_cpu_record(cnn):
    per_tensor = _run(Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=False)), 5, model="example:digits-mlp")
    base = _run(run_id=6, model="example:digits-mlp")
    no_vnni = {"model_name": "AVX2-only CPU", "avx2": True, "avx512_vnni": False, "avx_vnni": False, "amx": False,
               "int8_dot": False}
    cause = next(c for c in explain_run(per_tensor, base, features=no_vnni).causes
                 if c.code == "per-tensor-int8-no-vnni")
    assert "AVX2-only CPU" in cause.evidence and "per-channel" in cause.advice
    recorded = per_tensor.environment["cpu"]["features"]
    assert ("per-tensor-int8-no-vnni" in codes(per_tensor, base)) == (not recorded["int8_dot"])
    assert "per-tensor-int8-no-vnni" not in codes(cnn["dynamic"], cnn["base"], features=no_vnni)  # per-channel


def test_fp16_without_native_support(cnn):
    fp16 = replace(cnn["dynamic"], spec={**cnn["dynamic"].spec, "recipe": Recipe(
        quantize=QuantSpec(mode="fp16")).to_dict()})  # constructed: this CPU has avx512_fp16
    assert "fp16-not-native" in codes(fp16, cnn["base"], features={"fp16_native": False, "model_name": "x"})
    assert "fp16-not-native" not in codes(cnn["dynamic"], cnn["base"], features={"fp16_native": False})


def test_thread_oversubscription_and_busy_machine(cnn):
    cores = cnn["base"].environment["cpu"]["available_cores"]
    over = _run(Recipe(quantize=QuantSpec(mode="dynamic-int8", per_channel=True)), 7, threads=cores * 2)
    over_base = _run(run_id=8, threads=cores * 2)
    cause = next(c for c in explain_run(_quiet(over), _quiet(over_base)).causes if c.code == "threads-oversubscribed")
    assert f"{cores * 2} intra-op" in cause.evidence and "execution" in cause.source
    quiet = codes(_quiet(cnn["dynamic"]), _quiet(cnn["base"]))
    assert "threads-oversubscribed" not in quiet
    spinning = replace(cnn["dynamic"], metrics={**cnn["dynamic"].metrics, "execution": {
        **cnn["dynamic"].metrics["execution"], "spinning": True}, "machine": {**QUIET, "other_cpu_pct": 60.0}})
    cause = next(c for c in explain_run(spinning, _quiet(cnn["base"])).causes if c.code == "threads-oversubscribed")
    assert "spinning" in cause.evidence


def test_device_fallback_from_the_execution_record(cnn):
    # constructed: no GPU here; a CUDA request whose execution record says cpu
    spec = {**cnn["dynamic"].spec, "runtime": {**cnn["dynamic"].spec["runtime"], "device": "cuda"}}
    fell_back = replace(cnn["dynamic"], spec=spec)
    cause = next(c for c in explain_run(fell_back, None).causes if c.code == "device-fallback")
    assert "cuda" in cause.evidence and "cpu" in cause.evidence
    refused = RunResult("failed", reason="m: onnxruntime was asked to run on cuda but ran on cpu", spec=spec,
                        metrics={"error_type": "DeviceMismatchError"})
    assert "device-fallback" in codes(refused, None)
    assert "device-fallback" not in codes(cnn["dynamic"], cnn["base"])


def test_convinteger_slower_than_fp32_conv(tmp_path):
    """A user's graph with ConvInteger (dynamic quantization of Conv) profiled against its fp32 form."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from accelstudio.core.model.loading import load_example, open_model
    from accelstudio.core.measure.profile import profile_model
    import onnx
    import numpy as np

    fp32 = tmp_path / "cnn.onnx"
    onnx.save(load_example("digits-cnn", backend="onnx").onnx_model, str(fp32))
    q = tmp_path / "cnn-convinteger.onnx"
    quantize_dynamic(str(fp32), str(q), op_types_to_quantize=["Conv"], weight_type=QuantType.QUInt8)
    settings = RuntimeSettings(threads=1)
    x = {"x": np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)}
    runs = []
    for i, path in enumerate((fp32, q)):
        handle = open_model(str(path))
        prof = profile_model(handle, settings, x, calls=20)
        runs.append(RunResult("done", spec={"model": "m", "recipe": Recipe().to_dict() if i == 0 else Recipe(
            quantize=QuantSpec(mode="dynamic-int8")).to_dict(), "runtime": settings.to_dict()},
            metrics={"profile": prof, "p50_ms": prof["total_ms"]}, model_identity={"key": "m"}, run_id=i + 1))
    exp = explain_run(runs[1], runs[0])
    conv = [r for r in exp.rows if r.op_type == "ConvInteger"]
    assert conv, [(r.name, r.op_type) for r in exp.rows]
    before, after = sum(r.before_ms for r in conv), sum(r.after_ms for r in conv)
    assert after >= 0.9 * before  # measured here: ConvInteger about 3.5x slower than fp32 Conv on digits-cnn
    cause = next(c for c in exp.causes if c.code == "convinteger-slow")
    assert "ConvInteger" in cause.evidence and "static" in cause.advice


def test_unequal_interference_from_layers_that_did_the_same_work(cnn):
    # constructed: the baseline's profile with every fp32 layer three times slower, as a run measured while
    # another job held the cores would be; the real pair did the same fp32 work at about the same speed
    base = cnn["base"]
    prof = base.metrics["profile"]
    slowed = {**prof, "layers": [{**r, "time_ms": r["time_ms"] * 3} for r in prof["layers"]]}
    disturbed = replace(base, metrics={**base.metrics, "profile": slowed})
    cause = next(c for c in explain_run(cnn["dynamic"], disturbed).causes if c.code == "unequal-interference")
    assert "x faster in this run than in the baseline" in cause.evidence
    # within the threshold it is not named; built from one run, since two real runs on a shared machine can
    # themselves be disturbed unequally (which is what this cause reports)
    within = {**prof, "layers": [{**r, "time_ms": r["time_ms"] * 1.2} for r in prof["layers"]]}
    assert "unequal-interference" not in codes(replace(base, metrics={**base.metrics, "profile": within}), base)
    assert "unequal-interference" in codes(disturbed, base)
