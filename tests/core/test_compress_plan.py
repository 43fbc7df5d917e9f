"""One compression plan for the job pipeline and `accelstudio apply`: which steps run in which form, and
running them gives one result (pruned in torch, exported, quantized with ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from accelstudio.core.compress.plan import plan_compression, run_plan
from accelstudio.core.errors import CompressionError
from accelstudio.core.model.loading import open_model
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe, RecoverySpec

PRUNE = Recipe(prune=PruneSpec(amount=0.3, method="l1-structured"))
PRUNE_QUANT = Recipe(prune=PruneSpec(amount=0.3, method="l1-structured"), quantize=QuantSpec("dynamic-int8"))


@pytest.mark.parametrize("recipe, source, target, steps", [
    (Recipe(), "onnx", "onnx", ""),
    (Recipe(), "torch", "onnx", "export to ONNX"),
    (PRUNE, "torch", "torch", "prune in torch"),
    (PRUNE_QUANT, "torch", "torch", "prune and quantize in torch"),
    (PRUNE_QUANT, "onnx", "onnx", "prune and quantize in ONNX"),
    (PRUNE_QUANT, "torch", "onnx", "prune in torch, export to ONNX, quantize in ONNX"),
    (Recipe(quantize=QuantSpec("dynamic-int8")), "torch", "onnx", "export to ONNX, quantize in ONNX"),
    (Recipe(prune=PruneSpec(amount=0.3), recovery=RecoverySpec(method="finetune", epochs=1)), "torch", "onnx",
     "prune and recover in torch, export to ONNX"),
])
def test_steps_by_form(recipe, source, target, steps):
    plan = plan_compression(recipe, source, target)
    assert ", ".join(s.describe() for s in plan.steps) == steps
    assert plan.describe() == (steps or "no change")
    parts = [s.recipe for s in plan.steps if s.action == "compress"]
    if plan.splits and recipe.quantize.active:
        assert parts[-1] == Recipe(quantize=recipe.quantize) and not any(p.quantize.active for p in parts[:-1])


def test_an_onnx_model_cannot_become_torch():
    with pytest.raises(CompressionError, match="cannot be turned into a torch module"):
        plan_compression(PRUNE, "onnx", "torch")


def test_a_split_plan_prunes_in_torch_and_quantizes_with_onnx_runtime():
    handle = open_model("example:digits-cnn", backend="torch")
    plan = plan_compression(PRUNE_QUANT, "torch", "onnx")
    result = run_plan(plan, handle)
    assert result.handle.backend == "onnx" and result.recipe == PRUNE_QUANT
    assert Recipe.from_dict(result.handle.metadata["recipe"]) == PRUNE_QUANT
    assert sum(r.params_after for r in result.layers) < sum(r.params_before for r in result.layers)
    ops = {node.op_type for node in result.handle.onnx_model.graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeLinear" in ops or "ConvInteger" in ops, ops
    session = ort.InferenceSession(result.handle.onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    assert session.run(None, {session.get_inputs()[0].name: x})[0].shape == (3, 10)


def test_a_plan_refuses_a_model_in_another_form():
    with pytest.raises(CompressionError, match="starts from the torch form"):
        run_plan(plan_compression(PRUNE, "torch", "torch"), open_model("example:digits-mlp", backend="onnx"))
