"""The job kinds a worker child runs, one table: each kind's handler turns the request's payload into the
result message, with a progress callback and a cancel token.

    run      a JobSpec: load, compress, measure (accelstudio.core.pipeline.run_job); result {"run": RunResult}
    inspect  open one (possibly code-bearing) model file and send back its data-only snapshot
    study    a study from accelstudio.core.studies.registry by name; result: the study's dict
    apply    compress a model and write it to a file (accelstudio.core.compress.apply_file); result: its report
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from accelstudio.worker import protocol

Handler = Callable[[dict[str, Any], Any, Any], protocol.ResultMsg]


@dataclass(frozen=True)
class JobKind:
    """How the child runs one kind of job. `exit_on_cancel`: the job cannot check a cancel token and holds
    nothing worth saving, so a cancel ends the process at once."""

    handler: Handler
    exit_on_cancel: bool = False

    def memory_limit_mb(self, payload: dict[str, Any]) -> int:
        """The address-space cap for this job (0: none). CUDA jobs get none: CUDA maps tens of GB of virtual
        address space at init, which RLIMIT_AS would break."""
        if (payload.get("runtime") or {}).get("device") == "cuda":  # a run's JobSpec names its device
            return 0
        return int(payload.get("memory_limit_mb", 0))


def run_kind(payload: dict[str, Any], progress, cancel) -> protocol.ResultMsg:
    """Run a JobSpec through the pipeline."""
    from accelstudio.core.job import JobSpec
    from accelstudio.core.pipeline import run_job

    result = run_job(JobSpec.from_dict(payload), progress=progress, cancel=cancel)
    return protocol.ResultMsg(run=result.to_dict())


def inspect_kind(payload: dict[str, Any], progress, cancel) -> protocol.ResultMsg:
    """Open, inspect and snapshot one model file (its code, when trusted, runs only here)."""
    from accelstudio.core.compress.snapshot import snapshot_model

    backend = payload.get("backend")
    snapshot = snapshot_model(str(payload["model"]), trust=bool(payload.get("trust", False)),
                              backend=str(backend) if backend else None, progress=progress)
    return protocol.ResultMsg(payload=snapshot)


def study_kind(payload: dict[str, Any], progress, cancel) -> protocol.ResultMsg:
    """Run a registered study by name."""
    from accelstudio.core.studies.registry import run_study

    params = payload.get("params") or {}
    if not isinstance(params, dict):
        raise TypeError(f"study params must be a JSON object, got {type(params).__name__}")
    result = run_study(str(payload["name"]), params, progress, cancel)
    if not isinstance(result, dict):
        raise TypeError(f"study {payload['name']!r} returned {type(result).__name__}, not a dict")
    return protocol.ResultMsg(payload=result)


def apply_kind(payload: dict[str, Any], progress, cancel) -> protocol.ResultMsg:
    """Compress a model with a recipe and write the output file (its code, when trusted, runs only here)."""
    from accelstudio.core.compress.apply_file import ApplyRequest, apply_to_file

    request = ApplyRequest.from_dict(payload["request"])
    return protocol.ResultMsg(payload=apply_to_file(request, progress=progress, cancel=cancel))


KINDS: dict[str, JobKind] = {
    "run": JobKind(run_kind),
    "inspect": JobKind(inspect_kind, exit_on_cancel=True),
    "study": JobKind(study_kind),
    "apply": JobKind(apply_kind),
}
