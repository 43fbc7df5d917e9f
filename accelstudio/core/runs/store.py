"""The experiment store: every run, in one SQLite file (WAL journal, synchronous=FULL).

A committed run survives a crash or a killed process. One connection per call keeps the store safe to use
from several threads, and SQLite's locking (with a busy timeout) from several processes. A file that is
not an AccelStudio store is reported, never overwritten.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import RunResult
from accelstudio.core.paths import default_store_path
from accelstudio.core.runs.run_labels import recipe_label, to_json_safe
from accelstudio.core.runs.store_export import flat_rows, runs_document, write_csv_atomic, write_json_atomic

# 2: runs.pinned (the user keeps the run's optimized model when artifacts are cleaned)
# 3: studies (sensitivity, search, sweeps) and runs.study_id (the study a run was a trial of)
SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 30.0
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    model_name TEXT,
    model_path TEXT,
    model_sha256 TEXT,
    recipe_json TEXT,
    recipe_label TEXT,
    runtime_json TEXT,
    environment_json TEXT,
    metrics_json TEXT,
    layers_json TEXT,
    latencies_json TEXT,
    warnings_json TEXT,
    artifact TEXT,
    spec_json TEXT,
    note TEXT NOT NULL DEFAULT '',
    pinned INTEGER NOT NULL DEFAULT 0,
    study_id INTEGER
);
CREATE INDEX IF NOT EXISTS runs_model_sha256 ON runs(model_sha256);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    model_name TEXT,
    model_sha256 TEXT,
    params_json TEXT NOT NULL,
    result_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_study_id ON runs(study_id);
"""
_COLUMNS = ("created", "status", "reason", "model_name", "model_path", "model_sha256", "recipe_json",
            "recipe_label", "runtime_json", "environment_json", "metrics_json", "layers_json", "latencies_json",
            "warnings_json", "artifact", "spec_json", "note", "study_id")
STUDY_STATUSES = ("running", "done", "stopped", "failed")


@dataclass(frozen=True)
class StudyRecord:
    """A stored study: what it was asked (params), what it found so far (result), and whether it is still going."""

    study_id: int
    kind: str
    status: str
    created: str
    updated: str
    model_identity: dict[str, Any]
    params: dict[str, Any]
    result: dict[str, Any]


class StoreError(AccelStudioError):
    """The run store cannot be opened or used; the message names the file and what to do."""

    category = "run store error"


class RunNotFoundError(StoreError):
    """No run with the requested id."""


class RunStore:
    """Runs kept in a SQLite file (default: paths.default_store_path(), honouring $ACCELSTUDIO_STORE)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_store_path()
        self._check_file()
        self._initialize()

    # --- connection and schema ------------------------------------------------------------------------

    def _check_file(self) -> None:
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder, not a run store; pass --store with a file path")
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                header = fh.read(len(_SQLITE_MAGIC))
            if header != _SQLITE_MAGIC:
                raise self._not_a_store("not a SQLite database")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _not_a_store(self, detail: str) -> StoreError:
        return StoreError(f"{self.path}: {detail}; it was left untouched. Move it aside (or restore a backup) "
                          "and AccelStudio creates a new store there, or pass --store with another path")

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the run store ({exc}); check the folder's "
                             "permissions or pass --store with another path") from None
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._not_a_store(f"unreadable database ({exc})") from None
        return conn

    def _session(self) -> "_Session":
        return _Session(self)

    def _initialize(self) -> None:
        with self._session() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: made by a newer AccelStudio (schema {version}, this release "
                                 f"reads {SCHEMA_VERSION}); upgrade, or pass --store with another path")
            if version == SCHEMA_VERSION:
                return
            if version in (1, 2):
                self._migrate(conn)
                return
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables - {"runs", "studies"}:
                raise self._not_a_store("a SQLite database that is not an AccelStudio run store")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch the store to WAL mode (got {mode}); put the "
                                 "store on a local disk with --store")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Schema 1 or 2 -> 3: add the pinned column (no run is pinned), runs.study_id and the studies table."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
            if "pinned" not in columns:
                conn.execute("ALTER TABLE runs ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")
            if "study_id" not in columns:
                conn.execute("ALTER TABLE runs ADD COLUMN study_id INTEGER")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # --- runs --------------------------------------------------------------------------------------------

    def add_run(self, result: RunResult, study_id: int | None = None) -> int:
        """Store a run in one transaction, committed (and synced) before returning its new id; `study_id` tags it
        as a trial of that study."""
        values = _row_values(result)
        values["study_id"] = None if study_id is None else int(study_id)
        sql = f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        with self._session() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = conn.execute(sql, [values[c] for c in _COLUMNS])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(cursor.lastrowid)

    def get_run(self, run_id: int) -> RunResult:
        """The run with this id (run_id and created set); RunNotFoundError when there is none."""
        with self._session() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"{self.path}: no run with id {run_id}; `accelstudio runs list` shows the ids")
        return _row_to_result(row)

    def list_runs(self, limit: int | None = None, model_sha256: str | None = None,
                  study_id: int | None = None) -> list[RunResult]:
        """Runs newest first, optionally only those of one model file (by SHA-256) or of one study."""
        sql, params, where = "SELECT * FROM runs", [], []
        if model_sha256 is not None:
            where.append("model_sha256 = ?")
            params.append(model_sha256)
        if study_id is not None:
            where.append("study_id = ?")
            params.append(int(study_id))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._session() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_row_to_result(r) for r in rows]

    def run_study_id(self, run_id: int) -> int | None:
        """The study a run was a trial of, or None."""
        with self._session() as conn:
            row = conn.execute("SELECT study_id FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"{self.path}: no run with id {run_id}; `accelstudio runs list` shows the ids")
        return None if row[0] is None else int(row[0])

    # --- studies -----------------------------------------------------------------------------------------

    def add_study(self, kind: str, params: dict[str, Any], model_identity: dict[str, Any] | None = None,
                  result: dict[str, Any] | None = None, status: str = "running") -> int:
        """Record a study (kind: "sensitivity", "search", ...) and return its id; its trials point at it."""
        identity = model_identity or {}
        now = _now()
        with self._session() as conn:
            cursor = conn.execute(
                "INSERT INTO studies (created, updated, kind, status, model_name, model_sha256, params_json, "
                "result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now, now, kind, _study_status(status), identity.get("name"), identity.get("sha256"),
                 _dumps(params), _dumps(result or {})))
            return int(cursor.lastrowid)

    def update_study(self, study_id: int, result: dict[str, Any], status: str) -> None:
        """Replace a study's result (best-so-far, rankings...) and status; committed before returning."""
        with self._session() as conn:
            changed = conn.execute("UPDATE studies SET result_json = ?, status = ?, updated = ? WHERE id = ?",
                                   (_dumps(result), _study_status(status), _now(), int(study_id))).rowcount
        if not changed:
            raise RunNotFoundError(f"{self.path}: no study with id {study_id}; `accelstudio runs studies` lists them")

    def get_study(self, study_id: int) -> StudyRecord:
        """The study with this id; RunNotFoundError when there is none."""
        with self._session() as conn:
            row = conn.execute("SELECT * FROM studies WHERE id = ?", (int(study_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"{self.path}: no study with id {study_id}; `accelstudio runs studies` lists them")
        return _row_to_study(row)

    def list_studies(self, kind: str | None = None, model_sha256: str | None = None) -> list[StudyRecord]:
        """Studies newest first, optionally of one kind and/or one model file."""
        sql, params, where = "SELECT * FROM studies", [], []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if model_sha256 is not None:
            where.append("model_sha256 = ?")
            params.append(model_sha256)
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._session() as conn:
            rows = conn.execute(sql + " ORDER BY id DESC", params).fetchall()
        return [_row_to_study(r) for r in rows]

    def trial_counts(self) -> dict[int, int]:
        """How many stored runs each study has as trials, by study id (studies without trials left out)."""
        with self._session() as conn:
            rows = conn.execute("SELECT study_id, COUNT(*) FROM runs WHERE study_id IS NOT NULL "
                                "GROUP BY study_id").fetchall()
        return {int(r[0]): int(r[1]) for r in rows}

    def count(self) -> int:
        """How many runs the store holds."""
        with self._session() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def delete_run(self, run_id: int) -> None:
        """Remove a run; RunNotFoundError when there is none."""
        with self._session() as conn:
            deleted = conn.execute("DELETE FROM runs WHERE id = ?", (int(run_id),)).rowcount
        if not deleted:
            raise RunNotFoundError(f"{self.path}: no run with id {run_id}; `accelstudio runs list` shows the ids")

    def set_note(self, run_id: int, note: str) -> None:
        """Attach a free-text note to a run."""
        with self._session() as conn:
            changed = conn.execute("UPDATE runs SET note = ? WHERE id = ?", (note, int(run_id))).rowcount
        if not changed:
            raise RunNotFoundError(f"{self.path}: no run with id {run_id}")

    def get_note(self, run_id: int) -> str:
        """The note attached to a run ('' when none)."""
        with self._session() as conn:
            row = conn.execute("SELECT note FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"{self.path}: no run with id {run_id}")
        return row[0]

    # --- artifacts (the optimized model files runs keep) ------------------------------------------------------

    def set_pinned(self, run_ids: list[int], pinned: bool) -> None:
        """Keep (or stop keeping) these runs' optimized models when artifacts are cleaned up."""
        with self._session() as conn:
            for run_id in run_ids:
                changed = conn.execute("UPDATE runs SET pinned = ? WHERE id = ?",
                                       (int(bool(pinned)), int(run_id))).rowcount
                if not changed:
                    raise RunNotFoundError(f"{self.path}: no run with id {run_id}")

    def pinned_ids(self) -> set[int]:
        """Ids of the runs whose optimized model the user keeps."""
        with self._session() as conn:
            return {int(r[0]) for r in conn.execute("SELECT id FROM runs WHERE pinned != 0")}

    def artifact_rows(self) -> list[tuple[int, str, str, bool]]:
        """(run id, created, artifact path, pinned) of every run that names an artifact, oldest first."""
        with self._session() as conn:
            rows = conn.execute("SELECT id, created, artifact, pinned FROM runs "
                                "WHERE artifact IS NOT NULL AND artifact != '' ORDER BY id").fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows]

    def forget_artifact(self, run_id: int) -> None:
        """Record that a run's optimized model was removed; the run itself stays."""
        with self._session() as conn:
            conn.execute("UPDATE runs SET artifact = NULL WHERE id = ?", (int(run_id),))

    def database_bytes(self) -> int:
        """Bytes of the store's files on disk (the database and its WAL journal)."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            path = self.path.with_name(self.path.name + suffix)
            if path.is_file():
                total += path.stat().st_size
        return total

    def integrity_ok(self) -> bool:
        """True when SQLite's integrity check passes."""
        try:
            with self._session() as conn:
                rows = conn.execute("PRAGMA integrity_check").fetchall()
        except (sqlite3.DatabaseError, StoreError):
            return False
        return [r[0] for r in rows] == ["ok"]

    # --- export ------------------------------------------------------------------------------------------

    def _select(self, ids: list[int] | None) -> list[RunResult]:
        if ids is None:
            return list(reversed(self.list_runs()))
        return [self.get_run(i) for i in ids]

    def export_csv(self, path: str | Path, ids: list[int] | None = None) -> int:
        """Write one flat row per run (oldest first, or in the order of `ids`) to a CSV file, atomically.
        Returns the number of rows."""
        runs = self._select(ids)
        write_csv_atomic(Path(path), flat_rows(runs, self.list_runs()))
        return len(runs)

    def export_json(self, path: str | Path, ids: list[int] | None = None) -> int:
        """Write the full runs, each with its report, as a JSON document {"schema": ..., "runs": [...]},
        atomically."""
        runs = self._select(ids)
        write_json_atomic(Path(path), runs_document(runs, self.list_runs()))
        return len(runs)


class _Session:
    """A context manager giving a fresh connection, turning SQLite corruption errors into StoreError."""

    def __init__(self, store: RunStore):
        self.store = store
        self.conn: sqlite3.Connection | None = None

    def __enter__(self) -> sqlite3.Connection:
        self.conn = self.store._connect()
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.conn is not None
        self.conn.close()
        if exc_type is not None and issubclass(exc_type, sqlite3.DatabaseError):
            message = str(exc)
            if "not a database" in message or "malformed" in message:
                raise self.store._not_a_store(f"damaged database ({message})") from None
            if "locked" in message or "busy" in message:
                raise StoreError(f"{self.store.path}: the store stayed locked by another program for "
                                 f"{BUSY_TIMEOUT_S:.0f} s; try again") from None
            raise StoreError(f"{self.store.path}: database error ({message})") from None
        return False


def _dumps(value: Any) -> str:
    return json.dumps(to_json_safe(value), allow_nan=False)


def _row_values(result: RunResult) -> dict[str, Any]:
    spec = result.spec or {}
    identity = result.model_identity or {}
    return {
        "created": result.created or datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "status": result.status,
        "reason": result.reason or "",
        "model_name": identity.get("name"),
        "model_path": identity.get("path"),
        "model_sha256": identity.get("sha256"),
        "recipe_json": _dumps(spec.get("recipe", {})),
        "recipe_label": recipe_label(spec.get("recipe")),
        "runtime_json": _dumps(spec.get("runtime", {})),
        "environment_json": _dumps(result.environment),
        "metrics_json": _dumps(result.metrics),
        "layers_json": _dumps(result.layers),
        "latencies_json": _dumps(list(result.latencies_ms)),
        "warnings_json": _dumps(result.warnings),
        "artifact": result.artifact,
        "spec_json": _dumps(spec),
        "note": "",
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _study_status(status: str) -> str:
    if status not in STUDY_STATUSES:
        raise ValueError(f"study status must be one of {STUDY_STATUSES}, not {status!r}")
    return status


def _row_to_study(row: sqlite3.Row) -> StudyRecord:
    return StudyRecord(
        study_id=int(row["id"]), kind=row["kind"], status=row["status"], created=row["created"],
        updated=row["updated"], model_identity={"name": row["model_name"], "sha256": row["model_sha256"]},
        params=json.loads(row["params_json"] or "{}"), result=json.loads(row["result_json"] or "{}"))


def _row_to_result(row: sqlite3.Row) -> RunResult:
    spec = json.loads(row["spec_json"] or "{}")
    return RunResult(
        status=row["status"], reason=row["reason"], spec=spec,
        metrics=json.loads(row["metrics_json"] or "{}"),
        latencies_ms=json.loads(row["latencies_json"] or "[]"),
        layers=json.loads(row["layers_json"] or "[]"),
        warnings=json.loads(row["warnings_json"] or "[]"),
        environment=json.loads(row["environment_json"] or "{}"),
        model_identity={"path": row["model_path"], "sha256": row["model_sha256"], "name": row["model_name"]},
        artifact=row["artifact"], run_id=int(row["id"]), created=row["created"],
    )


def iter_runs(store: RunStore) -> Iterator[RunResult]:
    """Every run, oldest first."""
    yield from reversed(store.list_runs())
