"""The typed run report: baseline matching (like-for-like only), speed and accuracy verdicts with intervals, the
quality headline for unlabeled and embedding models, the broken verdict, data badge and warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelstudio.core.runs.baseline import baseline_spec, find_baseline, mismatches, model_key
from accelstudio.core.measure.evaluate import describe_outputs
from accelstudio.core.job import RunResult, RuntimeSettings
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe
from accelstudio.core.runs.report import build_report
from accelstudio.core.runs.store import RunStore
from accelstudio.core.units import format_bytes

EXAMPLES = "/site/accelstudio/resources/examples/digits-cnn"
PRUNE = Recipe(prune=PruneSpec(amount=0.5, method="l1-structured"))
STATIC = Recipe(quantize=QuantSpec(mode="static-int8"))


def run(recipe=Recipe(), p50=1.0, run_id=None, model="example:digits-cnn", path=f"{EXAMPLES}/model.onnx",
        sha="a" * 64, key=True, runtime="onnxruntime", threads=2, batch=1, device="cpu", metrics=None,
        environment=None, seed=0, status="done") -> RunResult:
    spec = {"model": model, "recipe": recipe.to_dict(),
            "runtime": RuntimeSettings(runtime=runtime, threads=threads, batch=batch, device=device).to_dict()}
    ident = {"path": path, "sha256": sha, "name": model.removeprefix("example:")}
    if key:
        ident["key"] = model if model.startswith("example:") else f"sha256:{sha}"
    lat = list(np.random.default_rng(seed).normal(p50, p50 * 0.05, 200))
    return RunResult(status, spec=spec, metrics={"p50_ms": p50, **(metrics or {})}, latencies_ms=lat,
                     model_identity=ident, run_id=run_id, environment=environment or {})


def test_pruned_torch_form_run_finds_the_onnx_form_baseline_of_the_same_example():
    base = run(run_id=1, sha="1" * 64)  # model.onnx
    pruned = run(PRUNE, 0.6, run_id=2, path=f"{EXAMPLES}/model.safetensors", sha="2" * 64, seed=1)
    assert find_baseline([pruned, base], pruned) is base
    report = build_report(pruned, base)
    assert report.baseline.run_id == 1 and report.speedup.verdict == "faster"
    assert "vs baseline run 1 (onnxruntime on cpu, 2 threads, batch 1)" in report.verdict_line()


def test_old_runs_without_identity_key_still_match_by_example_reference():
    base = run(run_id=1, sha="1" * 64, key=False)
    pruned = run(PRUNE, 0.6, run_id=2, path=f"{EXAMPLES}/model.safetensors", sha="2" * 64, key=False)
    assert model_key(base) == model_key(pruned) == "example:digits-cnn"
    assert find_baseline([base], pruned) is base
    user = run(model="/home/u/net.onnx", path="/home/u/net.onnx", sha="3" * 64, key=False)
    assert model_key(user) == "sha256:" + "3" * 64


@pytest.mark.parametrize("change", [{"runtime": "torch"}, {"threads": 1}, {"batch": 8}, {"device": "cuda"},
                                    {"model": "example:digits-mlp"}])
def test_a_baseline_of_other_settings_is_refused(change):
    pruned = run(PRUNE, 0.5, run_id=5)
    wrong = run(run_id=4, **change)
    assert find_baseline([wrong], pruned) is None
    report = build_report(pruned, wrong)
    assert report.speedup is None and report.baseline is None
    assert "not a like-for-like baseline" in report.baseline_note


def test_a_baseline_from_another_cpu_is_refused_and_other_versions_are_warned():
    here = {"threads": 2, "cpu": {"model": "AMD EPYC 9454"}, "versions": {"onnxruntime": "1.32.0"}}
    elsewhere = {**here, "cpu": {"model": "Intel Xeon"}}
    pruned = run(PRUNE, 0.5, run_id=3, environment=here)
    assert find_baseline([run(run_id=1, environment=elsewhere)], pruned) is None
    older = run(run_id=2, environment={**here, "versions": {"onnxruntime": "1.31.0"}})
    assert find_baseline([older], pruned) is older
    assert any("other library versions (onnxruntime)" in w for w in build_report(pruned, older).warnings)


def test_threads_compare_as_resolved_and_the_nearest_baseline_is_used():
    env = {"threads": 2}
    all_cores = run(run_id=1, threads=0, environment=env)
    other = run(run_id=2, threads=4, environment={"threads": 4})
    newest = run(run_id=9, threads=2, metrics={"execution": {"threads": 2, "device": "cpu"}})
    pruned = run(PRUNE, 0.5, run_id=3, threads=2)
    assert mismatches(pruned, all_cores) == []
    assert find_baseline([newest, other, all_cores], pruned) is all_cores
    assert "threads" in mismatches(pruned, other)


def test_run_on_another_device_than_requested_is_no_baseline_and_warns():
    fell_back = run(run_id=1, device="cuda", metrics={"execution": {"device": "cpu", "providers": ["CPUExecutionProvider"],
                                                                  "threads": 2}})
    asked = run(PRUNE, 0.5, run_id=2, device="cuda")
    assert find_baseline([fell_back], asked) is None
    assert any("asked for cuda but ran on cpu" in w for w in build_report(fell_back).warnings)


def test_baseline_spec_repeats_the_settings_with_the_identity_recipe():
    pruned = run(PRUNE, 0.5, threads=0, batch=4, environment={"threads": 2})
    spec = baseline_spec(pruned)
    assert spec.recipe.is_identity and spec.model == "example:digits-cnn"
    assert (spec.runtime.runtime, spec.runtime.threads, spec.runtime.batch) == ("onnxruntime", 2, 4)


def test_identical_timings_are_within_noise_and_a_halving_is_faster():
    base = run(run_id=1, seed=1)
    same = run(PRUNE, 1.0, run_id=2, seed=2)
    s = build_report(same, base).speedup
    assert s.verdict == "within noise" and s.interval.contains(1.0)
    fast = build_report(run(PRUNE, 0.5, run_id=3, seed=3), base).speedup
    assert fast.verdict == "faster" and 1.8 < fast.interval.lo < fast.ratio < fast.interval.hi < 2.2
    slow = build_report(run(PRUNE, 2.0, run_id=4, seed=4), base).speedup
    assert slow.verdict == "slower" and "2.0" in slow.text() and "slower" in slow.text()


def _acc_metrics(lost, gained, n=360, base_correct=356):
    acc = (base_correct - lost + gained) / n
    return {"accuracy": acc, "baseline_accuracy": base_correct / n, "n_eval": n,
            "accuracy_delta": (gained - lost) / n * 100, "accuracy_delta_ci": [-2.0, -0.1],  # an old bootstrap CI
            "delta_significant": True, "discordant": {"baseline_only": lost, "new_only": gained}}


def test_four_lost_none_gained_is_within_noise_with_the_exact_p_shown():
    report = build_report(run(STATIC, metrics=_acc_metrics(4, 0)))
    change = report.quality.change
    assert (change.lost, change.gained) == (4, 0) and change.p_value == pytest.approx(0.125)
    assert change.verdict == "within noise" and change.interval.contains(0.0)
    assert "4 lost, 0 gained, exact p = 0.125: within noise" in change.text()
    drop = build_report(run(STATIC, metrics=_acc_metrics(12, 1))).quality.change
    assert drop.verdict == "real drop" and drop.interval.hi < 0 and drop.p_value < 0.05


def test_unlabeled_class_scores_report_agreement_as_fidelity():
    metrics = {"fidelity": {"top1_agreement": 0.97, "cosine": 0.998, "max_abs_error": 0.1, "kl_divergence": 0.001,
                            "n_compared": 200, "output_kind": "class_scores", "output_reason": "10 values"},
               "n_eval": 200, "data": {"eval": {"source": "synthesized", "n": 200, "synthesized": True,
                                                "labeled": False}, "input_shapes": {"x": [1, 8]}}}
    q = build_report(run(STATIC, metrics=metrics)).quality
    assert q.headline == "agreement" and q.label.startswith("Fidelity") and q.change is None
    report = build_report(run(STATIC, metrics=metrics))
    assert report.data.badge == "random inputs: fidelity only" and report.data.shapes_text() == "x=1x8"


def test_embedding_output_leads_with_cosine_and_collapse_is_broken():
    metrics = {"fidelity": {"top1_agreement": 0.0, "cosine": 0.39, "max_abs_error": 3.2, "kl_divergence": 0.5,
                            "n_compared": 64, "output_kind": "embedding"}, "n_eval": 64}
    report = build_report(run(STATIC, metrics=metrics))
    assert report.quality.headline == "cosine" and report.quality.headline_text() == "Fidelity: cosine 0.3900"
    assert report.broken is not None and "cosine 0.390" in report.broken.text()
    assert "static int8" in report.broken.cause and "dynamic int8" in report.broken.cause
    assert build_report(run(metrics={**metrics, "fidelity": {**metrics["fidelity"], "cosine": 0.995}})).broken is None


def test_nonfinite_outputs_are_broken():
    metrics = {"fidelity": {"top1_agreement": 1.0, "cosine": 1.0, "n_compared": 90}, "nonfinite_outputs": 10,
               "n_eval": 100}
    broken = build_report(run(Recipe(quantize=QuantSpec(mode="fp16")), metrics=metrics)).broken
    assert "10 of 100 outputs hold NaN or Inf" in broken.text() and "fp16" in broken.cause


def test_a_baseline_with_nan_outputs_blames_the_inputs_not_a_compression():
    metrics = {"fidelity": {"top1_agreement": None, "cosine": None, "n_compared": 0}, "nonfinite_outputs": 64,
               "n_eval": 64}
    broken = build_report(run(metrics=metrics)).broken
    assert broken is not None and "unchanged model itself" in broken.cause


def test_busy_machine_is_warned():
    report = build_report(run(metrics={"machine": {"busy": True, "other_cpu_pct": 55.0, "load_1min": 3.0}}))
    assert any("busy machine: other processes used 55% of the CPU" in w for w in report.warnings)


def test_describe_outputs_tells_embeddings_from_class_scores():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 10))
    assert describe_outputs(logits, labeled=False)["output_kind"] == "class_scores"
    unit = logits / np.linalg.norm(logits, axis=1, keepdims=True)
    assert describe_outputs(unit, labeled=False)["output_kind"] == "embedding"
    assert describe_outputs(rng.normal(size=(5, 16, 64)), labeled=False)["output_kind"] == "embedding"
    assert describe_outputs(rng.normal(size=(5, 1)), labeled=False)["output_kind"] == "embedding"
    assert describe_outputs(rng.normal(size=(5, 1000, 1, 1)), labeled=False)["output_kind"] == "class_scores"
    assert describe_outputs(rng.normal(size=(5, 16, 64)), labeled=True)["output_kind"] == "class_scores"


def test_report_reads_stored_runs_and_is_json_safe(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    base_id = store.add_run(run(run_id=None))
    pruned_id = store.add_run(run(PRUNE, 0.5, metrics=_acc_metrics(4, 0), seed=5))
    runs = store.list_runs()
    pruned = store.get_run(pruned_id)
    base = find_baseline(runs, pruned)
    assert base.run_id == base_id
    doc = build_report(pruned, base).to_dict()
    assert doc["baseline"]["run_id"] == base_id and doc["speedup"]["verdict"] == "faster"
    assert doc["quality"]["change"]["verdict"] == "within noise"
    import json
    json.dumps(doc, allow_nan=False)


def test_one_byte_formatter_in_decimal_units():
    assert format_bytes(None) == "-" and format_bytes(999) == "999 B"
    assert format_bytes(1536) == "1.54 kB" and format_bytes(4_000_000) == "4.00 MB"
    assert format_bytes(3e9) == "3.00 GB"


def test_pipeline_identity_is_the_example_name_whatever_form_and_the_hash_for_user_files(tmp_path):
    import shutil

    from accelstudio.core.model.examples import get_example
    from accelstudio.core.job import JobSpec
    from accelstudio.core.model.loading import file_sha256
    from accelstudio.core.pipeline import _load

    _, _, onnx_form = _load(JobSpec("example:digits-cnn"))
    _, _, torch_form = _load(JobSpec("example:digits-cnn", recipe=PRUNE))
    assert onnx_form["path"].endswith("model.onnx") and torch_form["path"].endswith("model.safetensors")
    assert onnx_form["key"] == torch_form["key"] == "example:digits-cnn"
    user = Path(shutil.copy(get_example("digits-mlp").onnx_path, tmp_path / "mine.onnx"))
    _, _, ident = _load(JobSpec(str(user)))
    assert ident["key"] == f"sha256:{file_sha256(user)}" and ident["sha256"] == file_sha256(user)


def test_an_unlabeled_user_model_run_reads_as_fidelity_with_the_random_inputs_badge(tmp_path):
    from accelstudio.core.job import JobSpec
    from accelstudio.core.pipeline import run_job
    from tests import factories as fx

    path = fx.onnx_mlp(tmp_path)
    settings = RuntimeSettings(threads=1, warmup=2, repeats=20, time_budget_s=1.0)
    result = run_job(JobSpec(str(path), runtime=settings, keep_artifact=False))
    assert result.metrics["fidelity"]["output_kind"] == "class_scores"
    report = build_report(result)
    assert report.quality.headline == "agreement" and report.quality.label.startswith("Fidelity")
    assert report.data.badge == "random inputs: fidelity only" and report.broken is None


def _graph_ending_in(op: str, out_name: str):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", 8])
    attrs = {"axis": -1} if op in ("Softmax", "LayerNormalization") else {}
    inputs = ["x", "g"] if op == "LayerNormalization" else ["x"]
    init = [helper.make_tensor("g", TensorProto.FLOAT, [8], [1.0] * 8)] if op == "LayerNormalization" else []
    node = helper.make_node(op, inputs, [out_name], **attrs)
    return helper.make_model(helper.make_graph([node], "g", [x], [y], init))


def test_output_hint_reads_the_graph_and_names_speak_first():
    from accelstudio.core.measure.evaluate import output_hint

    assert output_hint(_graph_ending_in("LayerNormalization", "out"))[0] == "embedding"
    assert output_hint(_graph_ending_in("Softmax", "out"))[0] == "class_scores"
    assert output_hint(_graph_ending_in("Identity", "sentence_embedding"))[0] == "embedding"
    assert output_hint(_graph_ending_in("LayerNormalization", "logits"))[0] == "class_scores"
    assert output_hint(_graph_ending_in("Identity", "out")) is None
    # A LayerNorm-ended embedding of 128 values reads as class scores from the values alone; the hint fixes it.
    rows = np.random.default_rng(0).normal(size=(40, 128))
    assert describe_outputs(rows, labeled=False)["output_kind"] == "class_scores"
    hint = output_hint(_graph_ending_in("LayerNormalization", "out"))
    assert describe_outputs(rows, labeled=False, hint=hint)["output_kind"] == "embedding"
    assert describe_outputs(rows, labeled=True, hint=hint)["output_kind"] == "class_scores"


def test_module_output_hint_reads_the_last_layer():
    import torch

    from accelstudio.core.measure.evaluate import module_output_hint

    assert module_output_hint(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8)))[0] == "embedding"
    assert module_output_hint(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Softmax(-1)))[0] == "class_scores"
    assert module_output_hint(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())) is None
