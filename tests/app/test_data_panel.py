"""The Data group: choosing evaluation, calibration and training data and input shapes in the window, as the
CLI does; counts shown, bad files named without a crash, the choices in the JobSpec and the undo history."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from accelstudio.app.views.data_panel import parse_shape, spec_input_shapes
from accelstudio.core.data.settings import DataSettings
from tests import factories as fx
from tests.app.conftest import LOAD_TIMEOUT_MS


def test_parse_shape_keeps_fixed_dims_and_marks_open_ones():
    assert parse_shape("4x8", (None, 8)) == (4, 8)
    assert parse_shape("?x8", (None, 8)) == (0, 8)
    assert parse_shape("1 x 3 x 640 x 640", (None, 3, None, None)) == (1, 3, 640, 640)
    for text, why in (("4x9", "fixed at 8"), ("4", "expected 2 dimensions"), ("0x8", "positive"),
                      ("ax8", "positive")):
        with pytest.raises(ValueError, match=why):
            parse_shape(text, (None, 8))
    data = DataSettings(input_shapes=(("a", (0, 8)), ("b", (2, 0, 5)), ("c", (3, 7))))
    assert spec_input_shapes(data, batch=16) == {"a": [16, 8], "c": [3, 7]}


@pytest.fixture
def user_window(make_window, qtbot, tmp_path):
    """A window with a user's ONNX graph open: input x (batch, 8), no labels, no bundled data."""
    window = make_window(load=False)
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT_MS):
        window.open_model(str(fx.onnx_mlp(tmp_path)))
    return window


def _answer_paths(monkeypatch, panel, *paths):
    answers = list(paths)
    monkeypatch.setattr(panel, "ask_path", lambda role, folder: answers.pop(0))


def test_synthesized_badge_then_a_file_with_its_count(user_window, qtbot, tmp_path, monkeypatch):
    panel = user_window.data_panel
    assert panel.badge.isVisible() and panel.badge.text() == "random inputs: fidelity only"
    assert panel.combos["eval"].currentText() == "Synthesized random inputs"
    good = tmp_path / "mine.npz"
    np.savez(good, x=np.random.default_rng(0).random((37, 8), dtype=np.float32))
    _answer_paths(monkeypatch, panel, str(good))
    panel.choose("eval", "file")
    assert user_window.state.data.data == str(good.resolve())
    qtbot.waitUntil(lambda: "37 samples" in panel.sources["eval"].text(), timeout=LOAD_TIMEOUT_MS)
    assert "no labels" in panel.sources["eval"].text() and not panel.badge.isVisible()
    assert user_window.runs.job_spec().data == str(good.resolve())
    user_window.undo_action.trigger()
    assert user_window.state.data.data is None and panel.badge.isVisible()
    user_window.redo_action.trigger()
    assert user_window.state.data.data == str(good.resolve())


def test_bad_file_is_named_and_the_run_refused(user_window, qtbot, tmp_path, monkeypatch, dialog_answers):
    panel = user_window.data_panel
    wrong = tmp_path / "wrong_shape.npz"
    np.savez(wrong, x=np.zeros((5, 9), np.float32))
    page = fx.text_file(tmp_path, name="page.npz")
    for bad, why in ((wrong, "dimension 1 differs"), (page, "does not start like a NumPy archive")):
        _answer_paths(monkeypatch, panel, str(bad))
        panel.choose("eval", "file")
        qtbot.waitUntil(lambda: why in panel.warning.text(), timeout=LOAD_TIMEOUT_MS)
        assert bad.name in panel.problem() and panel.warning.isVisible()
        assert not user_window.runs.start_run()
        assert bad.name in user_window.statusBar().currentMessage()
    assert dialog_answers.boxes == [] and user_window.isVisible()
    panel.choose("eval", "default")
    assert panel.problem() == "" and user_window.state.data.data is None


def test_calibration_on_the_evaluation_file_is_said_loudly(user_window, qtbot, tmp_path, monkeypatch):
    panel = user_window.data_panel
    path = tmp_path / "eval.npz"
    np.savez(path, x=np.ones((12, 8), np.float32), labels=np.zeros(12, np.int64))
    _answer_paths(monkeypatch, panel, str(path), str(path), str(path))
    panel.choose("eval", "file")
    panel.choose("calib", "file")
    panel.choose("train", "file")
    warning = panel.warning.text()
    assert "Calibrating on the evaluation set" in warning and "Training on the evaluation set" in warning
    assert panel.problem() == ""  # said loudly, but allowed
    qtbot.waitUntil(lambda: "12 samples" in panel.sources["train"].text(), timeout=LOAD_TIMEOUT_MS)
    spec = user_window.runs.job_spec()
    assert spec.data == spec.calib_data == spec.train_data == str(path.resolve())


def test_training_file_needs_labels(user_window, qtbot, tmp_path, monkeypatch):
    panel = user_window.data_panel
    path = tmp_path / "unlabeled.npz"
    np.savez(path, x=np.ones((4, 8), np.float32))
    _answer_paths(monkeypatch, panel, str(path))
    panel.choose("train", "file")
    qtbot.waitUntil(lambda: "has no 'labels' array" in panel.warning.text(), timeout=LOAD_TIMEOUT_MS)
    assert "unlabeled.npz" in panel.problem()


def test_image_folder_is_counted(user_window, qtbot, tmp_path, monkeypatch):
    panel = user_window.data_panel
    folder = tmp_path / "images"
    for cls, count in (("cats", 3), ("dogs", 2)):
        (folder / cls).mkdir(parents=True)
        for i in range(count):
            Image.new("L", (8, 1), color=i * 40).save(folder / cls / f"{i}.png")
    _answer_paths(monkeypatch, panel, str(folder))
    panel.choose("eval", "folder")
    qtbot.waitUntil(lambda: "5 samples" in panel.sources["eval"].text(), timeout=LOAD_TIMEOUT_MS)
    assert panel.combos["eval"].currentData() == "folder"


def test_input_shapes_are_prefilled_edited_and_sent(user_window):
    panel, state = user_window.data_panel, user_window.state
    edit = panel.shape_edits["x"]
    assert edit.text() == "?x8" and not edit.isReadOnly() and "dynamic dimensions: 0" in edit.toolTip()
    edit.setText("4x8")
    edit.editingFinished.emit()
    assert state.data.input_shapes == (("x", (4, 8)),)
    assert user_window.runs.job_spec().input_shapes == {"x": [4, 8]}
    edit.setText("4x9")
    edit.editingFinished.emit()
    assert "fixed at 8" in panel.warning.text() and state.data.input_shapes == (("x", (4, 8)),)
    assert "fixed at 8" in panel.problem() and not user_window.runs.start_run()
    edit.setText("?x8")
    edit.editingFinished.emit()
    assert state.data.input_shapes == () and panel.warning.text() == ""
    assert user_window.runs.job_spec().input_shapes == {}


def test_example_defaults_show_bundled_counts(window, qtbot):
    panel = window.data_panel
    assert not panel.badge.isVisible()
    assert panel.combos["eval"].currentText() == "The example's test set"
    qtbot.waitUntil(lambda: "360 samples" in panel.sources["eval"].text(), timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: "samples" in panel.sources["calib"].text(), timeout=LOAD_TIMEOUT_MS)
    assert "training split" in panel.sources["train"].text()
    spec = window.runs.job_spec()
    assert spec.data is None and spec.calib_data is None and spec.train_data is None


def test_restoring_a_run_brings_back_its_data_choices(user_window, tmp_path):
    from accelstudio.core.job import JobSpec, RunResult

    path = tmp_path / "kept.npz"
    np.savez(path, x=np.ones((3, 8), np.float32))
    spec = JobSpec(model=user_window.state.model.ref, data=str(path), calib_data=str(tmp_path / "gone.npz"),
                   input_shapes={"x": [3, 8]})
    user_window.runs.restore(RunResult("done", spec=spec.to_dict(), run_id=7))
    assert user_window.state.data == DataSettings(data=str(path), input_shapes=(("x", (3, 8)),))
    assert user_window.data_panel.shape_edits["x"].text() == "3x8"
    user_window.undo_action.trigger()
    assert user_window.state.data == DataSettings()


def _sequence_model(folder) -> str:
    """x (batch, seq) -> Relu: a graph whose second dimension is symbolic too."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "seq", [x], [y])
    path = folder / "seq.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7), path)
    return str(path)


def test_input_shape_contradicting_the_data_is_said(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window(load=False)
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT_MS):
        window.open_model(_sequence_model(tmp_path))
    panel, user_window = window.data_panel, window
    assert panel.shape_edits["x"].text() == "?x?"
    path = tmp_path / "seq.npz"
    np.savez(path, x=np.ones((6, 8), np.float32))
    _answer_paths(monkeypatch, panel, str(path))
    panel.choose("eval", "file")
    qtbot.waitUntil(lambda: "6 samples" in panel.sources["eval"].text(), timeout=LOAD_TIMEOUT_MS)
    user_window.state.edit("shape", data=replace(user_window.state.data, input_shapes=(("x", (0, 16)),)))
    assert "asks ?x16, but the evaluation data holds samples of ?x8" in panel.warning.text()
    assert panel.problem() == ""  # advice, not a refusal
