"""Hostile data sets through the real load_dataset: pickles are never unpickled, every bad file gives a
DatasetError naming it and saying what is wrong, and the file is left unchanged."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from accelstudio.core.data.datasets import load_dataset
from accelstudio.core.errors import DatasetError
from accelstudio.core.model.loading import load_example
from hostile_helpers import digits_npz, image_folder, pickled_npy, pickled_npz
from tests import factories as fx


@pytest.fixture(scope="module")
def mlp():
    return load_example("digits-mlp")


def _npz_member_with_shape(folder: Path, shape: tuple[int, ...]) -> Path:
    """A .npz whose x.npy header declares `shape` (float32) over a few bytes of data."""
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 64), np.float32))
    raw = buf.getvalue()
    header_len = int.from_bytes(raw[8:10], "little")
    header = raw[10:10 + header_len].replace(b"(2, 64)", str(shape).encode()).ljust(header_len - 1)[:header_len - 1]
    path = folder / "huge_header.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", raw[:10] + header + b"\n" + raw[10 + header_len:])
    return path


def _png_bomb(folder: Path) -> Path:
    """A class folder holding a PNG whose header claims 60000 x 60000 pixels (a decompression bomb)."""
    root = image_folder(folder, bad=None)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    (root / "0" / "bomb.png").write_bytes(png)
    return root


NAN = np.full((20, 64), 0.5, np.float32)
NAN[3, 7] = np.nan
INF = np.full((20, 64), 0.5, np.float32)
INF[5, 0] = np.inf

CASES = {
    "pickled.npy": (lambda d, m: pickled_npy(d, m), "pickled objects"),
    "pickled.npz": (lambda d, m: pickled_npz(d, m), "pickled objects"),
    "plain.npy": (lambda d, m: np.save(d / "plain.npy", np.zeros((4, 64), np.float32)) or d / "plain.npy",
                  "single .npy array"),
    "wrong-rank": (lambda d, m: digits_npz(d, "rank.npz", x=np.zeros((20, 8, 8), np.float32)), "rank"),
    "wrong-shape": (lambda d, m: digits_npz(d, "shape.npz", x=np.zeros((20, 63), np.float32)), "dimension 1"),
    "string-dtype": (lambda d, m: digits_npz(d, "str.npz", x=np.full((20, 64), "a")), "dtype"),
    "complex-dtype": (lambda d, m: digits_npz(d, "cplx.npz", x=np.zeros((20, 64), np.complex64)), "dtype"),
    "nan": (lambda d, m: digits_npz(d, "nan.npz", x=NAN), "NaN or Inf"),
    "inf": (lambda d, m: digits_npz(d, "inf.npz", x=INF), "NaN or Inf"),
    "empty": (lambda d, m: digits_npz(d, "empty.npz", x=np.zeros((0, 64), np.float32), labels=np.zeros(0, int)),
              "empty"),
    "no-arrays": (lambda d, m: np.savez(d / "none.npz") or d / "none.npz", "missing input array"),
    "labels-count": (lambda d, m: digits_npz(d, "count.npz", labels=np.zeros(19, np.int64)), "19 entries"),
    "labels-range": (lambda d, m: digits_npz(d, "range.npz", labels=np.full(20, 10)), "10 classes"),
    "labels-negative": (lambda d, m: digits_npz(d, "neg.npz", labels=np.full(20, -1)), "negative"),
    "labels-fractional": (lambda d, m: digits_npz(d, "frac.npz", labels=np.full(20, 0.5)), "integer"),
    "labels-nan": (lambda d, m: digits_npz(d, "lnan.npz", labels=np.full(20, np.nan)), "integer"),
    "labels-2d": (lambda d, m: digits_npz(d, "l2d.npz", labels=np.zeros((20, 3), int)), "shape"),
    "empty-file.npz": (lambda d, m: fx.empty_file(d, "e.npz"), "not a readable .npz"),
    "random.npz": (lambda d, m: fx.random_bytes_file(d, "r.npz"), "not a readable .npz"),
    "html.npz": (lambda d, m: fx.text_file(d, "page.npz"), "not a readable .npz"),
    "truncated.npz": (lambda d, m: fx.truncated_copy(digits_npz(d, "full.npz", n=200), d), "not a readable .npz"),
    "huge-declared-shape.npz": (lambda d, m: _npz_member_with_shape(d, (10**11, 64)), "memory"),
    "missing": (lambda d, m: d / "nope.npz", "not found"),
    "folder-without-classes": (lambda d, m: (d / "flat").mkdir() or d / "flat", "no class sub-folders"),
    "unreadable-image": (lambda d, m: image_folder(d), "unreadable image"),
    "image-bomb": (lambda d, m: _png_bomb(d), "unreadable image"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_set_gives_a_dataset_error(case, mlp, sandbox):
    marker = sandbox.root / "MARKER"
    path = CASES[case][0](sandbox.inputs, marker)
    sandbox.freeze()
    with pytest.raises(DatasetError) as info:
        load_dataset(path, mlp)
    text = str(info.value)
    assert CASES[case][1] in text, text
    assert info.value.path is not None and info.value.path.name in text
    assert not marker.exists()
    sandbox.assert_untouched()


def test_image_folder_error_names_the_bad_image(mlp, sandbox):
    folder = image_folder(sandbox.inputs)
    with pytest.raises(DatasetError) as info:
        load_dataset(folder, mlp)
    assert info.value.path.name == "broken.png"
