"""Hostile recipes through Recipe.from_dict, load_recipe and the CLI (`accelstudio run --recipe FILE`): each
is a RecipeError naming the bad field; the CLI exits 2 with one line and no traceback, before any job runs."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from accelstudio.cli import main as cli_main
from accelstudio.core.errors import RecipeError
from accelstudio.core.recipe import Recipe, load_recipe

# (recipe dict, the field the error must name)
BAD_RECIPES = {
    "unknown-top-key": ({"prnue": {"amount": 0.5}}, "prnue"),
    "unknown-prune-key": ({"prune": {"amout": 0.5}}, "prune.amout"),
    "unknown-quantize-key": ({"quantize": {"mode": "dynamic-int8", "bitz": 8}}, "quantize.bitz"),
    "amount-above-range": ({"prune": {"amount": 1.5}}, "prune.amount"),
    "amount-one": ({"prune": {"amount": 1.0}}, "prune.amount"),
    "amount-negative": ({"prune": {"amount": -0.1}}, "prune.amount"),
    "amount-string": ({"prune": {"amount": "half"}}, "prune.amount"),
    "amount-bool": ({"prune": {"amount": True}}, "prune.amount"),
    "amount-nan": ({"prune": {"amount": math.nan}}, "prune.amount"),
    "amount-inf": ({"prune": {"amount": math.inf}}, "prune.amount"),
    "override-out-of-range": ({"prune": {"overrides": {"fc1": 2.0}}}, "prune.overrides.fc1"),
    "bits-1": ({"quantize": {"mode": "sim", "bits": 1}}, "quantize.bits"),
    "bits-9": ({"quantize": {"mode": "sim", "bits": 9}}, "quantize.bits"),
    "bits-0": ({"quantize": {"mode": "sim", "bits": 0}}, "quantize.bits"),
    "bits-float": ({"quantize": {"mode": "sim", "bits": 4.0}}, "quantize.bits"),
    "bits-string": ({"quantize": {"mode": "sim", "bits": "8"}}, "quantize.bits"),
    "bits-huge": ({"quantize": {"mode": "sim", "bits": 10**30}}, "quantize.bits"),
    "bits-with-fixed-mode": ({"quantize": {"mode": "dynamic-int8", "bits": 4}}, "quantize.bits"),
    "two-four-with-other-amount": ({"prune": {"method": "2:4", "amount": 0.3}}, "prune.amount"),
    "override-and-exclude-same-layer": ({"prune": {"amount": 0.5, "overrides": {"fc1": 0.2}, "exclude": ["fc1"]}},
                                        "prune.overrides"),
    "unknown-method": ({"prune": {"amount": 0.5, "method": "magic"}}, "prune.method"),
    "unknown-scope": ({"prune": {"amount": 0.5, "scope": "everywhere"}}, "prune.scope"),
    "unknown-mode": ({"quantize": {"mode": "int3"}}, "quantize.mode"),
    "unknown-weight-type": ({"quantize": {"mode": "dynamic-int8", "weight_type": "qint4"}}, "quantize.weight_type"),
    "unknown-calibration": ({"quantize": {"mode": "static-int8", "calibration": "magic"}}, "quantize.calibration"),
    "calib-samples-zero": ({"quantize": {"mode": "static-int8", "calib_samples": 0}}, "quantize.calib_samples"),
    "calib-samples-huge": ({"quantize": {"mode": "static-int8", "calib_samples": 10**9}}, "quantize.calib_samples"),
    "per-channel-string": ({"quantize": {"mode": "dynamic-int8", "per_channel": "yes"}}, "quantize.per_channel"),
    "version-2": ({"version": 2}, "version"),
    "prune-not-object": ({"prune": [0.5]}, "prune"),
    "exclude-string": ({"prune": {"amount": 0.5, "exclude": "fc1"}}, "prune.exclude"),
    "overrides-list": ({"prune": {"overrides": ["fc1"]}}, "prune.overrides"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECIPES))
def test_from_dict_names_the_field(case):
    data, field = BAD_RECIPES[case]
    with pytest.raises(RecipeError) as info:
        Recipe.from_dict(data)
    assert info.value.field == field and f"'{field}'" in str(info.value)


@pytest.mark.parametrize("case", sorted(BAD_RECIPES))
def test_load_recipe_names_file_and_field(case, tmp_path):
    data, field = BAD_RECIPES[case]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))  # NaN/Infinity are written as Python's json writes them
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert info.value.field == field and str(path) in str(info.value)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


BAD_FILES = {
    "not-json": b"prune: 0.5\n",
    "truncated-json": b'{"prune": {"amount": 0.5',
    "not-utf8": b'{"prune": {"amount": 0.5}}\xff\xfe',
    "root-list": b"[1, 2, 3]",
    "root-null": b"null",
    "empty": b"",
    "deep-array": b"[" * 100_000,
    "deep-object": b'{"prune": ' * 5_000 + b"{}" + b"}" * 5_000,
    "deep-but-parsable": b'{"prune": {"overrides": {"fc1": ' + b"[" * 900 + b"]" * 900 + b"}}}",
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_recipe_files(case, tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(BAD_FILES[case])
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(path) in str(info.value)


def test_recipe_path_that_is_missing_or_a_folder(tmp_path):
    for path in (tmp_path / "missing.json", tmp_path):
        with pytest.raises(RecipeError) as info:
            load_recipe(path)
        assert info.value.field == "<file>" and str(path) in str(info.value)


CLI_CASES = sorted(["amount-above-range", "bits-9", "unknown-prune-key", "two-four-with-other-amount",
                    "override-and-exclude-same-layer", "amount-nan"])


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_run_refuses_bad_recipe_with_exit_2(case, tmp_path, capsys):
    data, field = BAD_RECIPES[case]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    store = tmp_path / "runs.sqlite"
    code = cli_main(["run", "--example", "digits-mlp", "--recipe", str(path), "--store", str(store)])
    out, err = capsys.readouterr()
    assert code == 2
    assert f"'{field}'" in err and str(path) in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1
    assert not store.exists()  # refused before any job or store was touched


@pytest.mark.parametrize("args, field", [
    (["--prune", "1.5"], "prune.amount"), (["--quantize", "sim-9"], "quantize.bits"),
    (["--quantize", "sim-x"], "quantize.mode"), (["--quantize", "int3"], "quantize.mode"),
    (["--prune-method", "2:4", "--prune", "0.3"], "prune.amount"), (["--calib-samples", "0", "--quantize",
                                                                     "static-int8"], "quantize.calib_samples"),
])
def test_cli_run_refuses_bad_recipe_flags(args, field, tmp_path, capsys):
    code = cli_main(["run", "--example", "digits-mlp", *args, "--store", str(tmp_path / "runs.sqlite")])
    out, err = capsys.readouterr()
    assert code == 2 and f"'{field}'" in err and "Traceback" not in err + out


def test_cli_bad_recipe_in_a_real_process(tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(BAD_FILES["deep-array"])
    proc = subprocess.run([sys.executable, "-m", "accelstudio", "run", "--example", "digits-mlp", "--recipe",
                           str(path), "--store", str(tmp_path / "runs.sqlite")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "'<root>'" in proc.stderr and str(path) in proc.stderr and "Traceback" not in proc.stderr
