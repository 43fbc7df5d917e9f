"""ONNX Runtime quantization modes on the bundled examples.

Tolerance for every real quantization mode on digits-cnn (360 test samples): top-1 agreement with the float32
model >= 97% and accuracy within 2 points of it (an accuracy difference on 360 samples has an error bar of about
1-2 points).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from accelstudio.core.errors import CompressionError, RecipeError
from accelstudio.core.model.examples import get_example
from accelstudio.core.model.onnx_layers import weighted_nodes
from accelstudio.core.compress.quant_onnx import gemm_to_matmul, quantize_onnx
from accelstudio.core.compress.quant_sim import quantization_notes
from accelstudio.core.recipe import QuantSpec

MIN_AGREEMENT = 0.97
MAX_ACCURACY_DROP = 0.02


def _load(name):
    info = get_example(name)
    data = np.load(info.data_path)
    return onnx.load(info.onnx_path), data["x"], data["labels"], {"x": np.load(info.calib_path)["x"]}


@pytest.fixture(scope="module")
def cnn():
    return _load("digits-cnn")


@pytest.fixture(scope="module")
def mlp():
    return _load("digits-mlp")


def _run(model, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": x})[0]
    assert out.dtype == np.float32
    return out


def _assert_close_to_float(example, quantized):
    model, x, labels, _ = example
    ref, got = _run(model, x).argmax(1), _run(quantized, x).argmax(1)
    assert (ref == got).mean() >= MIN_AGREEMENT
    assert (ref == labels).mean() - (got == labels).mean() <= MAX_ACCURACY_DROP


def _ops(model):
    return {node.op_type for node in model.graph.node}


def _assert_root_logger_untouched():
    """onnxruntime's quantizers call logging.basicConfig / logging.warning at module level, which would give the
    app's root logger a stderr handler."""
    assert not any(type(h) is logging.StreamHandler for h in logging.getLogger().handlers)


def _stored(model):
    return {layer.name: layer.stored_dtype for layer in weighted_nodes(model)}


# ------------------------------------------------------------------------------------------------ dynamic

@pytest.mark.parametrize("weight_type, dtype", [("qint8", "int8"), ("quint8", "uint8")])
def test_dynamic_int8_uses_integer_kernels(cnn, weight_type, dtype):
    q = quantize_onnx(cnn[0], QuantSpec("dynamic-int8", per_channel=True, weight_type=weight_type), None)
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= _ops(q)
    assert "ConvInteger" not in _ops(q)  # slower than fp32 conv on CPUs: convs stay float, with a note
    assert _stored(q) == {"conv1": "float32", "conv2": "float32", "fc1": dtype, "fc2": dtype}  # names kept
    assert "static-int8" in quantization_notes(q)[0]
    _assert_close_to_float(cnn, q)


def test_dynamic_int8_exclusions_stay_float(cnn):
    q = quantize_onnx(cnn[0], QuantSpec("dynamic-int8", exclude=("fc2",)), None)
    assert _stored(q) == {"conv1": "float32", "conv2": "float32", "fc1": "int8", "fc2": "float32"}
    _assert_close_to_float(cnn, q)
    _assert_root_logger_untouched()


# ------------------------------------------------------------------------------------------------- static

@pytest.mark.parametrize("calibration", ["minmax", "entropy", "percentile"])
def test_static_int8_inserts_qdq_nodes(cnn, calibration, capsys):
    spec = QuantSpec("static-int8", per_channel=calibration == "minmax", calibration=calibration,
                     calib_samples=64, exclude=("fc2",))
    q = quantize_onnx(cnn[0], spec, cnn[3])
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(q)
    assert _stored(q) == {"conv1": "int8", "conv2": "int8", "fc1": "int8", "fc2": "float32"}
    _assert_close_to_float(cnn, q)
    assert capsys.readouterr().out == ""  # onnxruntime's calibrators print; core functions must not


def test_static_int8_without_calibration_data_fails_clearly(cnn):
    with pytest.raises(CompressionError, match="static int8 needs calibration data"):
        quantize_onnx(cnn[0], QuantSpec("static-int8"), None)


def test_static_int8_calibration_under_another_name_fits_a_single_input(mlp):
    q = quantize_onnx(mlp[0], QuantSpec("static-int8", calib_samples=32), {"inputs": mlp[3]["x"]})
    assert "QuantizeLinear" in _ops(q)


# ----------------------------------------------------------------------------------------------- fp16/bf16

def test_fp16_stores_float16_weights_with_float32_io(cnn):
    model = cnn[0]
    q = quantize_onnx(model, QuantSpec("fp16", exclude=("fc1",)), None)
    assert _stored(q) == {"conv1": "float16", "conv2": "float16", "fc1": "float32", "fc2": "float16"}
    assert q.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert q.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    _assert_close_to_float(cnn, q)


def test_bf16_is_refused_with_advice(cnn):
    with pytest.raises(CompressionError, match="bf16.*(fp16|torch)"):
        quantize_onnx(cnn[0], QuantSpec("bf16"), None)


# -------------------------------------------------------------------------------------------- weight-only

@pytest.mark.parametrize("mode", ["weight-int4", "weight-int8"])
def test_weight_only_uses_matmul_nbits_and_leaves_convs_float(cnn, mode):
    model = cnn[0]
    q = quantize_onnx(model, QuantSpec(mode), None)
    assert sum(node.op_type == "MatMulNBits" for node in q.graph.node) == 2
    assert _stored(q) == {"conv1": "float32", "conv2": "float32", "fc1": "uint8", "fc2": "uint8"}
    assert any("conv1" in note for note in quantization_notes(q))
    fc_bytes = sum(i.ByteSize() for i in model.graph.initializer if i.name.startswith("fc"))
    q_fc_bytes = sum(i.ByteSize() for i in q.graph.initializer if i.name.startswith("fc"))
    assert q_fc_bytes < (0.17 if mode == "weight-int4" else 0.3) * fc_bytes
    _assert_close_to_float(cnn, q)


def test_weight_int4_exclusion_and_no_root_logging(mlp):
    q = quantize_onnx(mlp[0], QuantSpec("weight-int4", exclude=("fc3",)), None)
    assert _stored(q) == {"fc1": "uint8", "fc2": "uint8", "fc3": "float32"}
    assert "Gemm" in _ops(q)  # the excluded layer is left as it was
    _assert_root_logger_untouched()


def test_gemm_to_matmul_is_exact(mlp):
    model, x = mlp[0], mlp[1][:16]
    rewritten, count = gemm_to_matmul(model, set())
    assert count == 3 and "Gemm" not in _ops(rewritten)
    assert [layer.name for layer in weighted_nodes(rewritten)] == ["fc1", "fc2", "fc3"]
    np.testing.assert_allclose(_run(rewritten, x), _run(model, x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------ general

def test_sim_mode_delegates_to_fake_quantization(cnn):
    q = quantize_onnx(cnn[0], QuantSpec("sim", bits=4, per_channel=True), None)
    fc1 = numpy_helper.to_array(next(i for i in q.graph.initializer if i.name == "fc1.weight"))
    assert fc1.dtype == np.float32
    assert max(len(np.unique(row)) for row in fc1) <= 15


@pytest.mark.parametrize("spec", [QuantSpec("dynamic-int8"), QuantSpec("static-int8", calib_samples=32),
                                  QuantSpec("fp16"), QuantSpec("weight-int4"), QuantSpec("sim", bits=3)],
                         ids=lambda s: s.mode)
def test_input_model_is_never_modified(cnn, spec):
    model = cnn[0]
    before = model.SerializeToString()
    q = quantize_onnx(model, spec, cnn[3])
    assert q is not model
    assert model.SerializeToString() == before


def test_unknown_excluded_layer_lists_real_names(cnn):
    with pytest.raises(RecipeError, match=r"quantize\.exclude.*nope.*conv1, conv2, fc1, fc2"):
        quantize_onnx(cnn[0], QuantSpec("dynamic-int8", exclude=("nope",)), None)


# ------------------------------------------------------------------------------------- attention models


def _cosine(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def _quantized_consumers(model):
    """Op types of the nodes that read a DequantizeLinear output (the ops that run on int8 data)."""
    dq = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {n.op_type for n in model.graph.node if n.op_type != "QuantizeLinear" and set(n.input) & dq}


def _run_feeds(model, feeds):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_static_int8_on_the_vision_transformer_keeps_fidelity():
    vit = _load("digits-vit")
    q = quantize_onnx(vit[0], QuantSpec("static-int8"), vit[3])  # the default recipe settings
    assert _quantized_consumers(q) == {"MatMul", "Gemm"}  # LayerNorm, Softmax, GELU, residual Adds stay float
    assert {"LayerNormalization", "Softmax"} <= _ops(q)
    ref, got = _run(vit[0], vit[1]), _run(q, vit[1])
    assert _cosine(ref, got) >= 0.99
    assert (ref.argmax(1) == got.argmax(1)).mean() >= MIN_AGREEMENT
    assert (ref.argmax(1) == vit[2]).mean() - (got.argmax(1) == vit[2]).mean() <= MAX_ACCURACY_DROP
    notes = " ".join(quantization_notes(q))
    assert "attention model" in notes and "per-channel" in notes


def test_static_int8_on_a_bert_like_encoder_keeps_the_embedding_close(tmp_path):
    from tests import factories as fx

    model = onnx.load(fx.bert_like_onnx(tmp_path))
    ids, mask = fx.bert_inputs(128, seed=1)
    q = quantize_onnx(model, QuantSpec("static-int8"), {"input_ids": ids, "attention_mask": mask})
    assert _quantized_consumers(q) == {"MatMul"}
    gathers = [n for n in q.graph.node if n.op_type == "Gather"]
    float_tables = {i.name for i in q.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    assert any(g.input[0] in float_tables for g in gathers)  # the embedding tables stay float32
    ids, mask = fx.bert_inputs(64, seq=24, seed=2)  # another sequence length than calibration's
    feeds = {"input_ids": ids, "attention_mask": mask}
    assert _cosine(_run_feeds(model, feeds), _run_feeds(q, feeds)) >= 0.99


def test_static_int8_keeps_full_qdq_coverage_on_cnns(cnn):
    q = quantize_onnx(cnn[0], QuantSpec("static-int8", per_channel=True, calib_samples=64), cnn[3])
    assert {"Conv", "Gemm"} <= _quantized_consumers(q)
    assert not any("attention" in note for note in quantization_notes(q))


def test_few_calibration_samples_are_noted(mlp):
    q = quantize_onnx(mlp[0], QuantSpec("static-int8", calib_samples=16), mlp[3])
    assert any("only 16 samples" in note for note in quantization_notes(q))


@pytest.mark.parametrize("mode", ["dynamic-int8", "static-int8", "weight-int8"])
def test_quantizers_write_nothing_into_the_working_directory(tmp_path, monkeypatch, mode):
    """ONNX Runtime's symbolic shape inference gives up on this graph and then saves sym_shape_infer_temp.onnx
    and a 4 MiB <uuid>.data file into the working directory."""
    from tests import factories as fx

    model = onnx.load(fx.onnx_unmerged_batch_dims(tmp_path))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    rng = np.random.default_rng(0)
    calib = {name: rng.random((32, 1024), dtype=np.float32) for name in ("x", "x2")}
    quantize_onnx(model, QuantSpec(mode), calib)
    assert list(cwd.iterdir()) == []
    assert Path.cwd() == cwd


def test_attention_layers_are_excluded_by_their_torch_names():
    """torch exports a Linear on 3-D input as MatMul with an anonymous transposed weight ('onnx::MatMul_12');
    the layer still carries the torch module's name, so a recipe's exclusions mean the same on both forms."""
    vit = _load("digits-vit")
    names = [layer.name for layer in weighted_nodes(vit[0])]
    assert {"embed", "blocks.0.attn.q", "blocks.1.fc2", "head"} <= set(names)
    q = quantize_onnx(vit[0], QuantSpec("static-int8", exclude=("blocks.0.attn.q",)), vit[3])
    stored = _stored(q)
    assert stored["blocks.0.attn.q"] == "float32" and stored["blocks.0.attn.k"] == "int8"


def test_cnns_that_end_in_softmax_are_not_attention_models(tmp_path):
    """A final Softmax (onnx's ResNet-50 test graph, weights made by ConstantOfShape) keeps full QDQ coverage;
    the BERT-like encoder and digits-vit are attention models."""
    import os

    from accelstudio.core.compress.quant_onnx_static import is_attention_model
    from tests import factories as fx

    light = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"
    for name in ("light_resnet50.onnx", "light_densenet121.onnx", "light_squeezenet.onnx"):
        assert not is_attention_model(onnx.load(light / name)), name
    assert is_attention_model(onnx.load(fx.bert_like_onnx(tmp_path)))
    assert is_attention_model(_load("digits-vit")[0])
    assert not is_attention_model(_load("digits-resnet")[0])
