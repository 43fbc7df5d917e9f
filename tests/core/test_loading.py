"""Model loading: every format loads, every bad file gives a typed error naming it, nothing unsafe runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from accelstudio.core.errors import (
    CorruptModelError, ExternalDataError, ModelLoadError, ModelTooLargeError, NotAModelError, TrustRequiredError,
    UnsupportedModelError,
)
from accelstudio.core.model.examples import get_example
from accelstudio.core.model.loading import (
    MAX_SINGLE_ONNX_BYTES, file_sha256, load_example, load_model, open_model, save_bytes_atomic, save_onnx_atomic,
)
from tests import factories as fx


def _fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), os.stat(path).st_mtime_ns


def _raises(exc_type, path: Path, **kwargs) -> ModelLoadError:
    with pytest.raises(exc_type) as info:
        load_model(path, **kwargs)
    assert path.name in str(info.value)
    return info.value


# ---------------------------------------------------------------- formats that load

@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn"])
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_load_example_sets_identity_and_inputs(name, backend):
    handle = load_example(name, backend=backend)
    arch_shape = {"digits-mlp": (None, 64), "digits-cnn": (None, 1, 8, 8)}[name]
    assert handle.backend == backend and handle.example == name and handle.architecture == name
    assert handle.num_classes == 10 and handle.source is not None and handle.source.exists()
    assert [(s.name, s.shape, s.dtype, s.value_range) for s in handle.inputs] == [("x", arch_shape, "float32",
                                                                                  (0.0, 1.0))]
    if backend == "torch":
        assert not handle.module.training
    else:
        assert isinstance(handle.onnx_model, onnx.ModelProto)


def test_torch_and_onnx_examples_agree():
    data = np.load(get_example("digits-mlp").data_path)["x"][:8]
    torch_out = load_example("digits-mlp").module(torch.from_numpy(data)).detach().numpy()
    proto = load_example("digits-mlp", backend="onnx").onnx_model
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    np.testing.assert_allclose(weights["fc1.weight"], load_example("digits-mlp").module.fc1.weight.detach().numpy())
    assert torch_out.shape == (8, 10)


def test_open_model_refs(tmp_path):
    assert open_model("example:digits-cnn").backend == "torch"
    assert open_model("example:digits-cnn", backend="onnx").backend == "onnx"
    path = fx.onnx_example(tmp_path)
    assert open_model(str(path)).source_format == "onnx"
    with pytest.raises(UnsupportedModelError, match=path.name):
        open_model(str(path), backend="torch")
    with pytest.raises(NotAModelError, match="digits-mlp"):
        open_model("example:no-such-example")


def test_onnx_file_loads_with_dynamic_batch(tmp_path):
    handle = load_model(fx.onnx_example(tmp_path, "digits-cnn"))
    assert handle.backend == "onnx" and handle.source_format == "onnx"
    assert handle.inputs[0].shape == (None, 1, 8, 8) and handle.inputs[0].dtype == "float32"
    assert handle.metadata["file_bytes"] == handle.source.stat().st_size


def test_onnx_external_data_is_loaded_into_memory(tmp_path):
    path = fx.onnx_with_external_data(tmp_path)
    handle = load_model(path)
    for tensor in handle.onnx_model.graph.initializer:
        assert tensor.data_location == onnx.TensorProto.DEFAULT and len(tensor.raw_data) > 0
    assert handle.metadata["external_data_files"] == ["mlp.weights"]
    onnx.checker.check_model(handle.onnx_model)


@pytest.mark.parametrize("opset", [9, 11, 13])
@pytest.mark.parametrize("constant_weights", [False, True])
def test_onnx_old_opsets_and_constant_weights_load(tmp_path, opset, constant_weights):
    handle = load_model(fx.onnx_mlp(tmp_path, opset=opset, constant_weights=constant_weights, ir_version=6))
    assert handle.inputs[0].shape == (None, 8)
    assert [n.op_type for n in handle.onnx_model.graph.node].count("Constant") == (2 if constant_weights else 0)


def test_torchscript_loads_with_trust(tmp_path):
    handle = load_model(fx.torchscript_file(tmp_path), trust=True)
    assert handle.source_format == "torchscript" and not handle.module.training
    assert handle.inputs[0].shape == (None, 3, 32, 32) and handle.metadata["input_guessed"] is True
    assert handle.module(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


def test_pt2_loads_with_trust_and_keeps_dynamic_batch(tmp_path):
    handle = load_model(fx.pt2_file(tmp_path), trust=True)
    assert handle.source_format == "export"
    assert [(s.name, s.shape) for s in handle.inputs] == [("x", (None, 8))]
    handle.module.eval()  # must not raise, unlike a bare ExportedProgram.module()
    assert handle.module(torch.zeros(3, 8)).shape == (3, 3)


def test_pickled_module_loads_with_trust(tmp_path):
    handle = load_model(fx.pickled_module_file(tmp_path), trust=True)
    assert handle.source_format == "pickle" and isinstance(handle.module, fx.TinyConvNet)
    assert handle.inputs[0].shape == (None, 3, 32, 32) and handle.metadata["input_guessed"]


def test_safetensors_matches_architecture(tmp_path):
    handle = load_model(fx.safetensors_file(tmp_path, "digits-cnn"))
    assert (handle.source_format, handle.architecture, handle.num_classes) == ("safetensors", "digits-cnn", 10)
    assert handle.inputs[0].shape == (None, 1, 8, 8) and handle.inputs[0].value_range == (0.0, 1.0)


@pytest.mark.parametrize("variant", [{}, {"legacy": True}, {"wrap_key": "state_dict"}])
def test_state_dict_pt_loads(tmp_path, variant):
    handle = load_model(fx.state_dict_file(tmp_path, "digits-mlp", **variant))
    assert (handle.source_format, handle.architecture) == ("state_dict", "digits-mlp")
    assert not handle.module.training


def test_state_dict_of_unknown_architecture_lists_known(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(fx.TinyMLP().state_dict(), path)
    err = _raises(UnsupportedModelError, path)
    assert "digits-mlp" in str(err) and "architecture" in str(err)
    err = _raises(UnsupportedModelError, path, architecture="digits-cnn")
    assert "digits-cnn" in str(err)


def test_architecture_argument_is_used(tmp_path):
    handle = load_model(fx.state_dict_file(tmp_path, "digits-cnn"), architecture="digits-cnn")
    assert handle.architecture == "digits-cnn"


def test_content_wins_over_extension(tmp_path):
    path = tmp_path / "really_onnx.bin"
    shutil.copy(fx.onnx_example(tmp_path), path)
    handle = load_model(path)
    assert handle.backend == "onnx" and "format_note" in handle.metadata


@pytest.mark.parametrize("make", [
    fx.onnx_example, fx.onnx_with_external_data, fx.safetensors_file, fx.state_dict_file, fx.torchscript_file,
    fx.pickled_module_file,
])
def test_loading_leaves_the_file_untouched(tmp_path, make):
    path = make(tmp_path)
    before = _fingerprint(path)
    load_model(path, trust=True)
    assert _fingerprint(path) == before


# ---------------------------------------------------------------- bad files

def test_empty_file(tmp_path):
    err = _raises((CorruptModelError, NotAModelError), fx.empty_file(tmp_path))
    assert "empty" in str(err)
    _raises(NotAModelError, fx.empty_file(tmp_path, "empty.txt"))


@pytest.mark.parametrize("name", ["random.onnx", "random.pt", "random.safetensors", "random.pt2"])
def test_random_bytes(tmp_path, name):
    _raises((NotAModelError, CorruptModelError), fx.random_bytes_file(tmp_path, name))


@pytest.mark.parametrize("make", [fx.onnx_example, fx.safetensors_file, fx.state_dict_file, fx.torchscript_file])
def test_truncated_at_half(tmp_path, make):
    _raises(CorruptModelError, fx.truncated_copy(make(tmp_path), tmp_path, 0.5), trust=True)


def test_text_renamed_onnx(tmp_path):
    err = _raises(NotAModelError, fx.text_file(tmp_path, "page.onnx"))
    assert "HTML" in str(err)
    lfs = fx.text_file(tmp_path, "lfs.onnx", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n")
    assert "git lfs pull" in str(_raises(NotAModelError, lfs))


@pytest.mark.parametrize("make", [lambda d: fx.text_file(d, "notes.txt", b"just some notes\n"), fx.jpeg_like_file])
def test_wrong_extension_lists_supported(tmp_path, make):
    err = _raises(NotAModelError, make(tmp_path))
    assert ".onnx" in str(err) and ".safetensors" in str(err)


def test_onnx_over_2gib_fails_on_size_before_parsing(tmp_path, monkeypatch):
    path = fx.sparse_huge_onnx(tmp_path)
    monkeypatch.setattr(onnx, "load_model", lambda *a, **k: pytest.fail("parsed a file that is too large"))
    err = _raises(ModelTooLargeError, path)
    assert "2 GiB" in str(err) and MAX_SINGLE_ONNX_BYTES == 2**31


def test_onnx_without_graph_is_rejected(tmp_path):
    _raises((CorruptModelError, NotAModelError), fx.onnx_without_graph(tmp_path))


def test_onnx_custom_op_and_future_opset_unsupported(tmp_path):
    assert "com.example.custom" in str(_raises(UnsupportedModelError, fx.onnx_custom_op(tmp_path)))
    assert "opset" in str(_raises(UnsupportedModelError, fx.onnx_future_opset(tmp_path)))


@pytest.mark.parametrize("attack", fx.EXTERNAL_DATA_ATTACKS)
def test_hostile_external_data(tmp_path, attack):
    path = fx.hostile_external_onnx(tmp_path, attack)
    err = _raises(ExternalDataError, path)
    assert "tensor 'W'" in str(err)


# ---------------------------------------------------------------- code-bearing files

@pytest.mark.parametrize("make", [fx.torchscript_file, fx.pt2_file, fx.pickled_module_file])
def test_code_formats_need_trust(tmp_path, make):
    err = _raises(TrustRequiredError, make(tmp_path))
    assert "execute code" in str(err) and "--trust" in str(err)


@pytest.mark.parametrize("fmt", ["raw", "raw0", "zip", "legacy"])
def test_malicious_pickle_never_runs_without_trust(tmp_path, fmt):
    marker = tmp_path / "PWNED"
    path = fx.malicious_pickle_file(tmp_path, marker, fmt)
    err = _raises(TrustRequiredError, path)
    assert "mkdir" in str(err)
    with pytest.raises(TrustRequiredError):
        load_model(path, architecture="digits-mlp")
    assert not marker.exists()


def test_zip_bomb_refused(tmp_path):
    _raises(ModelTooLargeError, fx.zip_bomb_pt(tmp_path, inflated=16 * 1024**2))


def test_shape_exceeding_storage_is_corrupt(tmp_path):
    _raises(CorruptModelError, fx.state_dict_shape_exceeds_storage(tmp_path))


def test_zip_that_is_not_torch(tmp_path):
    _raises(NotAModelError, fx.not_a_torch_zip(tmp_path))


@pytest.mark.parametrize("attack", fx.SAFETENSORS_ATTACKS)
def test_hostile_safetensors(tmp_path, attack):
    _raises(CorruptModelError, fx.hostile_safetensors(tmp_path, attack))


# ---------------------------------------------------------------- writing and hashing

def test_save_onnx_atomic_roundtrip(tmp_path):
    model = load_model(fx.onnx_example(tmp_path)).onnx_model
    out = save_onnx_atomic(model, tmp_path / "out" / "copy.onnx")
    assert load_model(out).onnx_model.SerializeToString() == model.SerializeToString()
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.onnx"]


def test_save_onnx_atomic_uses_external_data_for_big_models(tmp_path):
    model = load_model(fx.onnx_example(tmp_path)).onnx_model
    before = model.SerializeToString()
    out = save_onnx_atomic(model, tmp_path / "big.onnx", external_data_threshold=0)
    assert model.SerializeToString() == before  # the caller's model keeps its weights
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data", "digits-mlp.onnx"]
    assert out.stat().st_size < 10_000
    reloaded = load_model(out).onnx_model
    for a, b in zip(model.graph.initializer, reloaded.graph.initializer):
        np.testing.assert_array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))


def test_save_bytes_atomic_and_sha256(tmp_path):
    path = save_bytes_atomic(b"abc", tmp_path / "f.bin")
    assert path.read_bytes() == b"abc"
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    save_bytes_atomic(b"xyz", path)
    assert path.read_bytes() == b"xyz" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_torchscript_token_model_gets_all_its_required_inputs(tmp_path):
    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(50, 8)
            self.norm = torch.nn.LayerNorm(8)

        def forward(self, ids, mask):
            h = self.emb(ids) * mask.unsqueeze(-1).to(torch.float32)
            return self.norm(h.mean(1))

    path = tmp_path / "enc.pt"
    torch.jit.script(Encoder()).save(str(path))
    handle = open_model(path, trust=True)
    assert [(s.name, s.shape, s.dtype) for s in handle.inputs] == [("ids", (None, None), "int64"),
                                                                    ("mask", (None, None), "int64")]
    assert "forward arguments (ids, mask)" in handle.metadata["input_guess"]
