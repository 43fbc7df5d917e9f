"""A stand-in for the app process, killed by hostile tests in the middle of its work.

  python app_loop.py jobs STORE N     runs N short jobs through the real worker (execute_job), saving each in
                                      STORE; prints "progress STAGE" for each progress message and
                                      "committed RUN_ID" once a run is saved
  python app_loop.py commits STORE    saves synthetic runs as fast as it can, printing "committed RUN_ID"
"""

from __future__ import annotations

import sys

from accelstudio.core.job import JobSpec, RunResult, RuntimeSettings
from accelstudio.core.runs.store import RunStore

FAST = RuntimeSettings(runtime="onnxruntime", threads=1, warmup=1, repeats=5, time_budget_s=0.3)


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run_jobs(store: RunStore, n: int) -> None:
    from accelstudio.worker.client import execute_job

    def on_message(msg) -> None:
        if msg.type == "progress":
            say(f"progress {msg.stage}")

    for _ in range(n):
        spec = JobSpec(model="example:digits-mlp", runtime=FAST, keep_artifact=False, max_eval_samples=64)
        result = execute_job(spec, store=store, on_message=on_message)
        say(f"committed {result.run_id} {result.status}")


def commit_forever(store: RunStore) -> None:
    i = 0
    while True:
        i += 1
        run = RunResult(status="done", spec={"model": f"m{i}.onnx"}, metrics={"p50_ms": float(i)},
                        latencies_ms=[float(i)] * 200, model_identity={"path": f"m{i}.onnx", "name": f"m{i}"})
        say(f"committed {store.add_run(run)} done")


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    store = RunStore(path)
    if mode == "jobs":
        run_jobs(store, int(sys.argv[3]))
    else:
        commit_forever(store)
