"""`accelstudio apply` runs in a worker process: a trusted file's code runs only there, so a file that crashes
its loader ends the worker, not the command; the worker's typed errors reach the user unchanged."""

from __future__ import annotations

import os

import pytest
import torch

from accelstudio.cli import main
from tests import factories as fx


def apply(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["apply", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_trusted_file_that_aborts_ends_only_the_worker(capsys, tmp_path):
    model = fx.crashing_pickle_file(tmp_path, "abort")
    target = tmp_path / "m.onnx"
    code, out, err = apply(capsys, str(model), "--trust", "--prune", "0.3", "--out", str(target))
    assert code == 2 and out == ""
    assert "worker crashed: SIGABRT (abort) during stage 'load'" in err and len(err.strip().splitlines()) == 1
    assert not target.exists()


def test_a_file_writing_to_stdout_cannot_fake_the_result(capsys, tmp_path):
    model = fx.crashing_pickle_file(tmp_path, "stdout_garbage")
    code, out, err = apply(capsys, str(model), "--trust", "--out", str(tmp_path / "m.onnx"))
    assert code == 2 and "not a torch nn.Module" in err and "garbage" not in out


def test_code_bearing_files_need_trust_and_then_apply_in_the_worker(capsys, tmp_path):
    script = fx.torchscript_file(tmp_path)
    target = tmp_path / "pruned.pt"
    code, _, err = apply(capsys, str(script), "--prune", "0.5", "--out", str(target))
    assert code == 2 and "trust" in err and not target.exists()
    code, out, err = apply(capsys, str(script), "--trust", "--prune", "0.5", "--out", str(target))
    assert code == 0, err
    assert f"wrote {target}" in out and "achieved%" in out
    weights = [p for n, p in torch.jit.load(str(target)).named_parameters() if n.endswith("weight")]
    assert any(float((w == 0).float().mean()) > 0.3 for w in weights)


def test_a_stage_past_its_time_limit_is_stopped(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELSTUDIO_TEST_HANG_STAGE", "load")
    code, _, err = apply(capsys, "--example", "digits-mlp", "--prune", "0.3", "--timeout", "2",
                         "--out", str(tmp_path / "m.onnx"))
    assert code == 2 and "stage 'load' timed out after 2 s" in err
    assert not list(tmp_path.iterdir())


def test_the_command_leaves_no_worker_behind(capsys, tmp_path):
    from tests.processes import live_children

    code, _, err = apply(capsys, "--example", "digits-mlp", "--prune", "0.3", "--out", str(tmp_path / "m.onnx"))
    assert code == 0, err
    assert live_children(os.getpid()) == []


@pytest.mark.parametrize("flag", [["--timeout", "0"], ["--memory-limit", "-1"]])
def test_bad_worker_limits_are_usage_errors(capsys, tmp_path, flag):
    code, _, err = apply(capsys, "--example", "digits-mlp", *flag, "--out", str(tmp_path / "m.onnx"))
    assert code == 2 and "--timeout must be > 0" in err
