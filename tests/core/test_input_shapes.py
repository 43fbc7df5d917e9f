"""Concrete input shapes: fixed dims kept, batches a fixed graph cannot take refused, guesses by input kind
recorded loudly, shapes taken from data or the user, synthesized token ids valid."""

from __future__ import annotations

import numpy as np
import pytest

from accelstudio.core.data.datasets import synthesize_inputs
from accelstudio.core.model.inspect import InputShapeError
from accelstudio.core.model.input_shapes import (
    BatchShapeError, GUESS_IMAGE_SIDE, GUESS_SEQ_LEN, parse_input_shapes, plan_shapes, token_vocab_sizes,
)
from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.model.loading import load_model
from accelstudio.core.model.handle import InputSpec, ModelHandle
from accelstudio.core.pipeline import run_job
from shape_models import conv, fixed_matmul, fixed_width_add, token_model

FAST = RuntimeSettings(threads=1, warmup=2, repeats=20, time_budget_s=0.5)


def _run(path, batch=1, **kw):
    from dataclasses import replace

    return run_job(JobSpec(model=str(path), runtime=replace(FAST, batch=batch), keep_artifact=False,
                           max_eval_samples=32, **kw))


def test_fixed_matmul_runs_at_its_own_shapes(tmp_path):
    result = _run(fixed_matmul(tmp_path / "mm.onnx"))
    data = result.metrics["data"]
    assert result.status == "done"
    assert data["input_shapes"] == {"a": [2, 3], "b": [3, 4]} and data["guessed_dims"] == []
    assert result.metrics["fidelity"]["cosine"] == pytest.approx(1.0)


def test_batch_a_fixed_graph_cannot_take_is_refused_before_work(tmp_path):
    with pytest.raises(BatchShapeError, match="no batch dimension to set to 8"):
        _run(fixed_matmul(tmp_path / "mm.onnx"), batch=8)
    path = conv(tmp_path / "c1.onnx", [1, 3, 16, 16])
    with pytest.raises(BatchShapeError, match="fixed at 1.*batch 8 cannot run"):
        _run(path, batch=8)
    result = _run(path)
    assert result.metrics["data"]["input_shapes"] == {"x": [1, 3, 16, 16]}
    assert result.metrics["data"]["layout"] == "fixed"


def test_dynamic_image_dims_are_guessed_224_and_said_loudly(tmp_path):
    result = _run(conv(tmp_path / "d.onnx", ["N", 3, "H", "W"]), batch=2)
    data = result.metrics["data"]
    assert data["input_shapes"] == {"x": [2, 3, GUESS_IMAGE_SIDE, GUESS_IMAGE_SIDE]}
    assert data["guessed_dims"] == ["x[2]=224 (H)", "x[3]=224 (W)"]
    notes = " ".join(result.metrics["notes"])
    assert "input 'x' dim 2 (H) was not given: guessed 224" in notes and "--input-shape x=2x3x224x224" in notes


def test_user_shape_replaces_the_guess(tmp_path):
    result = _run(conv(tmp_path / "d.onnx", ["N", 3, "H", "W"]), input_shapes={"x": [1, 3, 40, 24]})
    assert result.metrics["data"]["input_shapes"] == {"x": [1, 3, 40, 24]}
    assert result.metrics["data"]["guessed_dims"] == []
    assert not any("guessed" in n for n in result.metrics["notes"])


def test_shapes_come_from_the_data(tmp_path):
    data = tmp_path / "d.npz"
    np.savez(data, x=np.random.default_rng(0).random((6, 3, 20, 12)).astype(np.float32))
    result = _run(conv(tmp_path / "d.onnx", ["N", 3, "H", "W"]), data=str(data))
    assert result.metrics["data"]["input_shapes"] == {"x": [1, 3, 20, 12]}
    assert result.metrics["data"]["guessed_dims"] == []
    assert result.metrics["data"]["eval"] == {"source": str(data), "n": 6, "synthesized": False, "labeled": False,
                                              "split": "all"}


def test_user_shape_that_contradicts_a_fixed_dim_is_refused(tmp_path):
    with pytest.raises(InputShapeError, match="needs 3 at dimension 1"):
        _run(conv(tmp_path / "d.onnx", ["N", 3, "H", "W"]), input_shapes={"x": [1, 4, 40, 40]})


def test_token_ids_are_valid_and_masks_follow_their_length(tmp_path):
    path = token_model(tmp_path / "tok.onnx", vocab=50)
    handle = load_model(path)
    assert token_vocab_sizes(handle) == {"input_ids": 50}
    ds = synthesize_inputs(handle, 16, plan_shapes(handle, 1))
    ids, mask = ds.inputs["input_ids"], ds.inputs["attention_mask"]
    assert ids.shape == mask.shape == (16, GUESS_SEQ_LEN)
    assert ids.max() < 50 and ids.max() > 10 and (mask == 1).all()
    result = _run(path, input_shapes={"attention_mask": [1, 64]})
    assert result.metrics["data"]["input_shapes"] == {"input_ids": [1, 64], "attention_mask": [1, 64]}


def test_parse_input_shapes():
    assert parse_input_shapes(["x=1x3x640x640"]) == {"x": (1, 3, 640, 640)}
    assert parse_input_shapes(["1x3x8x8"], ["img"]) == {"img": (1, 3, 8, 8)}
    assert parse_input_shapes(["1x3x8x8"]) == {"": (1, 3, 8, 8)}
    assert parse_input_shapes(["ids=2,7", "mask=2x7"], ["ids", "mask"]) == {"ids": (2, 7), "mask": (2, 7)}
    with pytest.raises(InputShapeError, match="name the input"):
        parse_input_shapes(["2x7"], ["ids", "mask"])
    for bad in ("x=a,b", "x=", "x=0x3"):
        with pytest.raises(InputShapeError):
            parse_input_shapes([bad], ["x"])


def test_guess_rules_per_kind():
    h = ModelHandle("onnx", "onnx", (InputSpec("img", (None, None, None, 3)), InputSpec("feat", (None, None)),
                                      InputSpec("ids", (None, None), "int64"), InputSpec("seq", (None, None, 16))))
    shapes = plan_shapes(h, 1).call_shapes()
    assert shapes == {"img": [1, 224, 224, 3], "feat": [1, 64], "ids": [1, 128], "seq": [1, 128, 16]}


def test_synthesized_data_stays_within_memory(tmp_path):
    from accelstudio.core.data.datasets import SYNTH_MAX_BYTES
    from accelstudio.core.errors import DatasetError

    h = ModelHandle("onnx", "onnx", (InputSpec("x", (None, 3, None, None)),))
    big = synthesize_inputs(h, 64, plan_shapes(h, 1, {"x": [1, 3, 2000, 2000]}))
    assert 1 <= big.num_samples < 64 and big.inputs["x"].nbytes <= SYNTH_MAX_BYTES
    with pytest.raises(DatasetError, match="GiB; give smaller --input-shape"):
        synthesize_inputs(h, 64, plan_shapes(h, 1, {"x": [1, 3, 100000, 100000]}))


def test_a_model_failing_on_guessed_dims_names_the_guess(tmp_path):
    path = fixed_width_add(tmp_path / "add.onnx", width=16)
    with pytest.raises(InputShapeError, match=r"guessed x\[1\]=64 \(dim 1\)\).*--input-shape NAME=DIMS"):
        _run(path)
    assert _run(path, input_shapes={"x": [1, 16]}).metrics["data"]["input_shapes"] == {"x": [1, 16]}


def test_image_folder_is_resized_to_the_given_shape(tmp_path):
    PIL_Image = pytest.importorskip("PIL.Image")
    for cls, value in (("a", 0), ("b", 255)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            PIL_Image.new("RGB", (8, 8), (value, i, 0)).save(tmp_path / "imgs" / cls / f"{i}.png")
    model = conv(tmp_path / "d.onnx", ["N", 3, "H", "W"])
    result = _run(model, data=str(tmp_path / "imgs"), input_shapes={"x": [1, 3, 16, 12]})
    assert result.metrics["data"]["input_shapes"] == {"x": [1, 3, 16, 12]}
    assert result.metrics["data"]["eval"]["n"] == 6 and result.metrics["data"]["eval"]["labeled"]
    assert _run(model, data=str(tmp_path / "imgs")).metrics["data"]["input_shapes"] == {"x": [1, 3, 8, 8]}


def test_symbolic_first_dims_follow_a_fixed_one(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Add", ["x", "s"], ["y"])], "mix",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
                           helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "mix.onnx"))
    result = _run(tmp_path / "mix.onnx")
    assert result.metrics["data"]["input_shapes"] == {"x": [1, 4], "s": [1, 4]}
    assert result.metrics["fidelity"]["n_compared"] == 32
    with pytest.raises(BatchShapeError, match="fixed at 1"):
        _run(tmp_path / "mix.onnx", batch=4)
