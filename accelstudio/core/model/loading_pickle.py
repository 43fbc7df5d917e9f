"""Look inside PyTorch files without running them: zip member names, and pickle opcodes via pickletools.

pickletools.genops only decodes opcodes; it never imports or calls anything, so scanning a hostile file
is safe. The scan lists the globals a pickle would import; anything beyond tensors and plain containers
means the file holds Python objects whose loading can execute code.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path

from accelstudio.core.errors import CorruptModelError, ModelTooLargeError

LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a torch.save(_use_new_zipfile_serialization=False)
MAX_INFLATED_BYTES = 8 * 1024**3
MAX_INFLATION_RATIO = 50
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
               "STRING", "SHORT_BINBYTES", "BINBYTES", "BINBYTES8"}
_MEMO_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_MEMO_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
# Modules whose globals appear in tensor files; torch's weights-only unpickler (which never runs
# them) has the last word on each one. Any other global (a module class, os.system...) marks code.
_DATA_MODULES = {"torch", "torch._utils", "torch._tensor", "torch.serialization", "torch.storage",
                 "collections", "_codecs"}
_SAFE_BUILTINS = {"set", "frozenset", "bytearray", "slice", "complex"}


@dataclass(frozen=True)
class PickleScan:
    """What a pickle stream would import, and whether it is a legacy torch.save file."""

    globals: tuple[str, ...]
    legacy_torch: bool = False

    @property
    def code_globals(self) -> tuple[str, ...]:
        """Globals outside tensors/containers: their presence means loading can run code."""
        return tuple(g for g in self.globals if not _is_data_global(g))


def _is_data_global(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if module in ("builtins", "__builtin__"):
        return attr in _SAFE_BUILTINS
    return module in _DATA_MODULES or module.split(".")[0] == "numpy"


def scan_pickle_stream(stream: io.BufferedIOBase, max_pickles: int = 1) -> tuple[list[str], list[object]]:
    """Globals referenced by up to `max_pickles` consecutive pickles, and the first opcode arg of each.

    Raises ValueError when the bytes are not a valid pickle.
    """
    found: list[str] = []
    firsts: list[object] = []
    for _ in range(max_pickles):
        if not stream.peek(1):  # end of file
            break
        recent: list[object] = []
        memo: dict[object, object] = {}
        first = None
        for i, (op, arg, _pos) in enumerate(pickletools.genops(stream)):
            if i <= 1 and op.name != "PROTO" and first is None:
                first = arg
            _track(op.name, arg, recent, memo, found)
        firsts.append(first)
    return found, firsts


def _track(name: str, arg: object, recent: list, memo: dict, found: list[str]) -> None:
    """Follow just enough of the pickle stack to name GLOBAL/STACK_GLOBAL/INST targets."""
    if name in ("GLOBAL", "INST"):
        found.append(str(arg).replace(" ", "."))
        recent.append(None)
    elif name == "STACK_GLOBAL":
        module, attr = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
        ok = isinstance(module, str) and isinstance(attr, str)
        found.append(f"{module}.{attr}" if ok else "<unresolved global>")
        recent.append(None)
    elif name in _STRING_OPS:
        recent.append(arg if isinstance(arg, str) else None)
    elif name in _MEMO_PUT_OPS:
        memo[arg] = recent[-1] if recent else None
    elif name == "MEMOIZE":
        memo[len(memo)] = recent[-1] if recent else None
    elif name in _MEMO_GET_OPS:
        recent.append(memo.get(arg))
    else:
        recent.append(None)
    del recent[:-4]


def scan_pickle_file(path: Path) -> PickleScan:
    """Scan a bare pickle or a legacy torch.save file (a sequence of pickles followed by raw storages)."""
    with open(path, "rb") as raw:
        stream = io.BufferedReader(raw)
        names, firsts = scan_pickle_stream(stream, 1)
        legacy = bool(firsts) and firsts[0] == LEGACY_TORCH_MAGIC
        if legacy:  # then: protocol version, system info, the data pickle, the storage keys
            more, _ = scan_pickle_stream(stream, 4)
            names += more
    return PickleScan(tuple(dict.fromkeys(names)), legacy)


def scan_zip_pickle(zf: zipfile.ZipFile, member: str) -> PickleScan:
    """Scan the data.pkl member of a torch.save zip archive."""
    with zf.open(member) as f:
        names, _ = scan_pickle_stream(f, 1)
    return PickleScan(tuple(dict.fromkeys(names)))


def classify_zip(names: list[str]) -> tuple[str, str | None]:
    """('torchscript' | 'export' | 'pickle' | 'other', data.pkl member or None) from the member names."""
    parts = [n.split("/") for n in names]
    has = lambda pred: any(pred(p) for p in parts)  # noqa: E731
    if has(lambda p: p[-1] == "constants.pkl") and has(lambda p: "code" in p[:-1]):
        return "torchscript", None
    if has(lambda p: p[-1] in ("archive_format", "serialized_exported_program.json")) or \
            has(lambda p: len(p) >= 2 and p[-2] == "models" and p[-1].endswith(".json")):
        return "export", None
    pkl = next((n for n, p in zip(names, parts) if p[-1] == "data.pkl" and len(p) <= 2), None)
    if pkl is not None:
        return "pickle", pkl
    return "other", None


def check_inflation(path: Path, file_size: int, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse archives whose members would inflate far beyond the file (zip bombs)."""
    total = sum(max(0, i.file_size) for i in infos)
    limit = min(MAX_INFLATED_BYTES, MAX_INFLATION_RATIO * file_size)
    stored_like = total <= file_size * 1.1 + (1 << 20)  # uncompressed archives are never a bomb
    if total > limit and not stored_like:
        raise ModelTooLargeError(path, f"its compressed members would expand to {_human(total)} from a "
                                       f"{_human(file_size)} file (limit {_human(limit)}); refusing to unpack it, "
                                       "save the model uncompressed with torch.save")


def _human(n: float) -> str:
    from accelstudio.core.units import format_bytes

    return format_bytes(n)


def open_zip(path: Path) -> zipfile.ZipFile:
    """Open a zip archive or raise CorruptModelError."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise CorruptModelError(path, f"zip archive is truncated or damaged ({e}); save or download it again") \
            from None
