"""Every recipe/format/runtime pair is either refused before running with one sentence, or accepted; a
subset of both kinds is run to show the answer is real."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest
import torch

from accelstudio.core.model.examples import get_example
from accelstudio.core.compress.feasibility import (
    MODEL_FORMATS, RecipeNotPossible, check_job_feasible, sniff_model_format,
)
from accelstudio.core.job import RUNTIMES, JobSpec, RuntimeSettings
from accelstudio.core.model.handle import InputSpec
from accelstudio.core.pipeline import run_job
from accelstudio.core.recipe import PRUNE_METHODS, QUANT_MODES, PruneSpec, Recipe

FAST = RuntimeSettings(threads=1, warmup=1, repeats=5, time_budget_s=0.2)
BACKEND = {"onnx": "onnx"}


def _recipe(quant: str, prune: str | None, recovery: bool) -> Recipe:
    d: dict = {"quantize": {"mode": quant, "bits": 4 if quant == "sim" else 8, "calib_samples": 32}}
    if prune:
        d["prune"] = {"amount": 0.5, "method": prune}
    if recovery:
        d["recovery"] = {"method": "finetune", "epochs": 1, "max_samples": 64}
    return Recipe.from_dict(d)


ALL_PAIRS = list(itertools.product(MODEL_FORMATS, RUNTIMES, ("cpu", "cuda"), QUANT_MODES,
                                   (None,) + PRUNE_METHODS, (False, True)))


def test_every_pair_is_refused_with_one_sentence_or_accepted():
    refused = 0
    for fmt, runtime, device, quant, prune, recovery in ALL_PAIRS:
        try:
            check_job_feasible(fmt, BACKEND.get(fmt, "torch"), runtime, device, _recipe(quant, prune, recovery),
                               model_name="m")
        except RecipeNotPossible as exc:
            refused += 1
            text = str(exc)
            assert text.startswith("m: ") and "\n" not in text and text.count(". ") == 0, text
            assert ";" in text, f"no advice in: {text}"  # why; what to do
    assert 0 < refused < len(ALL_PAIRS)


@pytest.mark.parametrize("fmt,runtime,device,recipe,expected", [
    ("onnx", "torch", "cpu", {}, "runs only on ONNX Runtime"),
    ("onnx", "onnxruntime", "cpu", {"prune": {"amount": 0.5, "method": "l1-structured"}}, "structured pruning"),
    ("onnx", "onnxruntime", "cpu", {"recovery": {"method": "distill"}}, "cannot train an ONNX graph"),
    ("torchscript", "torch", "cpu", {"quantize": {"mode": "static-int8"}}, "cannot trace a TorchScript"),
    ("torchscript", "torchscript", "cpu", {"quantize": {"mode": "fp16"}}, "TorchScript file in torch"),
    ("export", "onnxruntime", "cpu", {"prune": {"amount": 0.5, "method": "l1-structured"}}, "frozen graph"),
    ("safetensors", "onnxruntime", "cpu", {"quantize": {"mode": "bf16"}}, "no bf16 kernels"),
    ("torchscript", "torch", "cpu", {"quantize": {"mode": "dynamic-int8"}}, "would run unchanged"),
    ("export", "torchscript", "cpu", {"quantize": {"mode": "weight-int4"}}, "would run unchanged"),
    ("safetensors", "torch", "cuda", {"quantize": {"mode": "static-int8"}}, "run only on the CPU"),
    ("pickle", "torchscript", "cuda", {"quantize": {"mode": "dynamic-int8"}}, "run only on the CPU"),
])
def test_known_impossible_pairs_say_why(fmt, runtime, device, recipe, expected):
    with pytest.raises(RecipeNotPossible, match=expected):
        check_job_feasible(fmt, BACKEND.get(fmt, "torch"), runtime, device, Recipe.from_dict(recipe))


def test_fixed_batch_rules_out_training_in_other_batches():
    fixed = (InputSpec("x", (1, 1, 8, 8)),)
    with pytest.raises(RecipeNotPossible, match="batch is fixed at 1"):
        check_job_feasible("export", "torch", "torch", "cpu", Recipe.from_dict({"recovery": {"method": "finetune"}}),
                           fixed)
    check_job_feasible("export", "torch", "torch", "cpu", Recipe.from_dict(
        {"recovery": {"method": "finetune", "batch": 1}}), fixed)
    check_job_feasible("export", "torch", "torch", "cpu", Recipe.from_dict({"recovery": {"method": "finetune"}}),
                       (InputSpec("x", (None, 1, 8, 8)),))


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """digits-cnn in every format, its test data and its training split."""
    from accelstudio.core.model.loading import load_example

    folder = tmp_path_factory.mktemp("formats")
    info = get_example("digits-cnn")
    module = load_example("digits-cnn").module.eval()
    x = torch.rand(2, 1, 8, 8)
    shutil.copy(info.onnx_path, folder / "m.onnx")
    shutil.copy(info.weights_path, folder / "m.safetensors")
    torch.jit.trace(module, x).save(str(folder / "m_ts.pt"))
    dims = {"x": {0: torch.export.Dim("N", min=1, max=4096)}}
    torch.export.save(torch.export.export(module, (x,), dynamic_shapes=dims), str(folder / "m.pt2"))
    torch.save(module, folder / "m_pickle.pt")
    data = np.load(info.data_path)
    np.savez(folder / "test.npz", x=data["x"][:80], labels=data["labels"][:80])
    split = np.load(info.folder.parent.parent / "data" / "digits_split.npz")
    np.savez(folder / "train.npz", x=(split["train_images"][:200] / 16.0).reshape(-1, 1, 8, 8).astype(np.float32),
             labels=split["train_labels"][:200])
    return folder


FILES = {"onnx": "m.onnx", "safetensors": "m.safetensors", "torchscript": "m_ts.pt", "export": "m.pt2",
         "pickle": "m_pickle.pt"}


def test_formats_are_told_apart_without_loading(formats):
    for fmt, name in FILES.items():
        assert sniff_model_format(formats / name) == fmt
    assert sniff_model_format("example:digits-cnn") == "example"


def _run(formats, fmt, runtime, recipe):
    return run_job(JobSpec(model=str(formats / FILES[fmt]), recipe=Recipe.from_dict(recipe),
                           runtime=RuntimeSettings(**{**FAST.to_dict(), "runtime": runtime}),
                           data=str(formats / "test.npz"), trust=True, max_eval_samples=60, keep_artifact=False,
                           train_data=str(formats / "train.npz") if "recovery" in recipe else None))


@pytest.mark.parametrize("fmt,runtime,recipe", [
    ("onnx", "onnxruntime", {"quantize": {"mode": "static-int8", "calib_samples": 16}}),
    ("safetensors", "onnxruntime", {"prune": {"amount": 0.3, "method": "l1-structured"},
                                    "recovery": {"method": "finetune", "epochs": 1}}),
    ("torchscript", "onnxruntime", {"quantize": {"mode": "dynamic-int8"}}),
    ("torchscript", "torchscript", {"prune": {"amount": 0.5, "method": "2:4"}}),
    ("export", "torch", {"quantize": {"mode": "static-int8", "calib_samples": 16}}),
    ("pickle", "torch", {"quantize": {"mode": "fp16"}}),
])
def test_accepted_pairs_really_run(formats, fmt, runtime, recipe):
    check_job_feasible(fmt, BACKEND.get(fmt, "torch"), runtime, "cpu", Recipe.from_dict(recipe))
    result = _run(formats, fmt, runtime, recipe)
    assert result.status == "done" and result.metrics["accuracy"] > 0.5


@pytest.mark.parametrize("fmt,runtime,recipe", [
    ("torchscript", "torch", {"quantize": {"mode": "static-int8", "calib_samples": 16}}),
    ("export", "torch", {"prune": {"amount": 0.5, "method": "l1-structured"}}),
    ("torchscript", "torch", {"quantize": {"mode": "weight-int8"}}),
    ("onnx", "onnxruntime", {"recovery": {"method": "finetune", "epochs": 1}}),
])
def test_refused_pairs_are_refused_by_the_pipeline_before_any_work(formats, fmt, runtime, recipe):
    events = []
    with pytest.raises(RecipeNotPossible):
        run_job(JobSpec(model=str(formats / FILES[fmt]), recipe=Recipe.from_dict(recipe),
                        runtime=RuntimeSettings(**{**FAST.to_dict(), "runtime": runtime}), trust=True,
                        train_data=str(formats / "train.npz")), progress=events.append)
    assert {e.stage for e in events} <= {"load"}


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_structured_pruning_of_an_attention_model_is_refused_before_the_run(backend):
    from accelstudio.core.compress.feasibility import check_model_feasible
    from accelstudio.core.model.loading import open_model

    handle = open_model("example:digits-vit", backend=backend)
    structured = Recipe(prune=PruneSpec(amount=0.3, method="l1-structured"))
    with pytest.raises(RecipeNotPossible, match="structured pruning of an attention model"):
        check_model_feasible(handle, structured)
    check_model_feasible(handle, Recipe(prune=PruneSpec(amount=0.3, method="l1-unstructured")))
    check_model_feasible(open_model("example:digits-cnn", backend=backend), structured)
