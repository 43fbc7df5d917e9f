"""Pieces shared by the model loaders: format sniffing from a file's first bytes, atomic writes, hashing.

Nothing here parses a model or runs code from a file: it only looks at bytes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from accelstudio.core.errors import CorruptModelError, NotAModelError

MAX_SINGLE_ONNX_BYTES = 2 * 1024**3  # protobuf cannot parse a single message of 2 GiB or more
HEAD_BYTES = 4096

ONNX_EXTENSIONS = (".onnx",)
EXPORT_EXTENSIONS = (".pt2",)
SAFETENSORS_EXTENSIONS = (".safetensors",)
TORCH_EXTENSIONS = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".jit", ".torchscript")
SUPPORTED_EXTENSIONS = ONNX_EXTENSIONS + EXPORT_EXTENSIONS + SAFETENSORS_EXTENSIONS + TORCH_EXTENSIONS

# extension -> format family; content sniffing gives the same families
_EXTENSION_FAMILY = {
    **{e: "onnx" for e in ONNX_EXTENSIONS},
    **{e: "torch" for e in EXPORT_EXTENSIONS + TORCH_EXTENSIONS},
    **{e: "safetensors" for e in SAFETENSORS_EXTENSIONS},
}
_CONTENT_FAMILY = {"onnx": "onnx", "zip": "torch", "pickle": "torch", "safetensors": "safetensors"}
_FAMILY_WORDS = {"onnx": "an ONNX model", "torch": "a PyTorch file", "safetensors": "a safetensors file"}


def supported_extensions_text() -> str:
    """The supported file extensions, for error messages."""
    return ", ".join(SUPPORTED_EXTENSIONS)


def extension_family(path: Path) -> str | None:
    """'onnx', 'torch' or 'safetensors' from the file name's extension, None when it is no model extension."""
    return _EXTENSION_FAMILY.get(path.suffix.lower())


def regular_file_size(path: Path) -> int:
    """The size of `path`, which must be a readable regular file (not a folder, pipe or device)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotAModelError(path, "no such file; check the path") from None
    except OSError as e:
        raise NotAModelError(path, f"cannot be read ({e.strerror}); check the path and permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise NotAModelError(path, "is a folder; choose the model file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise NotAModelError(path, "is not a regular file (a pipe or device?); choose a model file")
    return st.st_size


def read_head(path: Path, n: int = HEAD_BYTES) -> bytes:
    """The first `n` bytes of the file."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as e:
        raise NotAModelError(path, f"cannot be read ({e.strerror}); check permissions") from None


def sniff_content(head: bytes, size: int) -> str:
    """What the first bytes say the file is: 'zip', 'pickle', 'safetensors', 'onnx', 'text' or 'unknown'."""
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 10:
        n = int.from_bytes(head[:8], "little")
        if 2 <= n <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if looks_like_onnx(head):
        return "onnx"
    if _looks_like_text(head):
        return "text"
    return "unknown"


def looks_like_onnx(head: bytes) -> bool:
    """True when the bytes start like a serialized ONNX ModelProto (field 1, ir_version, a small varint)."""
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 32


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a multi-byte character cut at the end of the sample is fine
            return False
        text = head[: e.start].decode("utf-8")
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return printable >= 0.95 * max(1, len(text))


def describe_text(head: bytes) -> str:
    """A short description of a text file, with a hint when it is a known impostor (LFS pointer, web page)."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    lower = text[:200].lower()
    if lower.startswith("version https://git-lfs"):
        return "a Git LFS pointer, not the model itself; fetch the real file with `git lfs pull`"
    if lower.startswith(("<!doctype html", "<html")) or "<html" in lower:
        return "an HTML page (a failed or redirected download?), not a model; download the file again"
    if lower.startswith("<"):
        return "an XML/HTML text file, not a model"
    if lower.startswith(("{", "[")):
        return "a JSON text file, not a model"
    return "a text file, not a model"


def family_mismatch_note(path: Path, content_kind: str) -> str | None:
    """A note when the content's format family disagrees with the extension (None when they agree)."""
    found = _CONTENT_FAMILY.get(content_kind)
    expected = extension_family(path)
    if found is None or found == expected:
        return None
    ext = path.suffix or "(none)"
    if expected is None:
        return f"content detected as {_FAMILY_WORDS[found]}; the extension {ext} is not a model extension"
    return f"content detected as {_FAMILY_WORDS[found]} although the extension {ext} says {_FAMILY_WORDS[expected]}"


def empty_file_error(path: Path) -> Exception:
    """The error for a 0-byte file: corrupt when the name promises a model, otherwise not a model."""
    detail = "empty file (0 bytes); the download or save did not finish, get the file again"
    if extension_family(path) is not None:
        return CorruptModelError(path, detail)
    return NotAModelError(path, detail)


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so large models do not have to fit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_temp_path(path: Path) -> Path:
    """A new empty temp file in `path`'s folder (so that os.replace onto `path` is atomic)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def save_bytes_atomic(data: bytes, path: str | Path) -> Path:
    """Write `data` to `path` atomically: a temp file in the same folder, fsync, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
