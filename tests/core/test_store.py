"""The SQLite run store: round trips, WAL durability across processes and SIGKILL, refusing foreign or
damaged files without touching them, concurrent use, CSV/JSON export."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import textwrap
from pathlib import Path

import numpy as np
import pytest

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import JobSpec, RunResult
from accelstudio.core.recipe import Recipe
from accelstudio.core.runs.store import SCHEMA_VERSION, RunNotFoundError, RunStore, StoreError
from accelstudio.core.runs.store_export import CSV_COLUMNS


def make_run(i: int = 0, sha: str = "a" * 64, **metrics) -> RunResult:
    recipe = Recipe.from_dict({"prune": {"amount": 0.5}}) if i % 2 else Recipe()
    base = {"p50_ms": 1.0 + i, "p90_ms": 1.5 + i, "p99_ms": 2.0 + i, "throughput": 1000.0 / (1 + i),
            "accuracy": 0.95, "accuracy_delta": -0.5, "accuracy_delta_ci": [-1.2, 0.1], "size_bytes": 1000 * (i + 1),
            "fidelity": {"top1_agreement": 0.99, "cosine": 0.999, "max_abs_error": 0.1, "kl_divergence": 0.01}}
    base.update(metrics)
    return RunResult(
        status="done", spec=JobSpec("example:digits-mlp", recipe=recipe).to_dict(), metrics=base,
        latencies_ms=[1.0, 1.1, 0.9], layers=[{"name": "fc1", "params": 4160, "sparsity": 0.5, "dtype": "float32"}],
        warnings=[{"code": "w", "message": "m", "advice": "a", "control": "prune"}],
        environment={"cpu": {"model": "Test CPU"}, "threads": 2},
        model_identity={"path": "/models/m.onnx", "sha256": sha, "name": f"model-{i}"},
        artifact=f"/artifacts/{i}/model.onnx",
    )


def test_round_trip_keeps_every_field(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run = make_run(1)
    run_id = store.add_run(run)
    got = store.get_run(run_id)
    assert got.run_id == run_id and got.created and got.created.endswith("+00:00")
    expected = run.to_dict()
    actual = got.to_dict()
    for key in ("status", "reason", "spec", "metrics", "latencies_ms", "layers", "warnings", "environment",
                "model_identity", "artifact"):
        assert actual[key] == expected[key], key
    assert JobSpec.from_dict(got.spec).recipe == Recipe.from_dict({"prune": {"amount": 0.5}})


def test_numpy_values_and_nan_are_stored_as_json(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.add_run(make_run(0, accuracy=np.float32(0.5), n_eval=np.int64(7), stable=np.bool_(True),
                                    mean_ms=float("nan")))
    m = store.get_run(run_id).metrics
    assert m["accuracy"] == 0.5 and m["n_eval"] == 7 and m["stable"] is True and m["mean_ms"] is None


def test_list_newest_first_limit_filter_and_delete(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    ids = [store.add_run(make_run(i, sha="b" * 64 if i == 2 else "a" * 64)) for i in range(4)]
    assert [r.run_id for r in store.list_runs()] == ids[::-1]
    assert [r.run_id for r in store.list_runs(limit=2)] == ids[:1:-1]
    assert [r.run_id for r in store.list_runs(model_sha256="b" * 64)] == [ids[2]]
    store.delete_run(ids[1])
    assert store.count() == 3
    with pytest.raises(RunNotFoundError, match=rf"no run with id {ids[1]}") as info:
        store.get_run(ids[1])
    assert isinstance(info.value, AccelStudioError) and "runs.sqlite" in str(info.value)
    with pytest.raises(RunNotFoundError):
        store.delete_run(999)
    store.set_note(ids[0], "best so far")
    assert store.get_note(ids[0]) == "best so far"


def test_wal_mode_full_sync_and_schema_version(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).add_run(make_run())
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()
    assert RunStore(path).integrity_ok()


def test_default_path_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELSTUDIO_STORE", str(tmp_path / "elsewhere" / "s.sqlite"))
    assert RunStore().path == tmp_path / "elsewhere" / "s.sqlite"
    monkeypatch.delenv("ACCELSTUDIO_STORE")
    assert RunStore().path == Path(os.environ["ACCELSTUDIO_HOME"]) / "runs.sqlite"


def _python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_another_process_reads_committed_run(tmp_path):
    path = tmp_path / "runs.sqlite"
    run_id = RunStore(path).add_run(make_run(3))
    proc = _python("""
        import json, sys
        from accelstudio.core.runs.store import RunStore
        run = RunStore(sys.argv[1]).get_run(int(sys.argv[2]))
        print(json.dumps({"id": run.run_id, "p50": run.metrics["p50_ms"], "name": run.model_identity["name"]}))
    """, str(path), str(run_id))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"id": run_id, "p50": 4.0, "name": "model-3"}


_WRITER = """
import sys
from accelstudio.core.job import RunResult
from accelstudio.core.runs.store import RunStore
store = RunStore(sys.argv[1])
layers = [{"name": f"layer{i}", "params": i, "sparsity": 0.1, "dtype": "float32"} for i in range(200)]
i = 0
while True:
    run_id = store.add_run(RunResult("done", metrics={"i": i}, latencies_ms=[0.5] * 500, layers=layers))
    print(run_id, flush=True)
    i += 1
"""


def test_sigkill_during_writes_keeps_every_committed_run(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    committed, mine = [], []
    try:
        for line in writer.stdout:
            committed.append(int(line))
            if len(committed) % 10 == 0:
                mine.append(store.add_run(make_run(len(mine))))  # a second process writing at the same time
            if len(committed) >= 60:
                break
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait(timeout=30)
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    reopened = RunStore(path)
    assert reopened.integrity_ok()
    present = {r.run_id for r in reopened.list_runs()}
    assert set(committed) <= present and set(mine) <= present
    assert len(committed) == 60 and not set(committed) & set(mine)


def test_threads_share_one_store(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    ids: list[int] = []
    lock = threading.Lock()

    def work(k):
        for i in range(5):
            run_id = store.add_run(make_run(i + 10 * k))
            with lock:
                ids.append(run_id)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert len(set(ids)) == 20 and store.count() == 20


def test_not_a_database_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "runs.sqlite"
    content = b"this is my thesis, not a database\n" * 100
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not a SQLite database; it was left untouched") as info:
        RunStore(path)
    assert str(path) in str(info.value) and "--store" in str(info.value)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite"]


def test_foreign_sqlite_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not an AccelStudio run store"):
        RunStore(path)
    assert path.read_bytes() == before


def test_damaged_store_gives_clear_error_and_is_not_modified(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    for i in range(30):
        store.add_run(make_run(i))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[page:] = os.urandom(len(data) - page)  # keep the header, scramble every page after the first
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as info:
        RunStore(path).list_runs()
    assert str(path) in str(info.value) and "left untouched" in str(info.value)
    assert path.read_bytes() == bytes(data)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer AccelStudio"):
        RunStore(path)


def test_export_csv_and_json(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    ids = [store.add_run(make_run(i)) for i in range(3)]
    out = tmp_path / "out"
    assert store.export_csv(out / "runs.csv") == 3
    with open(out / "runs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS and [int(r["id"]) for r in rows] == ids
    assert rows[1]["recipe"].startswith("prune 50%") and rows[0]["recipe"] == "baseline"
    assert float(rows[2]["p50_ms"]) == 3.0 and rows[0]["accuracy_delta_ci_lo"] == "-1.2"
    assert rows[0]["top1_agreement"] == "0.99" and rows[0]["cpu"] == "Test CPU" and rows[0]["runtime"] == "onnxruntime"

    assert store.export_json(out / "runs.json", ids=[ids[2], ids[0]]) == 2
    doc = json.loads((out / "runs.json").read_text())
    assert [r["run_id"] for r in doc["runs"]] == [ids[2], ids[0]]
    assert doc["runs"][0]["metrics"]["fidelity"]["cosine"] == 0.999
    assert sorted(p.name for p in out.iterdir()) == ["runs.csv", "runs.json"]  # no temporary files left

    with pytest.raises(RunNotFoundError):
        store.export_json(out / "missing.json", ids=[999])
    assert not (out / "missing.json").exists()


def test_csv_cells_cannot_become_spreadsheet_formulas(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run = make_run()
    run = RunResult(**{**run.to_dict(), "model_identity": {"name": "=HYPERLINK(\"x\")", "sha256": None,
                                                            "path": None}})
    store.add_run(run)
    store.export_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["model"] == "'=HYPERLINK(\"x\")"


def test_schema_1_store_gains_pinned_column_and_keeps_its_runs(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    run_id = store.add_run(make_run(1))
    conn = sqlite3.connect(path)  # turn it back into a schema-1 store: no pinned column
    conn.execute("ALTER TABLE runs DROP COLUMN pinned")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    reopened = RunStore(path)
    assert reopened.get_run(run_id).metrics["p50_ms"] == 2.0
    assert reopened.pinned_ids() == set()
    reopened.set_pinned([run_id], True)
    assert reopened.pinned_ids() == {run_id}


def test_pins_and_forgetting_an_artifact_keep_the_run(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    ids = [store.add_run(make_run(i)) for i in range(3)]
    store.set_pinned([ids[0], ids[2]], True)
    store.set_pinned([ids[2]], False)
    assert store.pinned_ids() == {ids[0]}
    with pytest.raises(RunNotFoundError):
        store.set_pinned([999], True)
    assert [row[0] for row in store.artifact_rows()] == ids
    store.forget_artifact(ids[1])
    assert store.get_run(ids[1]).artifact is None and store.get_run(ids[1]).metrics["p50_ms"] == 2.0
    assert [row[0] for row in store.artifact_rows()] == [ids[0], ids[2]]
    assert store.count() == 3
    assert store.database_bytes() >= (tmp_path / "runs.sqlite").stat().st_size > 0


def test_schema_2_store_gains_studies_and_keeps_its_runs(tmp_path):
    path = tmp_path / "runs.sqlite"
    run_id = RunStore(path).add_run(make_run(1))
    conn = sqlite3.connect(path)  # turn it back into a schema-2 store: no studies, no runs.study_id
    conn.execute("DROP INDEX runs_study_id")
    conn.execute("ALTER TABLE runs DROP COLUMN study_id")
    conn.execute("DROP TABLE studies")
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    reopened = RunStore(path)
    assert reopened.get_run(run_id).metrics["p50_ms"] == 2.0
    assert reopened.run_study_id(run_id) is None
    study = reopened.add_study("search", {"budget_s": 60})
    assert reopened.list_runs(study_id=study) == []


def test_studies_are_stored_updated_and_tag_their_trials(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    identity = {"name": "digits-cnn", "sha256": "ab" * 32}
    study = store.add_study("sensitivity", {"quantize": "dynamic-int8", "samples": 64}, identity)
    other = store.add_study("search", {"max_drop": 1.0})
    trial = store.add_run(make_run(1), study_id=study)
    loose = store.add_run(make_run(2))
    assert [r.run_id for r in store.list_runs(study_id=study)] == [trial]
    assert store.run_study_id(trial) == study and store.run_study_id(loose) is None
    record = store.get_study(study)
    assert (record.kind, record.status, record.params["samples"]) == ("sensitivity", "running", 64)
    assert record.model_identity["sha256"] == "ab" * 32 and record.result == {}
    store.update_study(study, {"layers": [{"name": "conv1", "losses": [0.5, float("nan")]}]}, "done")
    record = store.get_study(study)
    assert record.status == "done" and record.result["layers"][0]["losses"][0] == 0.5
    assert record.result["layers"][0]["losses"][1] is None  # NaN is stored as null, never as invalid JSON
    assert [s.study_id for s in store.list_studies()] == [other, study]
    assert [s.study_id for s in store.list_studies(kind="search")] == [other]
    assert [s.study_id for s in store.list_studies(model_sha256="ab" * 32)] == [study]
    with pytest.raises(ValueError):
        store.update_study(study, {}, "finished")
    with pytest.raises(RunNotFoundError):
        store.get_study(999)
    with pytest.raises(RunNotFoundError):
        store.update_study(999, {}, "done")
