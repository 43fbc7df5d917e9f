"""`accelstudio search`: a real (tiny) search from the command line, its JSON document and its usage errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from accelstudio.cli import search_cmd


def _config(*argv):
    parser = argparse.ArgumentParser()
    search_cmd.register(parser.add_subparsers())
    return search_cmd.build_config(parser.parse_args(["search", *argv]))


def test_json_search_of_an_example(tmp_path):
    store = tmp_path / "runs.sqlite"
    out = subprocess.run([sys.executable, "-m", "accelstudio", "search", "--example", "digits-mlp", "--max-drop",
                          "2", "--budget", "2m", "--max-trials", "1", "--quant-modes", "none,dynamic-int8",
                          "--vary", "granularity", "--screen-samples", "40", "--json", "--store", str(store)],
                         capture_output=True, text=True, timeout=400)
    assert out.returncode in (0, 1), out.stderr
    doc = json.loads(out.stdout)
    assert doc["trials_used"] == 1 and doc["status"] == "done"
    first = doc["trials"][0]
    assert first["phase"] == "screen" and first["status"] == "done" and first["n_eval"] == 40
    assert first["judged_on"] == "accuracy" and first["drop_ci"] is not None
    from accelstudio.core.runs.store import RunStore

    s = RunStore(store)
    assert s.get_study(doc["study_id"]).kind == "search"
    assert len(s.list_runs(study_id=doc["study_id"])) == len(doc["trials"])


def test_flags_build_the_space_and_budget():
    config = _config("--example", "digits-cnn", "--min-cosine", "0.995", "--budget", "1h30m", "--vary",
                     "weight-type,graph-opt", "--objective", "size", "--threads", "2")
    assert config.budget_s == 5400 and config.objective == "size" and config.runtime.threads == 2
    assert config.constraint.min_cosine == 0.995 and config.constraint.max_drop is None
    assert config.space.weight_type and not config.space.granularity
    assert config.space.graph_opt_levels == ("basic", "all") and config.space.prune_methods == ()
    assert search_cmd.parse_budget("90s") == 90 and search_cmd.parse_budget("45") == 45
    shaped = _config("model.onnx", "--max-drop", "1", "--input-shape", "x=1x3x32x32")
    assert shaped.input_shapes == {"x": [1, 3, 32, 32]} and shaped.model == "model.onnx"


def test_usage_errors():
    with pytest.raises(search_cmd.UsageError, match="constraint"):
        _config("--example", "digits-mlp")
    with pytest.raises(search_cmd.UsageError, match="budget"):
        _config("--example", "digits-mlp", "--max-drop", "1", "--budget", "ten minutes")
    with pytest.raises(search_cmd.UsageError, match="vary"):
        _config("--example", "digits-mlp", "--max-drop", "1", "--vary", "colour")


def test_resume_continues_the_stored_search(tmp_path):
    store = tmp_path / "runs.sqlite"
    common = ["--budget", "2m", "--max-trials", "1", "--screen-samples", "40", "--json", "--store", str(store)]
    first = subprocess.run([sys.executable, "-m", "accelstudio", "search", "--example", "digits-mlp", "--min-cosine",
                            "0.99", "--quant-modes", "none,dynamic-int8", "--vary", "granularity", *common],
                           capture_output=True, text=True, timeout=400)
    doc = json.loads(first.stdout)
    again = subprocess.run([sys.executable, "-m", "accelstudio", "search", "--resume", str(doc["study_id"]), *common],
                           capture_output=True, text=True, timeout=400)
    resumed = json.loads(again.stdout)
    assert resumed["study_id"] == doc["study_id"] and resumed["trials_used"] == 2
    assert resumed["config"]["model"] == "example:digits-mlp"
    assert resumed["config"]["constraint"] == {"max_drop": None, "min_cosine": 0.99}
    points = [t["point"] for t in resumed["trials"] if t["phase"] == "screen"]
    assert points[0] != points[1]
    listed = subprocess.run([sys.executable, "-m", "accelstudio", "search", "--list", "--json", "--store", str(store)],
                            capture_output=True, text=True, timeout=120)
    (row,) = json.loads(listed.stdout)
    assert row["study_id"] == doc["study_id"] and row["trials"] == 2 and row["status"] == "done"
