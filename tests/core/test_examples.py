"""The bundled examples are real trained models: their stored test accuracy reproduces in torch and ONNX."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file

from accelstudio.core.model.architectures import get_architecture
from accelstudio.core.model.examples import get_example, list_examples


EXAMPLES = ["digits-mlp", "digits-cnn", "digits-resnet", "digits-vit"]


def test_bundled_examples_with_data():
    names = [e.name for e in list_examples()]
    assert names == EXAMPLES
    for e in list_examples():
        for path in (e.weights_path, e.onnx_path, e.data_path, e.calib_path):
            assert path.is_file(), path
        assert 0.9 <= e.test_accuracy <= 1.0
        assert e.n_test == 360
        assert e.weights_path.stat().st_size < 4 << 20 and e.onnx_path.stat().st_size < 4 << 20


@pytest.mark.parametrize("name", EXAMPLES)
def test_stored_accuracy_reproduces(name):
    info = get_example(name)
    data = np.load(info.data_path)
    x, labels = data["x"], data["labels"]
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    model = get_architecture(info.architecture).build()
    model.load_state_dict(load_file(str(info.weights_path)))
    with torch.inference_mode():
        torch_pred = model.eval()(torch.from_numpy(x)).argmax(1).numpy()
    session = ort.InferenceSession(str(info.onnx_path), providers=["CPUExecutionProvider"])
    onnx_pred = session.run(None, {"x": x})[0].argmax(1)
    assert float((torch_pred == labels).mean()) == pytest.approx(info.test_accuracy, abs=1e-3)
    assert float((onnx_pred == torch_pred).mean()) >= 0.997


def test_transformer_example_shows_attention_in_both_forms():
    """digits-vit's attention is written out, so torch and ONNX both show MatMul, Softmax, LayerNorm and GELU."""
    import onnx

    info = get_example("digits-vit")
    ops = {node.op_type for node in onnx.load(info.onnx_path).graph.node}
    assert {"MatMul", "Softmax", "LayerNormalization", "Erf", "Add"} <= ops
    model = get_architecture(info.architecture).build()
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"Linear", "LayerNorm", "GELU"} <= kinds
    graph = torch.fx.symbolic_trace(model).graph
    assert {torch.matmul, torch.softmax} <= {node.target for node in graph.nodes}


def test_onnx_forms_take_any_batch():
    for info in list_examples():
        x = np.load(info.data_path)["x"][:5]
        session = ort.InferenceSession(str(info.onnx_path), providers=["CPUExecutionProvider"])
        assert session.run(None, {"x": x})[0].shape == (5, 10)
