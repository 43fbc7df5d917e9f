"""`accelstudio sensitivity`: a study run through the worker, stored, printed as JSON, shown again by id; and
the stored record read back by the shared ranking function."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from accelstudio.core.runs.store import RunStore
from accelstudio.core.studies.sensitivity_params import SensitivityParams
from accelstudio.core.studies.sensitivity_result import sensitivity_ranking
from accelstudio.core.studies.sensitivity_store import latest_study
from tests.core.sensitivity_models import SENSITIVE, sensitive_mlp


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accelstudio", *args], capture_output=True, text=True, timeout=300)


def test_json_run_then_show_and_list(tmp_path):
    model = sensitive_mlp(tmp_path)
    store_path = tmp_path / "runs.db"
    out = run_cli("sensitivity", str(model), "--samples", "48", "--amounts", "0.5", "0.9", "--quantize", "sim-4",
                  "--budget", "120", "--store", str(store_path), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "done" and doc["ranking"][0] == SENSITIVE
    assert [s["label"] for s in doc["settings"]] == ["prune 50%", "prune 90%", "sim-4 alone", "float alone"]
    assert doc["samples"]["n"] == 48 and doc["params"]["model"] == str(model)
    record = RunStore(store_path).get_study(doc["study_id"])
    assert record.kind == "sensitivity" and sensitivity_ranking(record) == doc["ranking"]
    assert latest_study(RunStore(store_path), str(model)).study_id == doc["study_id"]
    shown = run_cli("sensitivity", "--show", str(doc["study_id"]), "--store", str(store_path))
    assert shown.returncode == 0, shown.stderr
    first = next(line for line in shown.stdout.splitlines() if line.strip().startswith("1 "))
    assert SENSITIVE in first and "sim-4 alone" in shown.stdout
    listed = run_cli("sensitivity", "--list", "--json", "--store", str(store_path))
    assert json.loads(listed.stdout)[0]["study_id"] == doc["study_id"]


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("sensitivity", "--store", str(tmp_path / "s.db")).returncode == 2
    bad = run_cli("sensitivity", "--example", "digits-mlp", "--amounts", "1.5", "--store", str(tmp_path / "s.db"))
    assert bad.returncode == 2 and "between 0 and 1" in bad.stderr


def test_worker_failure_is_stored_as_failed(tmp_path):
    from accelstudio.core.errors import AccelStudioError
    from accelstudio.worker.sensitivity_client import run_sensitivity_study

    store = RunStore(tmp_path / "runs.db")
    with pytest.raises(AccelStudioError):
        run_sensitivity_study(SensitivityParams(model=str(tmp_path / "missing.onnx")), store)
    (record,) = store.list_studies("sensitivity")
    assert record.status == "failed" and "missing.onnx" in record.result["error"]
