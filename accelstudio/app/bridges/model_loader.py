"""Model work off the GUI thread: loading + inspection, slider predictions and weight histograms.

A file opened with trust runs its own code while it loads (TorchScript, torch.export, pickled modules), so it
is loaded and inspected in a separate process (accelstudio.worker.inspect_client) and the window gets a
data-only ModelData (accelstudio.core.model.model_data): a crash in the file's code ends that process, never
the app. Bundled examples and files opened without trust (ONNX, safetensors, weights-only state dicts: parsing
runs no code from the file) load here, which is faster.

One background thread (a ThreadPoolExecutor with one worker) runs every task, in order, so two tasks never
touch the same torch module at once. Each task has a key ("load", "predict", "histogram"); when a newer task
with the same key is submitted, the older result is dropped, so a fast slider only ever shows its latest
value. Results come back to the GUI thread through a queued Qt signal. `shutdown()` joins the thread.

Python's cyclic garbage collector runs in whichever thread happens to allocate; when that is a background
thread and the garbage holds Qt objects (the plot items of a closed window), Qt deadlocks or crashes. So the
first TaskRunner moves collection to the GUI thread (`collect_garbage_on_gui_thread`).
"""

from __future__ import annotations

import itertools
import threading
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot


_gui_collector = None  # the one GUI-thread garbage collector of this process


@dataclass(frozen=True)
class LoadedModel:
    """A model opened for the window: how to open it again (ref, backend, trust), the handle and its summary.

    `handle` is a ModelHandle, or a data-only ModelData (accelstudio.core.model.model_data) for a trusted file
    that was opened in a separate process; use accelstudio.core.compress.snapshot's model_* functions for either."""

    ref: str
    backend: str | None
    trust: bool
    handle: Any
    summary: Any

    @property
    def title(self) -> str:
        return f"{self.summary.name} ({self.handle.backend})"


def collect_garbage_on_gui_thread() -> None:
    """Turn automatic garbage collection off and collect on a GUI-thread timer instead (pyqtgraph's
    GarbageCollector, with the interpreter's thresholds). Call on the GUI thread; later calls do nothing."""
    global _gui_collector
    if _gui_collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _gui_collector = GarbageCollector(interval=0.5)


_frozen = False


def freeze_long_lived_objects() -> None:
    """Move every object alive now (the modules of torch, onnx, Qt... imported by the first model) out of the
    cyclic garbage collector's generations, once: a collection on the GUI thread then looks at new objects only,
    instead of taking a quarter of a second over hundreds of thousands of imported ones. Reference counting
    still frees them as usual. Call on the GUI thread after the first model is shown; later calls do nothing."""
    global _frozen
    if not _frozen:
        import gc

        gc.freeze()
        _frozen = True


class TaskRunner(QObject):
    """Runs callables on one background thread and calls back on the GUI thread; newest per key wins."""

    _finished = Signal(str, int, bool, object, str)  # key, ticket, ok, result or exception, traceback
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        collect_garbage_on_gui_thread()  # before any Python code runs on the background thread
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accelstudio-model")
        self._tickets = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._callbacks: dict[int, tuple[Callable, Callable | None]] = {}
        self._futures: dict[int, Future] = {}
        self._closed = False
        self._finished.connect(self._deliver)

    def submit(self, key: str, fn: Callable[[], Any], on_done: Callable[[Any], None],
               on_error: Callable[[BaseException, str], None] | None = None) -> int:
        """Run `fn()` in the background; `on_done(result)` or `on_error(exc, traceback_text)` runs later on
        the GUI thread unless a newer task with the same `key` was submitted meanwhile."""
        if self._closed:
            raise RuntimeError("the background runner is shut down")
        ticket = next(self._tickets)
        previous = self._latest.get(key)
        if previous is not None and previous in self._futures:
            self._futures[previous].cancel()  # not started yet: skip it
        self._latest[key] = ticket
        self._callbacks[ticket] = (on_done, on_error)
        was_busy = self.is_busy()
        self._futures[ticket] = self._pool.submit(self._run, key, ticket, fn)
        if not was_busy:
            self.busy_changed.emit(True)
        return ticket

    @property
    def closed(self) -> bool:
        """True once shut down: nothing more can be submitted."""
        return self._closed

    def is_busy(self, key: str | None = None) -> bool:
        """True while a task (with `key`, when given) is queued or running."""
        if key is None:
            return bool(self._futures)
        ticket = self._latest.get(key)
        return ticket is not None and ticket in self._futures

    def shutdown(self) -> None:
        """Drop queued tasks, wait for the running one and stop the thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for future in self._futures.values():
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._futures.clear()
        self._callbacks.clear()

    def _run(self, key: str, ticket: int, fn: Callable[[], Any]) -> None:
        try:
            result = fn()
        except BaseException as exc:  # every failure goes back to the GUI as data
            if not self._closed:
                self._finished.emit(key, ticket, False, exc, traceback.format_exc())
            return
        if not self._closed:
            self._finished.emit(key, ticket, True, result, "")

    @Slot(str, int, bool, object, str)
    def _deliver(self, key: str, ticket: int, ok: bool, payload: object, trace: str) -> None:
        self._futures.pop(ticket, None)
        on_done, on_error = self._callbacks.pop(ticket, (None, None))
        for stale in [t for t, f in self._futures.items() if f.cancelled()]:
            self._futures.pop(stale, None)
            self._callbacks.pop(stale, None)
        if not self._futures:
            self.busy_changed.emit(False)
        if self._closed or self._latest.get(key) != ticket or on_done is None:
            return
        if ok:
            on_done(payload)
        elif on_error is not None:
            on_error(payload, trace)


def needs_isolation(ref: str, trust: bool) -> bool:
    """True when opening `ref` may run code from the file: a file (not a bundled example) opened with trust."""
    from accelstudio.core.model.loading import EXAMPLE_PREFIX

    return trust and not ref.startswith(EXAMPLE_PREFIX)


def load_and_inspect(ref: str, trust: bool, backend: str | None,
                     cancel: threading.Event | None = None) -> LoadedModel:
    """Open a model (a path or "example:<name>") and summarize its layers. Runs on the background thread;
    `cancel` stops a load running in a separate process."""
    if needs_isolation(ref, trust):
        from accelstudio.worker.inspect_client import open_isolated

        snapshot = open_isolated(ref, backend=backend, cancel=cancel)
        return LoadedModel(ref=ref, backend=backend, trust=trust, handle=snapshot, summary=snapshot.summary)
    from accelstudio.core.model.inspect import inspect_model
    from accelstudio.core.model.loading import open_model

    handle = open_model(ref, trust=trust, backend=backend)
    summary = inspect_model(handle)
    return LoadedModel(ref=ref, backend=backend, trust=trust, handle=handle, summary=summary)


class ModelLoader(QObject):
    """Loads models in the background and reports `loaded(LoadedModel)` or `failed(ref, backend, exc, trace)`."""

    started = Signal(str)
    loaded = Signal(object)
    failed = Signal(str, object, object, str)  # ref, backend, exception, traceback

    def __init__(self, runner: TaskRunner, parent: QObject | None = None):
        super().__init__(parent)
        self._runner = runner
        self._cancel: threading.Event | None = None

    def load(self, ref: str, *, trust: bool = False, backend: str | None = None) -> None:
        """Start loading `ref`; a later call supersedes an earlier one still running (and stops its process)."""
        self.started.emit(ref)
        self.cancel()
        cancel = self._cancel = threading.Event()
        self._runner.submit(
            "load", lambda: load_and_inspect(ref, trust, backend, cancel), self.loaded.emit,
            lambda exc, trace: self.failed.emit(ref, backend, exc, getattr(exc, "child_traceback", "") or trace),
        )

    def cancel(self) -> None:
        """Stop a load running in a separate process (the child is ended; in-process loads finish)."""
        if self._cancel is not None:
            self._cancel.set()

    def is_loading(self) -> bool:
        """True while a load is queued or running."""
        return self._runner.is_busy("load")
