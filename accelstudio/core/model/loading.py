"""Open model files safely: detect the format by content (extension second) and load it into a ModelHandle.

Formats: ONNX (with external data confined to the model's folder), safetensors and weights-only state
dicts for a bundled architecture (always safe), and TorchScript, torch.export .pt2 and pickled nn.Modules,
which can execute code and therefore load only with trust=True. Every failure caused by a file is a typed
AccelStudioError that names the file and says what to do.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from accelstudio.core.model.architectures import get_architecture
from accelstudio.core.errors import ModelLoadError, NotAModelError, UnsupportedModelError
from accelstudio.core.model.examples import get_example
from accelstudio.core.model.loading_common import (
    MAX_SINGLE_ONNX_BYTES, SUPPORTED_EXTENSIONS, describe_text, empty_file_error, extension_family,
    family_mismatch_note, file_sha256, read_head, regular_file_size, save_bytes_atomic, sniff_content,
    supported_extensions_text,
)
from accelstudio.core.model.loading_onnx import EXTERNAL_DATA_THRESHOLD, load_onnx, save_onnx_atomic
from accelstudio.core.model.loading_torch import (
    architecture_inputs, build_module, load_safetensors, load_torch_pickle, load_torch_zip, read_safetensors,
)
from accelstudio.core.model.handle import ModelHandle

EXAMPLE_PREFIX = "example:"

__all__ = [
    "EXAMPLE_PREFIX", "EXTERNAL_DATA_THRESHOLD", "MAX_SINGLE_ONNX_BYTES", "SUPPORTED_EXTENSIONS",
    "file_sha256", "load_example", "load_model", "open_model", "save_bytes_atomic", "save_onnx_atomic",
]


def load_model(path: str | Path, *, trust: bool = False, architecture: str | None = None) -> ModelHandle:
    """Load a model file. Code-bearing formats need `trust=True`; `architecture` names the bundled
    architecture for a weights-only file (otherwise it is matched from the weights' names and shapes).

    The file is only read, never modified. Raises a ModelLoadError subclass for any bad file.
    """
    path = Path(path)
    size = regular_file_size(path)
    if size == 0:
        raise empty_file_error(path)
    head = read_head(path)
    kind = sniff_content(head, size)
    note = family_mismatch_note(path, kind)
    try:
        handle = _dispatch(path, size, head, kind, trust=trust, architecture=architecture)
    except ModelLoadError as e:
        if note is None:
            raise
        raise type(e)(e.path, f"{e.detail} [{note}]") from None
    if note:
        handle = replace(handle, metadata={**handle.metadata, "format_note": note})
    return handle


def _dispatch(path: Path, size: int, head: bytes, kind: str, *, trust: bool, architecture: str | None) -> ModelHandle:
    family = extension_family(path)
    if kind == "zip":
        return load_torch_zip(path, size, trust=trust, architecture=architecture)
    if kind == "pickle":
        return load_torch_pickle(path, size, trust=trust, architecture=architecture)
    if kind == "safetensors" or (kind == "unknown" and family == "safetensors"):
        return load_safetensors(path, size, architecture)
    if kind == "onnx" or (kind == "unknown" and family == "onnx"):
        return load_onnx(path, size)
    if kind == "text" and family == "torch" and _is_text_pickle(path):
        return load_torch_pickle(path, size, trust=trust, architecture=architecture)
    if kind == "text":
        raise NotAModelError(path, f"is {describe_text(head)} (supported model files: {supported_extensions_text()})")
    if family is not None:
        raise NotAModelError(path, f"its content is not a {path.suffix} model (no known file signature); "
                                   "the file is damaged or of another kind, save or download it again")
    raise NotAModelError(path, f"unrecognised file type '{path.suffix or '(no extension)'}'; supported model "
                               f"files: {supported_extensions_text()}")


def _is_text_pickle(path: Path) -> bool:
    """True when a text-looking .pt/.pkl is an old protocol-0 pickle (decoded, never executed)."""
    import pickletools

    try:
        with open(path, "rb") as f:
            for _ in pickletools.genops(f):
                pass
        return True
    except Exception:
        return False


def load_example(name: str, backend: str = "torch") -> ModelHandle:
    """A bundled example: backend 'torch' builds its architecture with model.safetensors, 'onnx' loads model.onnx."""
    ref = Path(EXAMPLE_PREFIX + name)
    try:
        info = get_example(name)
    except KeyError as e:
        raise NotAModelError(ref, str(e.args[0]) if e.args else f"no bundled example '{name}'") from None
    if backend not in ("torch", "onnx"):
        raise UnsupportedModelError(ref, f"unknown backend '{backend}'; use 'torch' or 'onnx'")
    arch = get_architecture(info.architecture)
    common = dict(source_format="example", inputs=architecture_inputs(arch.name), architecture=arch.name,
                  example=info.name, num_classes=arch.num_classes)
    if backend == "onnx":
        loaded = load_onnx(info.onnx_path, regular_file_size(info.onnx_path))
        onnx_names = [spec.name for spec in loaded.inputs]
        if onnx_names and onnx_names[0] != "x":  # keep the graph's own input name
            common["inputs"] = tuple(replace(s, name=onnx_names[0]) for s in common["inputs"])
        return replace(loaded, **common, metadata={**loaded.metadata, "file_format": "onnx"})
    path = info.weights_path
    size = regular_file_size(path)
    module, _ = build_module(path, read_safetensors(path, size), arch.name)
    return ModelHandle(backend="torch", module=module, source=path,
                       metadata={"file_bytes": size, "file_format": "safetensors"}, **common)


def open_model(ref: str | Path, *, trust: bool = False, backend: str | None = None,
               architecture: str | None = None) -> ModelHandle:
    """Open 'example:<name>' (backend torch unless given) or a model file path."""
    text = str(ref)
    if text.startswith(EXAMPLE_PREFIX):
        return load_example(text[len(EXAMPLE_PREFIX):], backend or "torch")
    handle = load_model(ref, trust=trust, architecture=architecture)
    if backend is not None and backend != handle.backend:
        raise UnsupportedModelError(Path(ref), f"this file is a {handle.backend} model and cannot be opened with "
                                               f"the {backend} backend; convert it first (export to "
                                               f"{'ONNX' if backend == 'onnx' else 'a torch format'})")
    return handle
