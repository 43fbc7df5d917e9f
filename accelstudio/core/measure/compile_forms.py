"""Compiled forms of a model, each built and timed for its compile cost: torch.compile (inductor), TorchScript
(trace + freeze), ONNX Runtime sessions at each graph optimization level, ONNX Runtime's OpenVINO execution
provider. Used by compile_step.py, which measures them against the eager form.

Each builder returns `Form`s: a zero-argument call doing one inference on the fixed inputs, the seconds the
compilation took (for inductor: the first call, where compilation happens, minus one eager call), and what the
compiler reported (graphs and graph breaks from torch._dynamo.explain). A backend that cannot exist here raises
CompileUnavailable with what to install; nothing is guessed.

Inductor writes generated C++ and its cache; TORCHINDUCTOR_CACHE_DIR is pointed into AccelStudio's own data
folder (unless the user set it) so nothing lands in a shared /tmp folder.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from accelstudio.core.errors import RuntimeUnavailableError
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.model.handle import ModelHandle


class CompileUnavailable(RuntimeUnavailableError):
    """A compiler or execution provider that this machine (or this model's format) does not have."""


@dataclass(frozen=True)
class Form:
    """One way to run the model: `call()` does one inference. `compile_s` is None for the eager reference."""

    name: str
    call: Callable[[], Any]
    compile_s: float | None = None
    graphs: int | None = None
    graph_breaks: int | None = None
    break_reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def c_compiler() -> str | None:
    """The C++ compiler inductor would use on the CPU ($CXX, else g++, c++, clang++), or None."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _torch_args(handle: ModelHandle, inputs: dict[str, np.ndarray]) -> tuple:
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(inputs[s.name])) for s in handle.inputs)


def _need_torch(handle: ModelHandle, backend: str) -> None:
    if handle.backend != "torch" or handle.module is None:
        raise CompileUnavailable(f"{backend} runs torch models and {handle.name} is an ONNX graph here; measure "
                                 "the torch form with --runtime torch, or use --compile ort-levels")


def torch_eager(handle: ModelHandle, inputs: dict[str, np.ndarray]) -> Form:
    """The eager torch module (the reference of inductor and TorchScript)."""
    _need_torch(handle, "torch eager")
    import torch

    module, args = handle.module.eval(), _torch_args(handle, inputs)

    def call() -> Any:
        with torch.no_grad():
            return module(*args)

    return Form("torch eager", call)


def inductor(handle: ModelHandle, inputs: dict[str, np.ndarray]) -> Form:
    """torch.compile with the inductor backend on the CPU (static shapes: the measured inputs)."""
    _need_torch(handle, "torch.compile")
    if c_compiler() is None:
        raise CompileUnavailable("torch.compile (inductor) generates C++ on the CPU and no C++ compiler was found "
                                 "(g++, c++ or clang++; $CXX): install one (e.g. apt install g++) or use torchscript")
    _private_inductor_cache()
    import torch
    import torch._dynamo as dynamo

    module, args = handle.module.eval(), _torch_args(handle, inputs)
    dynamo.reset()
    with torch.no_grad():
        explained = dynamo.explain(module)(*args)
        start = time.perf_counter()
        module(*args)
        eager_s = time.perf_counter() - start
    reasons = tuple(dict.fromkeys(_reason(r) for r in explained.break_reasons))
    dynamo.reset()
    compiled = torch.compile(module, backend="inductor", dynamic=False)
    start = time.perf_counter()
    with torch.no_grad():
        compiled(*args)  # compilation happens here
    compile_s = max(time.perf_counter() - start - eager_s, 0.0)

    def call() -> Any:
        with torch.no_grad():
            return compiled(*args)

    return Form("inductor", call, compile_s, int(explained.graph_count), int(explained.graph_break_count), reasons)


def _reason(r: Any) -> str:
    text = str(getattr(r, "reason", r)).strip().splitlines()
    return text[0][:200] if text else "?"


def _private_inductor_cache() -> None:
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        from accelstudio.core.paths import data_dir

        folder = data_dir() / "cache" / "inductor"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)


def torchscript(handle: ModelHandle, inputs: dict[str, np.ndarray]) -> Form:
    """torch.jit.trace + freeze (as the torchscript runtime measures it)."""
    _need_torch(handle, "TorchScript")
    import torch

    from accelstudio.core.measure.runtimes import _trace

    args = _torch_args(handle, inputs)
    start = time.perf_counter()
    traced = _trace(handle.module.eval(), args, handle.name)
    compile_s = time.perf_counter() - start

    def call() -> Any:
        with torch.no_grad():
            return traced(*args)

    return Form("torchscript", call, compile_s)


def ort_form(handle: ModelHandle, settings: RuntimeSettings, inputs: dict[str, np.ndarray], level: str,
             provider: str = "CPUExecutionProvider", name: str | None = None) -> Form:
    """An ONNX Runtime session at graph optimization `level` on `provider` (session creation is its compile)."""
    import onnxruntime as ort

    from accelstudio.core.measure.runtimes import OrtPredictor, onnx_bytes, ort_session_options

    data = onnx_bytes(handle, settings.batch)
    opts = ort_session_options(RuntimeSettings(**{**settings.to_dict(), "graph_opt_level": level}))
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    start = time.perf_counter()
    session = ort.InferenceSession(data, opts, providers=providers)
    compile_s = time.perf_counter() - start
    notes = ()
    if provider not in session.get_providers():
        notes = (f"{provider} could not be loaded: the session runs on {', '.join(session.get_providers())}",)
    call = OrtPredictor(session, settings.device, provider).bind(inputs)
    return Form(name or f"ort-{level}", call, compile_s, notes=notes)


def openvino_provider() -> str:
    """The OpenVINO execution provider when this onnxruntime build has it; CompileUnavailable otherwise."""
    import onnxruntime as ort

    if "OpenVINOExecutionProvider" not in ort.get_available_providers():
        raise CompileUnavailable("ONNX Runtime's OpenVINO execution provider is not installed here (providers: "
                                 f"{', '.join(ort.get_available_providers())}); install onnxruntime-openvino "
                                 "in place of onnxruntime to measure it")
    return "OpenVINOExecutionProvider"
