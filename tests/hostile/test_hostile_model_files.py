"""Hostile model files through the real loader (load_model and open_model, in this process): each gives one
typed, categorized error naming the file; no code from the file runs; the file is unchanged and nothing is
written outside the app's own folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from accelstudio.core.errors import (
    AccelStudioError, CorruptModelError, ExternalDataError, ModelLoadError, ModelTooLargeError, NotAModelError,
    TrustRequiredError, UnsupportedModelError,
)
from accelstudio.core.model.loading import load_model, open_model
from tests import factories as fx


def _renamed(make, new_name: str):
    def build(folder: Path) -> Path:
        src = make(folder)
        return Path(shutil.move(src, folder / new_name))
    return build


def _fifo(folder: Path) -> Path:
    path = folder / "pipe.onnx"
    os.mkfifo(path)
    return path


def _device_link(folder: Path) -> Path:
    path = folder / "zeros.onnx"
    path.symlink_to("/dev/zero")
    return path


def _png_named_pt(folder: Path) -> Path:
    return fx.text_file(folder, "image.pt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))


CASES = {
    # 0-byte files
    "empty.onnx": (lambda d: fx.empty_file(d, "e.onnx"), CorruptModelError),
    "empty.pt": (lambda d: fx.empty_file(d, "e.pt"), CorruptModelError),
    "empty.safetensors": (lambda d: fx.empty_file(d, "e.safetensors"), CorruptModelError),
    "empty.pt2": (lambda d: fx.empty_file(d, "e.pt2"), CorruptModelError),
    # random bytes
    "random.onnx": (lambda d: fx.random_bytes_file(d, "r.onnx"), NotAModelError),
    "random.pt": (lambda d: fx.random_bytes_file(d, "r.pt"), NotAModelError),
    "random.safetensors": (lambda d: fx.random_bytes_file(d, "r.safetensors"), CorruptModelError),
    "random-noext": (lambda d: fx.random_bytes_file(d, "model"), NotAModelError),
    # truncated at 50%
    "truncated.onnx": (lambda d: fx.truncated_copy(fx.onnx_example(d), d), CorruptModelError),
    "truncated-zip.pt": (lambda d: fx.truncated_copy(fx.state_dict_file(d), d), CorruptModelError),
    "truncated-legacy.pt": (lambda d: fx.truncated_copy(fx.state_dict_file(d, legacy=True), d), CorruptModelError),
    "truncated.safetensors": (lambda d: fx.truncated_copy(fx.safetensors_file(d), d), CorruptModelError),
    "truncated.pt2": (lambda d: fx.truncated_copy(fx.pt2_file(d), d), CorruptModelError),
    # text and other kinds under model names
    "html-as.onnx": (fx.text_file, NotAModelError),
    "text-as.pt": (lambda d: fx.text_file(d, "notes.pt", b"just some notes\n"), NotAModelError),
    "lfs-pointer.onnx": (lambda d: fx.text_file(d, "lfs.onnx", b"version https://git-lfs.github.com/spec/v1\n"
                                                              b"oid sha256:abc\nsize 12345\n"), NotAModelError),
    "jpeg-as.onnx": (lambda d: fx.jpeg_like_file(d, "photo.onnx"), NotAModelError),
    "png-as.pt": (_png_named_pt, NotAModelError),
    "zip-of-text-as.safetensors": (lambda d: fx.not_a_torch_zip(d, "archive.safetensors"), NotAModelError),
    "onnx-without-graph": (fx.onnx_without_graph, NotAModelError),
    "folder": (lambda d: (d / "model.onnx").mkdir() or d / "model.onnx", NotAModelError),
    "fifo.onnx": (_fifo, NotAModelError),
    "dev-zero-link.onnx": (_device_link, NotAModelError),
    "over-2gib.onnx": (fx.sparse_huge_onnx, ModelTooLargeError),
    # ONNX external data
    **{f"external-{a}": (lambda d, a=a: fx.hostile_external_onnx(d, a), ExternalDataError)
       for a in fx.EXTERNAL_DATA_ATTACKS},
    "external-length-past-end": (fx.onnx_external_length_past_end, ExternalDataError),
    # operators
    "custom-domain-op": (fx.onnx_custom_op, UnsupportedModelError),
    "future-opset": (fx.onnx_future_opset, UnsupportedModelError),
    # formats that can run code
    "pt2-untrusted": (fx.pt2_file, TrustRequiredError),
    "torchscript-untrusted": (fx.torchscript_file, TrustRequiredError),
    "pickled-module-untrusted": (fx.pickled_module_file, TrustRequiredError),
    **{f"crasher-{a}-untrusted": (lambda d, a=a: fx.crashing_pickle_file(d, a), TrustRequiredError)
       for a in fx.CRASHER_ACTIONS},
    # torch files that lie
    "shape-exceeds-storage.pt": (fx.state_dict_shape_exceeds_storage, CorruptModelError),
    "zip-bomb-64mib.pt": (fx.zip_bomb_pt, ModelTooLargeError),
    "zip-bomb-3gib.pt": (fx.zip_bomb_pt_gigabytes, ModelTooLargeError),
    "zip-not-torch.pt": (fx.not_a_torch_zip, NotAModelError),
    # safetensors headers
    **{f"safetensors-{a}": (lambda d, a=a: fx.hostile_safetensors(d, a), CorruptModelError)
       for a in fx.SAFETENSORS_ATTACKS},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_model_file_gives_a_categorized_error(case, sandbox):
    make, expected = CASES[case]
    path = make(sandbox.inputs)
    sandbox.freeze()
    for load in (lambda: load_model(path), lambda: open_model(str(path))):
        with pytest.raises(AccelStudioError) as info:
            load()
        err = info.value
        assert type(err) is expected, f"{case}: {type(err).__name__}: {err}"
        assert isinstance(err, ModelLoadError) and err.path == path
        text = str(err)
        assert path.name in text and err.category in text, text
    sandbox.assert_untouched()


MARKER_FORMATS = ("zip", "legacy", "raw", "raw0")


@pytest.mark.parametrize("fmt", MARKER_FORMATS)
def test_marker_pickle_never_runs_without_trust(fmt, sandbox):
    marker = sandbox.root / f"MARKER-{fmt}"
    path = fx.malicious_pickle_file(sandbox.inputs, marker, fmt)
    for name in ("renamed.pth", "renamed.onnx", "renamed.safetensors", "renamed.bin"):
        shutil.copy2(path, sandbox.inputs / name)
    sandbox.freeze()
    for candidate in sorted(sandbox.inputs.iterdir()):
        # A protocol-0 pickle is text: under a non-torch name it is refused as text, never decoded.
        text_refusal = fmt == "raw0" and candidate.suffix in (".onnx", ".safetensors")
        expected = NotAModelError if text_refusal else TrustRequiredError
        with pytest.raises(expected) as info:
            load_model(candidate)
        assert candidate.name in str(info.value)
        assert text_refusal or "mkdir" in str(info.value)
        with pytest.raises(expected):
            open_model(str(candidate), backend="torch")
        assert not marker.exists()
    sandbox.assert_untouched()


CONTENT_MISMATCH = {
    "onnx-as.safetensors": (lambda d: fx.onnx_example(d), "m.safetensors", "onnx"),
    "onnx-as.pt": (lambda d: fx.onnx_example(d), "m.pt", "onnx"),
    "safetensors-as.onnx": (lambda d: fx.safetensors_file(d), "m.onnx", "torch"),
    "state-dict-as.onnx": (lambda d: fx.state_dict_file(d), "m.onnx", "torch"),
}


@pytest.mark.parametrize("case", sorted(CONTENT_MISMATCH))
def test_valid_content_under_a_wrong_extension_loads_with_a_note(case, sandbox):
    make, name, backend = CONTENT_MISMATCH[case]
    path = _renamed(make, name)(sandbox.inputs)
    sandbox.freeze()
    handle = load_model(path)
    assert handle.backend == backend
    assert "although the extension" in handle.metadata["format_note"]
    sandbox.assert_untouched()


def test_runtime_hazards_load_and_inspect_without_running(sandbox):
    """Models that crash, explode or hang only when run must open (and be inspected) harmlessly: the GUI
    does exactly this in its own process."""
    from accelstudio.core.model.inspect import inspect_model

    paths = [fx.onnx_einsum_crasher(sandbox.inputs), fx.onnx_constant_of_shape_bomb(sandbox.inputs),
             fx.onnx_endless_loop(sandbox.inputs)]
    sandbox.freeze()
    for path in paths:
        handle = load_model(path)
        assert handle.inputs[0].shape == (None, 4)
        inspect_model(handle)
    sandbox.assert_untouched()
