"""Data sets: bundled example data, user .npz files (and every way they can be wrong), synthesized inputs,
image folders, calibration samples."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest

from accelstudio.core.data.datasets import calibration_inputs, load_dataset
from accelstudio.core.errors import DatasetError
from accelstudio.core.model.examples import get_example
from accelstudio.core.model.handle import InputSpec, ModelHandle

HAS_PIL = importlib.util.find_spec("PIL") is not None


def cnn_handle(example: str | None = "digits-cnn") -> ModelHandle:
    return ModelHandle("torch", "example", (InputSpec("x", (None, 1, 8, 8), "float32", (0.0, 1.0)),),
                       example=example, num_classes=10)


def user_handle(*specs: InputSpec, num_classes: int | None = 10) -> ModelHandle:
    return ModelHandle("onnx", "onnx", tuple(specs), num_classes=num_classes)


def save(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def good_x(n=12):
    return np.random.default_rng(0).random((n, 1, 8, 8)).astype(np.float32)


def test_example_data_loads_with_labels():
    ds = load_dataset(None, cnn_handle())
    info = get_example("digits-cnn")
    assert ds.source == "example:digits-cnn" and not ds.synthesized
    assert ds.num_samples == info.n_test == ds.inputs["x"].shape[0]
    assert ds.inputs["x"].shape[1:] == (1, 8, 8) and ds.inputs["x"].dtype == np.float32
    assert ds.labels is not None and ds.labels.dtype == np.int64 and ds.labels.max() <= 9


def test_max_samples_keeps_a_fixed_subset_across_classes():
    full = load_dataset(None, cnn_handle())
    a = load_dataset(None, cnn_handle(), max_samples=50)
    b = load_dataset(None, cnn_handle(), max_samples=50)
    assert a.num_samples == 50 and np.array_equal(a.labels, b.labels)
    assert len(set(a.labels.tolist())) >= 5  # not only the first class of a sorted file
    assert np.isin(a.inputs["x"][:1], full.inputs["x"]).all()


def test_user_npz_by_input_name_and_by_x(tmp_path):
    x, labels = good_x(), np.arange(12) % 10
    by_name = load_dataset(save(tmp_path, "a.npz", input_0=x, labels=labels),
                           user_handle(InputSpec("input_0", (None, 1, 8, 8))))
    by_x = load_dataset(save(tmp_path, "b.npz", x=x.astype(np.float64)),
                        user_handle(InputSpec("input_0", (None, 1, 8, 8))))
    assert np.array_equal(by_name.inputs["input_0"], x) and np.array_equal(by_name.labels, labels)
    assert by_x.inputs["input_0"].dtype == np.float32 and by_x.labels is None and by_x.num_samples == 12


def test_multi_input_npz_needs_every_name(tmp_path):
    h = user_handle(InputSpec("a", (None, 4)), InputSpec("b", (None, 2), "int64"))
    ok = load_dataset(save(tmp_path, a=np.ones((3, 4)), b=np.ones((3, 2))), h)
    assert ok.inputs["b"].dtype == np.int64
    with pytest.raises(DatasetError, match=r"missing input array 'b'.*expected arrays named a, b") as info:
        load_dataset(save(tmp_path, "m.npz", a=np.ones((3, 4)), x=np.ones((3, 2))), h)
    assert "m.npz" in str(info.value)
    with pytest.raises(DatasetError, match="different numbers of samples"):
        load_dataset(save(tmp_path, "c.npz", a=np.ones((3, 4)), b=np.ones((5, 2))), h)


class _Evil:
    def __reduce__(self):
        import pathlib
        return (pathlib.Path.touch, (pathlib.Path(_Evil.marker),))


def test_pickled_npz_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "code_ran"
    _Evil.marker = str(marker)
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([_Evil()], dtype=object))
    assert not marker.exists()
    with pytest.raises(DatasetError, match="contains pickled objects; refusing to load") as info:
        load_dataset(path, cnn_handle(None))
    assert "evil.npz" in str(info.value) and not marker.exists()
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(DatasetError, match="pickled"):
        load_dataset(raw, cnn_handle(None))
    assert not marker.exists()


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((4, 8, 8), np.float32)}, r"rank 3.*expects rank 4"),
    ({"x": np.zeros((4, 1, 8, 9), np.float32)}, r"expects \(N, 1, 8, 8\) \(dimension 3 differs\)"),
    ({"x": np.full((4, 1, 8, 8), "a")}, r"dtype <U1.*cannot be converted"),
    ({"x": np.where(np.eye(8)[None, None] > 0, np.nan, 0.0).repeat(4, 0)}, r"NaN or Inf in 4 sample"),
    ({"x": np.zeros((0, 1, 8, 8), np.float32)}, r"empty \(0 samples\)"),
    ({"x": good_x(4), "labels": np.arange(3)}, r"'labels' has 3 entries but the inputs have 4"),
    ({"x": good_x(4), "labels": np.array([0, 1, 2, 10])}, r"class 10, but the model has 10 classes"),
    ({"x": good_x(4), "labels": np.array([0, 1, -1, 2])}, r"negative class index"),
    ({"x": good_x(4), "labels": np.array([0.5, 1, 2, 3])}, r"must be integer class indices"),
    ({"x": good_x(4), "labels": np.array(["a", "b", "c", "d"])}, r"must be integer class indices"),
])
def test_bad_npz_errors_name_file_and_problem(tmp_path, arrays, message):
    path = save(tmp_path, "bad_data.npz", **arrays)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(path, cnn_handle(None))
    assert str(info.value).startswith(str(path))


def test_inf_in_one_sample_names_its_index(tmp_path):
    x = good_x(6)
    x[4, 0, 2, 3] = np.inf
    with pytest.raises(DatasetError, match=r"1 sample\(s\) \(first at index 4\)"):
        load_dataset(save(tmp_path, x=x), cnn_handle(None))


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nope.npz", cnn_handle(None))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DatasetError, match="junk.npz: not a readable .npz"):
        load_dataset(junk, cnn_handle(None))


def test_integral_float_labels_accepted_and_unknown_class_count_not_checked(tmp_path):
    path = save(tmp_path, x=good_x(3), labels=np.array([1.0, 25.0, 3.0]))
    ds = load_dataset(path, user_handle(InputSpec("x", (None, 1, 8, 8)), num_classes=None))
    assert ds.labels.tolist() == [1, 25, 3] and ds.labels.dtype == np.int64


def test_synthesized_inputs_fit_every_input():
    h = user_handle(InputSpec("img", (None, 3, None, None), "float32", (-1.0, 1.0)),
                    InputSpec("ids", (1, 7), "int64"), InputSpec("mask", (None, 7), "bool"))
    ds = load_dataset(None, h, synth_samples=5)
    assert ds.synthesized and ds.labels is None and ds.num_samples == 5 and ds.source == "synthesized"
    img, ids, mask = ds.inputs["img"], ds.inputs["ids"], ds.inputs["mask"]
    assert img.shape[:2] == (5, 3) and img.dtype == np.float32 and img.min() >= -1 and img.max() <= 1
    assert ids.shape == (5, 7) and ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < 10
    assert mask.shape == (5, 7) and mask.dtype == np.bool_
    again = load_dataset(None, h, synth_samples=5)
    assert np.array_equal(again.inputs["img"], img)  # fixed seed


def test_calibration_inputs_example_and_user():
    calib = calibration_inputs(cnn_handle(), load_dataset(None, cnn_handle()), 100)
    expected = np.load(get_example("digits-cnn").calib_path)["x"][:100]
    assert np.array_equal(calib["x"], expected)
    h = user_handle(InputSpec("x", (None, 1, 8, 8)))
    ds = load_dataset(None, h, synth_samples=20)
    assert np.array_equal(calibration_inputs(h, ds, 8)["x"], ds.inputs["x"][:8])
    assert calibration_inputs(h, ds, 100)["x"].shape[0] == 20


def _write_png_folder(root, PIL_Image, mode="L", size=(8, 8)):
    for cls, value in (("cat", 0), ("dog", 255)):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            PIL_Image.new(mode, size, color=value if mode == "L" else (value,) * 3).save(root / cls / f"{i}.png")


@pytest.mark.skipif(not HAS_PIL, reason="Pillow is not installed")
def test_image_folder_loads_resized_scaled_and_labeled(tmp_path):
    from PIL import Image

    _write_png_folder(tmp_path / "imgs", Image, mode="RGB", size=(16, 12))
    ds = load_dataset(tmp_path / "imgs", cnn_handle(None))
    x = ds.inputs["x"]
    assert x.shape == (6, 1, 8, 8) and x.dtype == np.float32
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.allclose(x[:3], 0.0) and np.allclose(x[3:], 1.0)
    flat = load_dataset(tmp_path / "imgs", user_handle(InputSpec("x", (None, 64))))
    assert flat.inputs["x"].shape == (6, 64)


@pytest.mark.skipif(not HAS_PIL, reason="Pillow is not installed")
def test_image_folder_unreadable_image_is_named(tmp_path):
    from PIL import Image

    _write_png_folder(tmp_path / "imgs", Image)
    broken = tmp_path / "imgs" / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    with pytest.raises(DatasetError, match="unreadable image") as info:
        load_dataset(tmp_path / "imgs", cnn_handle(None))
    assert str(broken) in str(info.value)


@pytest.mark.skipif(HAS_PIL, reason="Pillow is installed")
def test_image_folder_without_pillow_says_what_to_install(tmp_path):
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match="needs Pillow"):
        load_dataset(tmp_path / "imgs", cnn_handle(None))


def test_folder_without_class_subfolders_is_refused(tmp_path):
    pytest.importorskip("PIL")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "0.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="no class sub-folders"):
        load_dataset(tmp_path / "flat", cnn_handle(None))
