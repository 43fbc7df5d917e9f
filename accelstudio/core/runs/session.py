"""Sessions: one shareable `.accelsession` file with the model (embedded when small), the recipe, the data
choices and the runs, so another machine shows the same runs and can measure them again; and a runnable Python
script that reproduces one run with the pipeline.

The file is a zip archive:
    session.json      {"format": "accelsession", "version": 1, "created", "app_version", "machine": {...},
                       "model": {"ref", "backend", "name", "sha256", "embedded": "model/<file>" | null,
                                 "size_bytes"},
                       "recipe": {...}, "runtime": {...},
                       "data": {"data", "calib_data", "train_data", "input_shapes"},
                       "embedded_data": {"data" | "calib_data" | "train_data": "data/<file>"},
                       "runs": [RunResult.to_dict(), ...]}
    model/<file>      the model file, when it is a file of at most EMBED_LIMIT_BYTES (bundled examples and larger
                      files travel by reference: their path, name and SHA-256)
    data/<file>       the chosen .npz data files, under the same limit (all embedded files together)
Opening extracts embedded files under <AccelStudio home>/sessions/<name>-<digest>/ (never next to the session),
and imported runs are marked: a warning with code "imported" that names the file and the machine they were
measured on, and a note in the store.
"""

from __future__ import annotations

import hashlib
import json
import platform
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from accelstudio.core.data.settings import DataSettings
from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import RunResult, RuntimeSettings
from accelstudio.core.recipe import Recipe

SESSION_SUFFIX = ".accelsession"
SESSION_FORMAT = "accelsession"
SESSION_VERSION = 1
EMBED_LIMIT_BYTES = 20_000_000
MAX_JSON_BYTES = 200_000_000
EXAMPLE_PREFIX = "example:"
IMPORTED_CODE = "imported"


class SessionError(AccelStudioError):
    """A session file that cannot be written or read; the message names the file and what to do."""


@dataclass(frozen=True)
class Session:
    """What a session file holds, with local paths: `model_ref` is what to open here (the extracted embedded
    model, the original path when it exists, or the example); `notes` say what could not be restored."""

    model_ref: str
    backend: str | None
    model_name: str
    recipe: Recipe
    runtime: RuntimeSettings
    data: DataSettings
    runs: tuple[RunResult, ...]
    source: str
    machine: dict[str, Any] = field(default_factory=dict)
    model_embedded: bool = False
    notes: tuple[str, ...] = ()


def machine_description() -> dict[str, Any]:
    """Host name, CPU and OS of this machine, for the 'measured on' line of imported runs."""
    return {"host": platform.node(), "cpu": platform.processor() or platform.machine(), "os": platform.platform()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_session(path: str | Path, *, model_ref: str, backend: str | None, model_name: str, recipe: Recipe,
                 runtime: RuntimeSettings, data: DataSettings, runs: Sequence[RunResult],
                 app_version: str = "") -> dict[str, Any]:
    """Write the session to `path` (".accelsession" is added when missing); returns its session.json document.
    Files go in only while all embedded files together stay within EMBED_LIMIT_BYTES; the model first."""
    out = Path(path)
    if out.suffix != SESSION_SUFFIX:
        out = out.with_name(out.name + SESSION_SUFFIX)
    budget = EMBED_LIMIT_BYTES
    files: dict[str, Path] = {}
    model_doc: dict[str, Any] = {"ref": model_ref, "backend": backend, "name": model_name, "sha256": None,
                                 "embedded": None, "size_bytes": None}
    if not model_ref.startswith(EXAMPLE_PREFIX) and Path(model_ref).is_file():
        model_path = Path(model_ref)
        size = model_path.stat().st_size
        model_doc.update(sha256=_sha256(model_path), size_bytes=size)
        if size <= budget:
            model_doc["embedded"] = f"model/{model_path.name}"
            files[model_doc["embedded"]] = model_path
            budget -= size
    embedded_data = {}
    for key in ("data", "calib_data", "train_data"):
        value = getattr(data, key)
        if value and Path(value).is_file() and Path(value).stat().st_size <= budget:
            name = f"data/{key}-{Path(value).name}"
            embedded_data[key], files[name] = name, Path(value)
            budget -= Path(value).stat().st_size
    doc = {"format": SESSION_FORMAT, "version": SESSION_VERSION,
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "app_version": app_version,
           "machine": machine_description(), "model": model_doc, "recipe": recipe.to_dict(),
           "runtime": runtime.to_dict(), "data": data.to_dict(), "embedded_data": embedded_data,
           "runs": [run.to_dict() for run in runs]}
    tmp = out.with_name(out.name + ".part")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("session.json", json.dumps(doc, indent=1, default=str))
            for name, source in files.items():
                zf.write(source, name)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SessionError(f"{out}: the session could not be written ({exc}); choose a folder you can write to")
    return doc


def read_session_document(path: str | Path) -> dict[str, Any]:
    """session.json of a session file, checked for its format and version."""
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as zf:
            info = zf.getinfo("session.json")
            if info.file_size > MAX_JSON_BYTES:
                raise SessionError(f"{p}: session.json is {info.file_size} bytes; not a session AccelStudio wrote")
            doc = json.loads(zf.read(info).decode("utf-8"))
    except SessionError:
        raise
    except FileNotFoundError:
        raise SessionError(f"{p}: no such file; choose an .accelsession file") from None
    except KeyError:
        raise SessionError(f"{p}: not an AccelStudio session (no session.json inside)") from None
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError) as exc:
        raise SessionError(f"{p}: not a readable AccelStudio session ({exc}); save it again with "
                           "File > Save Session") from None
    if not isinstance(doc, dict) or doc.get("format") != SESSION_FORMAT:
        raise SessionError(f"{p}: not an AccelStudio session (format is {doc.get('format') if isinstance(doc, dict) else type(doc).__name__!r})")
    if int(doc.get("version", 0)) > SESSION_VERSION:
        raise SessionError(f"{p}: written by a newer AccelStudio (session version {doc.get('version')}); update "
                           "AccelStudio to open it")
    return doc


def open_session(path: str | Path, extract_to: Path | None = None) -> Session:
    """Read a session: extract its embedded model and data under `extract_to` (default: the AccelStudio home's
    sessions/ folder) and give local references; runs are returned as stored (see `mark_imported`)."""
    from accelstudio.core.paths import data_dir

    p = Path(path)
    doc = read_session_document(p)
    digest = hashlib.sha256(str(p.resolve()).encode() + str(p.stat().st_mtime_ns).encode()).hexdigest()[:10]
    folder = extract_to or data_dir() / "sessions" / f"{p.stem}-{digest}"
    notes: list[str] = []
    try:
        model_ref, embedded = _local_model(p, doc.get("model") or {}, folder, notes)
        data = _local_data(p, doc, folder, notes)
        recipe = Recipe.from_dict(doc.get("recipe") or {})
        runtime = RuntimeSettings.from_dict(doc.get("runtime") or {})
        runs = tuple(RunResult.from_dict(r) for r in doc.get("runs") or [])
    except SessionError:
        raise
    except (TypeError, ValueError, AttributeError, AccelStudioError) as exc:
        raise SessionError(f"{p}: the session's contents are damaged ({exc})") from None
    model = doc.get("model") or {}
    return Session(model_ref, model.get("backend"), str(model.get("name") or model_ref), recipe, runtime, data,
                   runs, str(p), dict(doc.get("machine") or {}), embedded, tuple(notes))


def _extract(session: Path, name: str, folder: Path) -> Path:
    """One member of the archive to folder/<its base name>; member names never choose the folder."""
    target = folder / PurePosixPath(name).name
    if not target.name or target.name in (".", ".."):
        raise SessionError(f"{session}: bad member name {name!r} in the session")
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(session) as zf:
        info = zf.getinfo(name)
        if info.file_size > EMBED_LIMIT_BYTES:
            raise SessionError(f"{session}: {name} is larger than a session may embed; not a session AccelStudio wrote")
        with zf.open(info) as src, target.open("wb") as dst:
            dst.write(src.read(EMBED_LIMIT_BYTES + 1))
    return target


def _local_model(session: Path, model: dict[str, Any], folder: Path, notes: list[str]) -> tuple[str, bool]:
    ref = str(model.get("ref") or "")
    if model.get("embedded"):
        try:
            local = _extract(session, str(model["embedded"]), folder / "model")
        except KeyError:
            raise SessionError(f"{session}: the embedded model {model['embedded']} is missing") from None
        if model.get("sha256") and _sha256(local) != model["sha256"]:
            raise SessionError(f"{session}: the embedded model does not match its SHA-256; the file is damaged")
        return str(local), True
    if ref.startswith(EXAMPLE_PREFIX) or (ref and Path(ref).is_file()):
        return ref, False
    notes.append(f"the model {ref} was not embedded (larger than {EMBED_LIMIT_BYTES // 1_000_000} MB) and is not "
                 f"on this machine: open it with File > Open, then re-measure")
    return ref, False


def _local_data(session: Path, doc: dict[str, Any], folder: Path, notes: list[str]) -> DataSettings:
    data = DataSettings.from_dict(doc.get("data") or {})
    changes = {}
    for key, member in dict(doc.get("embedded_data") or {}).items():
        if key in ("data", "calib_data", "train_data"):
            try:
                changes[key] = str(_extract(session, str(member), folder / "data"))
            except KeyError:
                notes.append(f"the embedded {key} file {member} is missing")
    for key in ("data", "calib_data", "train_data"):
        value = changes.get(key, getattr(data, key))
        if value and not Path(value).exists():
            notes.append(f"the {key.replace('_', ' ')} {value} is not on this machine; the default is used")
            changes[key] = None
    return replace(data, **changes)


def mark_imported(session: Session) -> list[RunResult]:
    """The session's runs as they are stored here: pointing at the local model, without their old ids, with an
    'imported' warning naming the file and the machine they were measured on."""
    machine = session.machine.get("cpu") or session.machine.get("host") or "another machine"
    out = []
    for run in session.runs:
        spec = dict(run.spec or {})
        identity = dict(run.model_identity or {})
        if spec.get("model") and not str(spec["model"]).startswith(EXAMPLE_PREFIX):
            spec["model"] = session.model_ref
            identity["path"] = session.model_ref
        note = {"code": IMPORTED_CODE, "message": f"imported from {Path(session.source).name}: measured on "
                                                  f"{machine} ({run.created or 'time unknown'})",
                "advice": "re-measure it on this machine before comparing it with runs measured here",
                "control": None}
        out.append(replace(run, spec=spec, model_identity=identity, run_id=None,
                           warnings=[w for w in run.warnings if w.get("code") != IMPORTED_CODE] + [note]))
    return out


def import_session_runs(store, session: Session) -> list[int]:
    """Add the session's runs to `store`, marked as imported; their new ids."""
    ids = []
    for run in mark_imported(session):
        run_id = store.add_run(run)
        store.set_note(run_id, f"imported from {session.source}")
        ids.append(run_id)
    return ids


def is_imported(run: RunResult) -> bool:
    """True for a run that came from a session file."""
    return any(w.get("code") == IMPORTED_CODE for w in run.warnings or [])
