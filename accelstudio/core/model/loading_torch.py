"""Safe PyTorch loading: safetensors and weights-only state dicts by default; code-bearing formats need trust.

TorchScript archives, torch.export .pt2 archives and pickled nn.Modules can execute code while loading,
so they are only opened with trust=True. There is no fallback from a safe load to an unsafe one.
"""

from __future__ import annotations

import inspect
import json
import math
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from accelstudio.core.model.architectures import ARCHITECTURES, get_architecture, match_architecture
from accelstudio.core.errors import CorruptModelError, NotAModelError, TrustRequiredError, UnsupportedModelError
from accelstudio.core.model.loading_pickle import (
    PickleScan, check_inflation, classify_zip, open_zip, scan_pickle_file, scan_zip_pickle,
)
from accelstudio.core.model.handle import InputSpec, ModelHandle

MAX_SAFETENSORS_HEADER = 100 * 1024**2
SAFETENSORS_DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "I16": 16, "U16": 16,
                          "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64}
GUESSED_SPATIAL = (32, 32)
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")
_KINDS = {"torchscript": "TorchScript archive", "export": "torch.export (.pt2) archive",
          "pickle": "pickled Python object"}


def trust_error(path: Path, kind: str, extra: str = "") -> TrustRequiredError:
    """The error for a file that can execute code when loaded."""
    return TrustRequiredError(path, f"this {_KINDS[kind]} can execute code when it is loaded{extra}; open it only "
                                    "if you trust its source: pass --trust (CLI) or confirm in the app")


# ---------------------------------------------------------------- safetensors

def validate_safetensors_header(path: Path, size: int) -> dict:
    """Check a safetensors header before the library reads it; return the parsed header."""
    def bad(why: str) -> CorruptModelError:
        return CorruptModelError(path, f"invalid safetensors header: {why}; save or download the file again")

    if size < 8:
        raise bad(f"the file has {size} bytes, fewer than the 8-byte header length")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n >= size - 8 + 1 or n > MAX_SAFETENSORS_HEADER:
            raise bad(f"declared header length {n} exceeds the file ({size} bytes) or the 100 MB limit")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise bad(f"header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    _check_entries(header, size - 8 - n, bad)
    return header


def _check_entries(header: dict, data_size: int, bad) -> None:
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise bad("__metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict) or info.get("dtype") not in SAFETENSORS_DTYPE_BITS:
            dtype = info.get("dtype") if isinstance(info, dict) else None
            raise bad(f"tensor '{name}' has unknown dtype {dtype!r}")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise bad(f"tensor '{name}' has an invalid shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
            raise bad(f"tensor '{name}' has invalid data_offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end <= data_size:
            raise bad(f"tensor '{name}' data_offsets {offsets} are outside the data ({data_size} bytes)")
        need = (math.prod(shape) * SAFETENSORS_DTYPE_BITS[info["dtype"]] + 7) // 8
        if end - begin != need:
            raise bad(f"tensor '{name}' spans {end - begin} bytes but its shape {shape} needs {need}")
        spans.append((begin, end, name))
    spans.sort()
    for (_, prev_end, prev), (begin, end, name) in zip(spans, spans[1:]):
        if begin < prev_end and end > begin:
            raise bad(f"tensors '{prev}' and '{name}' overlap")


def read_safetensors(path: Path, size: int) -> dict[str, torch.Tensor]:
    """A validated safetensors file as a dict of CPU tensors."""
    validate_safetensors_header(path, size)
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # SafetensorError, or a dtype this torch lacks
        raise CorruptModelError(path, f"safetensors could not read it ({e}); save it again") from None


def load_safetensors(path: Path, size: int, architecture: str | None) -> ModelHandle:
    """A bundled architecture with weights from a safetensors file."""
    return state_dict_handle(path, read_safetensors(path, size), "safetensors", architecture, size)


# ---------------------------------------------------------------- state dicts

def extract_state_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """The tensor dict inside `obj` (plain, or under 'state_dict'/'model'...), 'module.' prefixes removed."""
    if not isinstance(obj, Mapping):
        return None
    candidates = [obj] + [obj[k] for k in _STATE_DICT_KEYS if isinstance(obj.get(k), Mapping)]
    for cand in candidates:
        if cand and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in cand.items()):
            sd = dict(cand)
            if all(k.startswith("module.") for k in sd):
                sd = {k[len("module."):]: v for k, v in sd.items()}
            return sd
    return None


def architecture_inputs(name: str) -> tuple[InputSpec, ...]:
    """The input spec of a bundled architecture: x, dynamic batch, float32 in [0, 1]."""
    arch = get_architecture(name)
    return (InputSpec("x", (None,) + tuple(arch.input_shape[1:]), "float32", (0.0, 1.0)),)


def build_module(path: Path, state_dict: dict[str, torch.Tensor], architecture: str | None) -> tuple[nn.Module, str]:
    """Build the bundled architecture that fits `state_dict` (or the named one) and load the weights."""
    known = ", ".join(sorted(ARCHITECTURES))
    name = architecture or match_architecture(state_dict)
    if name is None:
        raise UnsupportedModelError(path, f"these weights ({len(state_dict)} tensors) match no bundled "
                                          f"architecture (known: {known}); pass the architecture explicitly "
                                          "(architecture=NAME), or save the whole model as TorchScript or ONNX")
    if name not in ARCHITECTURES:
        raise UnsupportedModelError(path, f"unknown architecture '{name}'; known: {known}")
    module = get_architecture(name).build()
    _check_fits(path, module, state_dict, name)
    try:
        module.load_state_dict(state_dict, strict=True)
    except (RuntimeError, ValueError) as e:
        raise CorruptModelError(path, f"weights do not load into {name} ({str(e).splitlines()[0]})") from None
    return module.eval(), name


def _check_fits(path: Path, module: nn.Module, sd: dict[str, torch.Tensor], name: str) -> None:
    ref = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in sd.items()}
    problems = [f"missing {k}" for k in ref if k not in got][:3]
    problems += [f"unexpected {k}" for k in got if k not in ref][:3]
    problems += [f"{k} is {got[k]} not {ref[k]}" for k in ref if k in got and got[k] != ref[k]][:3]
    if problems:
        raise UnsupportedModelError(path, f"weights do not fit architecture '{name}': {'; '.join(problems)}; "
                                          f"choose another architecture (known: {', '.join(sorted(ARCHITECTURES))})")


def state_dict_handle(path: Path, sd: dict[str, torch.Tensor], fmt: str, architecture: str | None,
                      size: int) -> ModelHandle:
    """A handle for a bundled architecture built from a weights-only file."""
    module, name = build_module(path, sd, architecture)
    return ModelHandle(backend="torch", source_format=fmt, inputs=architecture_inputs(name), module=module,
                       source=path, architecture=name, num_classes=get_architecture(name).num_classes,
                       metadata={"file_bytes": size})


def load_weights_only(path: Path, size: int, architecture: str | None) -> ModelHandle:
    """torch.load(weights_only=True) of a state-dict file whose scan showed no code-bearing globals."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise trust_error(path, "pickle", " (it holds Python objects, not only tensors)") from None
    except Exception as e:  # RuntimeError from bad storages, EOFError, zip errors...
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "magic number" in reason.lower():
            raise UnsupportedModelError(path, "a plain pickle, not a torch.save file; save the weights with "
                                              "torch.save(model.state_dict(), ...) or safetensors") from None
        raise CorruptModelError(path, f"cannot read the tensors ({reason}); save the file again") from None
    sd = extract_state_dict(obj)
    if sd is None:
        raise UnsupportedModelError(path, "holds no state dict (a mapping of names to tensors); save "
                                          "model.state_dict() or the whole model as TorchScript")
    return state_dict_handle(path, sd, "state_dict", architecture, size)


# ---------------------------------------------------------------- entry points

def load_torch_zip(path: Path, size: int, *, trust: bool, architecture: str | None) -> ModelHandle:
    """A zip-based torch file: TorchScript, .pt2, or torch.save (state dict or pickled module)."""
    with open_zip(path) as zf:
        infos = zf.infolist()
        check_inflation(path, size, infos)
        kind, member = classify_zip([i.filename for i in infos])
        if kind == "other":
            raise NotAModelError(path, "is a zip archive but not a PyTorch file (no TorchScript code, exported "
                                       "program or data.pkl)")
        scan = _scan_member(path, zf, member) if kind == "pickle" else None
    if kind == "pickle":
        weights = _weights_only_unless_code(path, size, scan, trust, architecture)
        if weights is not None:
            return weights
    elif not trust:
        raise trust_error(path, kind, _globals_note(scan))
    if kind == "torchscript":
        return _trusted(path, size, "torchscript", lambda: torch.jit.load(str(path), map_location="cpu"))
    if kind == "export":
        return load_exported(path, size)
    return _trusted(path, size, "pickle", lambda: torch.load(str(path), map_location="cpu", weights_only=False),
                    architecture)


def load_torch_pickle(path: Path, size: int, *, trust: bool, architecture: str | None) -> ModelHandle:
    """A legacy torch.save file or a bare pickle."""
    try:
        scan = scan_pickle_file(path)
    except (ValueError, EOFError, OverflowError, MemoryError) as e:
        raise CorruptModelError(path, f"is not a readable pickle ({e}); save the file again") from None
    weights = _weights_only_unless_code(path, size, scan, trust, architecture)
    if weights is not None:
        return weights
    if scan.legacy_torch:
        loader = lambda: torch.load(str(path), map_location="cpu", weights_only=False)  # noqa: E731
    else:
        loader = lambda: pickle.loads(path.read_bytes())  # noqa: E731,S301 - trusted by the user
    return _trusted(path, size, "pickle", loader, architecture)


def _scan_member(path: Path, zf, member: str) -> PickleScan:
    try:
        return scan_zip_pickle(zf, member)
    except Exception as e:  # ValueError for bad opcodes, zlib/CRC errors...
        raise CorruptModelError(path, f"its data.pkl is not a readable pickle ({e}); save the file again") from None


def _weights_only_unless_code(path: Path, size: int, scan: PickleScan, trust: bool,
                              architecture: str | None) -> ModelHandle | None:
    """A pickle that names no code loads weights-only; None when it must be loaded as trusted code (the user
    trusted it), TrustRequiredError when it needs trust and has none."""
    if not scan.code_globals:
        try:
            return load_weights_only(path, size, architecture)
        except TrustRequiredError:
            if not trust:
                raise
    if not trust:
        raise trust_error(path, "pickle", _globals_note(scan))
    return None


def _globals_note(scan: PickleScan | None) -> str:
    if scan is None or not scan.code_globals:
        return ""
    return f" (it would import {', '.join(scan.code_globals[:3])})"


def _trusted(path: Path, size: int, fmt: str, loader, architecture: str | None = None) -> ModelHandle:
    """Run a code-executing loader the user has trusted and wrap the result."""
    try:
        obj = loader()
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CorruptModelError(path, f"could not be loaded ({reason})") from None
    if not isinstance(obj, nn.Module):
        sd = extract_state_dict(obj)
        if sd is not None:
            return state_dict_handle(path, sd, "state_dict", architecture, size)
        raise UnsupportedModelError(path, f"holds a {type(obj).__name__}, not a torch nn.Module or state dict")
    obj.eval()
    inputs, meta = guess_inputs(obj)
    return ModelHandle(backend="torch", source_format=fmt, inputs=inputs, module=obj, source=path,
                       metadata={"file_bytes": size, **meta})


def load_exported(path: Path, size: int) -> ModelHandle:
    """A trusted torch.export archive; inputs come from the exported program's signature."""
    try:
        program = torch.export.load(str(path))
        module = program.module()
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CorruptModelError(path, f"could not be loaded as an exported program ({reason})") from None
    for attr in ("train", "eval"):  # ExportedProgram.module() blocks these; the graph's mode is fixed anyway
        if attr in module.__dict__:
            delattr(module, attr)
    module.eval()
    return ModelHandle(backend="torch", source_format="export", inputs=exported_inputs(program), module=module,
                       source=path, metadata={"file_bytes": size})


def exported_inputs(program) -> tuple[InputSpec, ...]:
    """User inputs of an ExportedProgram; symbolic (dynamic) dimensions become None."""
    user = set(program.graph_signature.user_inputs)
    specs = []
    for node in program.graph.nodes:
        if node.op != "placeholder" or node.name not in user:
            continue
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor):
            shape = tuple(d if isinstance(d, int) else None for d in val.shape)
            specs.append(InputSpec(node.name, shape, str(val.dtype).removeprefix("torch.")))
    return tuple(specs)


def guess_inputs(module: nn.Module) -> tuple[tuple[InputSpec, ...], dict]:
    """An input spec from the first Embedding (N, S) int64 token ids, Linear (N, in) or Conv2d (N, C, 32, 32)
    layer; the guess is noted."""
    name = _first_argument(module)
    for layer_name, layer in module.named_modules():
        kind = getattr(layer, "original_name", None) or type(layer).__name__
        weight = getattr(layer, "weight", None)
        if not isinstance(weight, torch.Tensor):
            continue
        if kind == "Embedding" and weight.dim() == 2:  # a model that starts by looking up token ids
            # the other required arguments of a token model (attention mask, token type ids) are (N, S) too
            names = [name] + [n for n in _required_arguments(module)[1:] if n != name]
            note = (f"guessed from the first Embedding layer '{layer_name or 'root'}'"
                    + (f" and the forward arguments ({', '.join(names)})" if len(names) > 1 else ""))
            specs = tuple(InputSpec(n, (None, None), "int64") for n in names)
            return specs, {"input_guessed": True, "input_guess": note}
        if kind == "Linear" and weight.dim() == 2:
            shape: tuple[int | None, ...] = (None, int(weight.shape[1]))
        elif kind == "Conv2d" and weight.dim() == 4:
            channels = int(weight.shape[1]) * int(getattr(layer, "groups", 1))
            shape = (None, channels) + GUESSED_SPATIAL
        else:
            continue
        note = f"guessed from the first {kind} layer '{layer_name or 'root'}'"
        return (InputSpec(name, shape, "float32"),), {"input_guessed": True, "input_guess": note}
    return (), {"input_guessed": True, "input_guess": "no Linear or Conv2d layer; input shape unknown"}


def _required_arguments(module: nn.Module) -> list[str]:
    """The names of forward's arguments that have no default (TorchScript schema or the Python signature)."""
    try:
        return [a.name for a in module.forward.schema.arguments[1:] if not a.has_default_value()]
    except (AttributeError, IndexError, RuntimeError):
        pass
    try:
        return [p.name for p in inspect.signature(module.forward).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    except (TypeError, ValueError):
        return []


def _first_argument(module: nn.Module) -> str:
    try:
        schema = module.forward.schema  # TorchScript
        return schema.arguments[1].name
    except (AttributeError, IndexError, RuntimeError):
        pass
    try:
        params = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return params[0].name if params else "x"
    except (TypeError, ValueError):
        return "x"
