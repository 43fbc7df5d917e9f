"""Checks shared by the worker and GUI hostile tests: a store with earlier runs, and what a failed run and the
store must look like afterwards."""

from __future__ import annotations

from accelstudio.core.job import RunResult
from accelstudio.core.runs.store import RunStore


def store_with_history(path=None) -> tuple[RunStore, list[int]]:
    """A RunStore (default: the app's own, under $ACCELSTUDIO_HOME) holding two earlier runs."""
    store = RunStore(path)
    earlier = [RunResult(status="done", spec={"model": "example:digits-mlp"}, metrics={"p50_ms": 0.1},
                         model_identity={"path": "m.onnx", "sha256": "a" * 64, "name": "earlier"}),
               RunResult(status="failed", reason="an earlier failure", spec={"model": "x.onnx"})]
    return store, [store.add_run(r) for r in earlier]


def assert_store_survived(store: RunStore, earlier: list[int], result: RunResult | None = None) -> None:
    """The store passes SQLite's integrity check, every earlier run is still there, and `result` was saved."""
    assert store.integrity_ok()
    for run_id in earlier:
        assert store.get_run(run_id).run_id == run_id
    if result is not None:
        assert result.run_id is not None
        saved = store.get_run(result.run_id)
        assert (saved.status, saved.reason) == (result.status, result.reason)


def assert_user_error(result: RunResult, category: str, filename: str) -> None:
    """A failed run caused by the user's input: its category (which model errors also spell out in the reason),
    the file named in the reason, no traceback."""
    assert result.status == "failed", result.reason
    assert result.metrics.get("error_category") == category, (result.reason, result.metrics)
    assert filename in result.reason, result.reason
    assert category in result.reason or category == "data set error", result.reason
    assert "traceback" not in result.metrics
