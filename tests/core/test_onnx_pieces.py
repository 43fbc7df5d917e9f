"""Parsing and checking an ONNX file tensor by tensor gives what onnx.load / onnx.checker give."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelstudio.core.model.onnx_pieces import check_model_in_pieces, parse_model_in_pieces
from tests import factories as fx

DATA = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data"
GRAPHS = sorted(DATA.glob("light/*.onnx")) + sorted(DATA.glob("*/*/model.onnx"))[:80]


@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_same_model_as_onnx_load(path):
    model = parse_model_in_pieces(path)
    assert model == onnx.load(str(path), load_external_data=False)
    check_model_in_pieces(model)


def test_external_data_references_are_kept(tmp_path):
    path = fx.onnx_with_external_data(tmp_path)
    model = parse_model_in_pieces(path)
    assert model == onnx.load(str(path), load_external_data=False)
    assert any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer)


def test_truncated_file_is_an_error_not_a_partial_model(tmp_path):
    src = DATA / "light" / "light_squeezenet.onnx"
    cut = fx.truncated_copy(src, tmp_path, 0.5)
    with pytest.raises(Exception):
        parse_model_in_pieces(cut)


def _model_with_short_tensor() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    w.raw_data = w.raw_data[:8]  # 2 of 12 floats
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_checker_in_pieces_rejects_what_the_checker_rejects():
    bad = _model_with_short_tensor()
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(bad)
    with pytest.raises(onnx.checker.ValidationError):
        check_model_in_pieces(bad)
    no_opset = onnx.load(str(DATA / "light" / "light_squeezenet.onnx"))
    del no_opset.opset_import[:]
    with pytest.raises(onnx.checker.ValidationError):
        check_model_in_pieces(no_opset)
