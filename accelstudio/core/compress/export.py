"""Write a (compressed) model to disk; the format follows the file extension.

- .onnx: ONNX models as they are; torch modules through torch.onnx.export (TorchScript-based exporter,
  opset 17, a dynamic batch axis, input names from the handle).
- .pt: TorchScript (torch.jit.trace; for quantized modules trace, then script). Load with torch.jit.load.
- .safetensors: the float state dict. Only for float torch modules whose tensors still fit their bundled
  architecture; otherwise the file could not be loaded back, so .onnx or .pt is suggested instead.

Every file is written to a temp file in the target folder and moved into place (os.replace), and the recipe
goes beside it as `<stem>.recipe.json`. A model's own source file is never overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from accelstudio.core.errors import CompressionError
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.recipe import Recipe

EXPORT_FORMATS = (".onnx", ".pt", ".safetensors")
ONNX_OPSET = 17
OUTPUT_NAME = "logits"
INPUT_SEED = 0


def example_inputs(handle: ModelHandle, batch: int = 1, calib: dict[str, np.ndarray] | None = None) -> tuple:
    """Torch tensors that fit `handle.inputs`: the first rows of `calib` when given, else fixed-seed values
    drawn from each input's value range ([0, 1] when unknown; zeros for integer inputs)."""
    import torch

    rng = np.random.default_rng(INPUT_SEED)
    tensors = []
    for spec in handle.inputs:
        if calib is not None and spec.name in calib and len(calib[spec.name]) >= batch:
            arr = np.asarray(calib[spec.name][:batch])
        elif np.issubdtype(np.dtype(spec.dtype), np.integer):
            arr = np.zeros(spec.concrete_shape(batch), dtype=spec.dtype)
        else:
            low, high = spec.value_range or (0.0, 1.0)
            arr = rng.uniform(low, high, size=spec.concrete_shape(batch)).astype(spec.dtype)
        tensors.append(torch.from_numpy(np.ascontiguousarray(arr)))
    return tuple(tensors)


def export_model(handle: ModelHandle, path: str | Path, recipe: Recipe | None = None) -> list[Path]:
    """Write `handle`'s model to `path` (format from the extension) and, given a recipe, `<stem>.recipe.json`.

    Returns the paths written. Raises CompressionError for an unknown extension, for a path that is the
    model's own source file, and for a model that cannot be written in that format (saying which works).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise CompressionError(f"{path}: unknown output format '{suffix or '(none)'}'; "
                               f"allowed extensions: {', '.join(EXPORT_FORMATS)}")
    sources = [handle.source, handle.metadata.get("derived_from")]
    if any(src and _same_file(path, Path(src)) for src in sources):
        raise CompressionError(f"{path}: this is the model's own source file; choose another output path")
    if path.is_dir():
        raise CompressionError(f"{path}: is a folder; give a file name ending in {suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = {".onnx": _write_onnx, ".pt": _write_torchscript, ".safetensors": _write_safetensors}[suffix]
    writer(handle, path, recipe)
    written = [path]
    data_file = path.with_name(path.name + ".data")
    if suffix == ".onnx" and handle.backend == "onnx" and data_file.exists() \
            and data_file.stat().st_mtime >= path.stat().st_mtime - 1:
        written.append(data_file)
    if recipe is not None:
        recipe_path = path.with_name(path.stem + ".recipe.json")
        _atomic_write(recipe_path, lambda tmp: tmp.write_text(recipe.to_json() + "\n", encoding="utf-8"))
        written.append(recipe_path)
    return written


def to_onnx_handle(handle: ModelHandle) -> ModelHandle:
    """The ONNX form of a torch handle (exported in memory, same layer names); ONNX handles come back as is."""
    import onnx

    if handle.backend == "onnx":
        return handle
    with tempfile.TemporaryDirectory(prefix="accelstudio-export-") as tmp:
        target = Path(tmp) / "model.onnx"
        _export_torch_onnx(handle, target)
        model = onnx.load(str(target))
    metadata = {k: v for k, v in handle.metadata.items() if k not in ("file_bytes", "file_format")}
    if handle.source is not None:
        metadata.setdefault("derived_from", str(handle.source))
    return handle.with_model(onnx_model=model, source=None, source_format="onnx", metadata=metadata)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_onnx(handle: ModelHandle, path: Path, recipe: Recipe | None) -> None:
    if handle.backend == "onnx":
        # large models get their weights in '<name>.data' beside the file; both are written atomically
        from accelstudio.core.model.loading_onnx import save_onnx_atomic

        save_onnx_atomic(handle.onnx_model, path)
        return
    _atomic_write(path, lambda tmp: _export_torch_onnx(handle, tmp, shown=path))


def _export_torch_onnx(handle: ModelHandle, target: Path, shown: Path | None = None) -> None:
    import torch

    names = [spec.name for spec in handle.inputs]
    axes = {name: {0: "batch"} for name in names + [OUTPUT_NAME]}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(handle.module, example_inputs(handle), str(target), input_names=names,
                              output_names=[OUTPUT_NAME], dynamic_axes=axes, opset_version=ONNX_OPSET,
                              dynamo=False)
    except Exception as exc:
        raise CompressionError(
            f"{shown or target.name}: torch could not export this model to ONNX ({_first_line(exc)}). Quantized torch "
            "modules do not export: export the float (or pruned) model to .onnx and quantize the ONNX form "
            "(accelstudio apply ... --out model.onnx does this)") from None


def _write_torchscript(handle: ModelHandle, path: Path, recipe: Recipe | None) -> None:
    import torch

    if handle.backend != "torch":
        raise CompressionError(f"{path}: an ONNX model cannot be written as TorchScript; use a .onnx output")
    module = handle.module
    if isinstance(module, torch.jit.ScriptModule):
        scripted = module
    else:
        scripted = _script(module, example_inputs(handle), path)
    _atomic_write(path, lambda tmp: torch.jit.save(scripted, str(tmp)))


def _script(module, inputs: tuple, path: Path):
    import torch

    errors = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for convert in (lambda: torch.jit.trace(module, inputs, check_trace=False), lambda: torch.jit.script(module)):
            try:
                scripted = convert()
                scripted(*inputs)
                return scripted
            except Exception as exc:
                errors.append(_first_line(exc))
    raise CompressionError(f"{path}: this model cannot be saved as TorchScript (trace: {errors[0]}; "
                           f"script: {errors[1]}); write .onnx instead")


def _write_safetensors(handle: ModelHandle, path: Path, recipe: Recipe | None) -> None:
    import torch
    from safetensors.torch import save_file

    if handle.backend != "torch":
        raise CompressionError(f"{path}: an ONNX model cannot be written as safetensors; use a .onnx output")
    state = handle.module.state_dict()
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor) or v.is_quantized]
    if bad:
        raise CompressionError(f"{path}: safetensors holds plain tensors, but this model is quantized "
                               f"(e.g. '{bad[0]}'); write .pt (TorchScript) or .onnx instead")
    _check_fits_architecture(handle, state, path)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    meta = {"format": "pt"}
    if handle.architecture:
        meta["architecture"] = handle.architecture
    if recipe is not None:
        meta["recipe"] = json.dumps(recipe.to_dict())
    _atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def _check_fits_architecture(handle: ModelHandle, state: dict, path: Path) -> None:
    if not handle.architecture:
        return
    from accelstudio.core.model.architectures import get_architecture

    try:
        reference = get_architecture(handle.architecture).build().state_dict()
    except KeyError:
        return
    ref_shapes = {k: tuple(v.shape) for k, v in reference.items()}
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    if set(ref_shapes) != set(shapes):
        why = "its layers were replaced (weight-only quantization stores packed weights and scales)"
    elif ref_shapes != shapes:
        why = "structured pruning changed layer widths"
    else:
        return
    raise CompressionError(f"{path}: the tensors no longer fit architecture '{handle.architecture}' ({why}), "
                           "so a safetensors file could not be loaded back; write .pt (TorchScript) or .onnx")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
