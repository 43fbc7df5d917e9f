"""Session files (save, open on another machine, runs imported) and the exported reproduction script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from accelstudio.core.data.settings import DataSettings
from accelstudio.core.job import JobSpec, RuntimeSettings
from accelstudio.core.pipeline import run_job
from accelstudio.core.recipe import PruneSpec, Recipe
from accelstudio.core.runs.script_export import ScriptExportError, export_script
from accelstudio.core.runs.session import (EMBED_LIMIT_BYTES, SessionError, import_session_runs, is_imported,
                                           open_session, save_session)
from accelstudio.core.runs.store import RunStore

QUICK = RuntimeSettings(runtime="onnxruntime", threads=1, repeats=20, warmup=2, time_budget_s=0.3)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)).eval()
    path = folder / "tiny.onnx"
    torch.onnx.export(net, (torch.randn(1, 16),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}}, dynamo=False)
    return path


@pytest.fixture(scope="module")
def one_run(model_file):
    spec = JobSpec(model=str(model_file), recipe=Recipe(prune=PruneSpec(amount=0.5)), runtime=QUICK,
                   keep_artifact=False)
    return run_job(spec)


def test_session_round_trip_embeds_the_model_and_imports_runs(tmp_path, model_file, one_run):
    first = RunStore(tmp_path / "a.sqlite")
    run = first.get_run(first.add_run(one_run))
    path = tmp_path / "shared"
    doc = save_session(path, model_ref=str(model_file), backend="onnx", model_name="tiny", recipe=Recipe(
        prune=PruneSpec(amount=0.5)), runtime=QUICK, data=DataSettings(), runs=[run], app_version="test")
    written = tmp_path / "shared.accelsession"
    assert written.is_file() and doc["model"]["embedded"] == "model/tiny.onnx"
    original = model_file.read_bytes()
    model_file.rename(model_file.with_suffix(".moved"))  # "another machine": the original path is gone
    try:
        session = open_session(written, extract_to=tmp_path / "extracted")
    finally:
        model_file.with_suffix(".moved").rename(model_file)
    assert session.model_embedded and Path(session.model_ref).read_bytes() == original
    assert session.recipe.prune.amount == 0.5 and session.runtime == QUICK
    other = RunStore(tmp_path / "b.sqlite")
    ids = import_session_runs(other, session)
    imported = other.get_run(ids[0])
    assert is_imported(imported) and not is_imported(run)
    assert imported.metrics["p50_ms"] == run.metrics["p50_ms"]
    assert imported.spec["model"] == session.model_ref  # restoring it opens the local copy
    assert "imported from" in other.get_note(ids[0])
    # re-measure here: the imported run's job runs as it is
    again = run_job(JobSpec.from_dict(imported.spec))
    assert again.status == "done"


def test_large_or_bundled_models_travel_by_reference(tmp_path, monkeypatch, model_file):
    import accelstudio.core.runs.session as session_mod

    monkeypatch.setattr(session_mod, "EMBED_LIMIT_BYTES", 10)
    save_session(tmp_path / "ref.accelsession", model_ref=str(model_file), backend="onnx", model_name="tiny",
                 recipe=Recipe(), runtime=QUICK, data=DataSettings(), runs=[])
    session = open_session(tmp_path / "ref.accelsession", extract_to=tmp_path / "x")
    assert not session.model_embedded and session.model_ref == str(model_file)
    save_session(tmp_path / "ex.accelsession", model_ref="example:digits-cnn", backend="torch", model_name="cnn",
                 recipe=Recipe(), runtime=QUICK, data=DataSettings(data="/nowhere/data.npz"), runs=[])
    session = open_session(tmp_path / "ex.accelsession", extract_to=tmp_path / "y")
    assert session.model_ref == "example:digits-cnn" and session.data.data is None
    assert any("not on this machine" in n for n in session.notes)
    assert EMBED_LIMIT_BYTES == 20_000_000


def test_bad_session_files_give_typed_errors(tmp_path):
    bad = tmp_path / "bad.accelsession"
    bad.write_text("not a zip")
    with pytest.raises(SessionError, match="bad.accelsession"):
        open_session(bad)
    with zipfile.ZipFile(tmp_path / "other.accelsession", "w") as zf:
        zf.writestr("session.json", json.dumps({"format": "something-else"}))
    with pytest.raises(SessionError, match="not an AccelStudio session"):
        open_session(tmp_path / "other.accelsession")
    with pytest.raises(SessionError, match="no such file"):
        open_session(tmp_path / "missing.accelsession")


def test_exported_script_runs_and_stores_a_run(tmp_path, one_run):
    store_path = tmp_path / "runs.sqlite"
    store = RunStore(store_path)
    run = store.get_run(store.add_run(one_run))
    script = export_script(run, tmp_path / "again")
    assert script.name == "again.py" and os.access(script, os.X_OK)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(script), "--json", "--store", str(store_path)], capture_output=True,
                         text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    produced = json.loads(out.stdout.strip().splitlines()[-1])
    assert produced["status"] == "done" and produced["spec"]["recipe"] == run.spec["recipe"]
    assert len(RunStore(store_path).list_runs()) == 2
    from accelstudio.core.job import RunResult

    with pytest.raises(ScriptExportError):
        export_script(RunResult(status="failed", spec={"recipe": "nonsense"}), tmp_path / "x.py")
