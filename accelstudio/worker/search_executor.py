"""The search's default trial executor: each trial a job in a fresh local worker process (execute_job through
run_many), stored as a trial of its study; the model's layers read by an isolated inspect job."""

from __future__ import annotations

import threading
from typing import Callable

from accelstudio.core.job import JobSpec, RunResult
from accelstudio.worker.client import OnMessage, run_many


class LocalWorkerExecutor:
    """Runs trial jobs one at a time on this machine (latency trials must not overlap on one host), saving
    each in `store`; `on_message` sees the worker's progress messages, `on_result` each finished run."""

    def __init__(self, store, on_message: OnMessage | None = None,
                 on_result: Callable[[RunResult], None] | None = None):
        self.store = store
        self.on_message = on_message
        self.on_result = on_result

    def run(self, specs: list[JobSpec], cancel: threading.Event, study_id: int | None) -> list[RunResult]:
        """Results in order, each stored with `study_id`; one cancel for the running job and the rest."""
        return run_many(list(specs), self.store, self.on_message, cancel, study_id, on_result=self.on_result)

    def describe_model(self, model: str, trust: bool, cancel: threading.Event):
        """The model's data-only snapshot (ModelData), loaded and inspected in a worker process."""
        from accelstudio.worker.inspect_client import open_isolated

        return open_isolated(model, trust=trust, cancel=cancel)
