"""`accelstudio run` takes ONNX Runtime's thread knobs and a compiled form to measure, into the job spec."""

from __future__ import annotations

import argparse

import pytest

from accelstudio.cli import run_cmd


def _spec(*argv):
    parser = argparse.ArgumentParser()
    run_cmd.register(parser.add_subparsers())
    return run_cmd.build_spec(parser.parse_args(["run", "--example", "digits-mlp", *argv]))


def test_knob_flags_reach_the_runtime_settings():
    rt = _spec("--spinning", "on", "--inter-threads", "2", "--intra-threads", "1", "--graph-opt", "basic",
               "--compile", "ort-levels").runtime
    assert (rt.spinning, rt.inter_threads, rt.intra_threads, rt.graph_opt_level, rt.compile) == \
        (True, 2, 1, "basic", "ort-levels")
    default = _spec().runtime
    assert (default.spinning, default.inter_threads, default.graph_opt_level, default.compile) == \
        (False, 1, "all", "")
    assert _spec("--spinning", "default").runtime.spinning is None


def test_bad_knobs_are_refused():
    with pytest.raises(run_cmd.UsageError, match="inter-threads"):
        _spec("--inter-threads", "-1")
    with pytest.raises(SystemExit):
        _spec("--graph-opt", "fast")
