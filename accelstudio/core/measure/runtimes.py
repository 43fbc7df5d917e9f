"""Runtimes a model can be measured on, found at run time, and predictors that run a model on one of them.

A `Predictor` holds a ready model (a torch module, a traced TorchScript module or an ONNX Runtime session).
`run(inputs)` is the convenient call used for evaluation (NumPy in, first output as NumPy out); `bind(inputs)`
converts the inputs once and returns a zero-argument callable doing nothing but the inference call, which is
what the benchmark times, so conversions never count as model latency.

What actually ran is checked, not assumed: `Predictor.execution()` reports the device the model ran on (the
tensors' device for torch, the session's registered providers for ONNX Runtime, which falls back to the CPU
when a GPU provider cannot load, with only a log line), and `check_execution` refuses a run whose device or
provider differs from the request (DeviceMismatchError). Threads: 0 means the cores this process may use
(environment.resolve_threads); torch and ONNX Runtime are both given that one number.

ONNX Runtime sessions are created with intra-op spinning off by default: measured here on digits-resnet (2
threads, batch 1, interleaved) the p50 moved by under 3% either way, while spinning threads keep a core busy
after each call and slow whatever else runs on the machine (another runtime, the GUI, other users' jobs).
Spinning, inter-op threads, ONNX Runtime's own intra-op thread count and its graph optimization level are
RuntimeSettings knobs (ort_knobs), recorded in the execution record, so their effect is measured, not assumed.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

import numpy as np

from accelstudio.core.measure.environment import resolve_threads
from accelstudio.core.errors import RuntimeUnavailableError
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.model.handle import ModelHandle

ONNX_OPSET = 17
DEFAULT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
PROVIDER_DEVICES = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda",
                    "TensorrtExecutionProvider": "cuda"}
# Listed by onnxruntime wheels but only forwards requests to remote endpoints; it never runs a local graph.
SKIPPED_PROVIDERS = {"AzureExecutionProvider"}


class DeviceMismatchError(RuntimeUnavailableError):
    """The runtime ran the model somewhere other than requested (e.g. CUDA asked, CPU used)."""


@dataclass(frozen=True)
class RuntimeOption:
    """One runtime/device pair usable on this machine; `provider` is the ONNX Runtime provider, if any."""

    runtime: str
    device: str
    label: str
    provider: str | None = None


def available_runtimes() -> list[RuntimeOption]:
    """Every runtime/device pair that works here, discovered now (torch CPU is always present)."""
    import torch

    options = [RuntimeOption("torch", "cpu", "PyTorch eager (CPU)")]
    cuda = torch.cuda.is_available()
    if cuda:
        options.append(RuntimeOption("torch", "cuda", "PyTorch eager (CUDA)"))
    options.append(RuntimeOption("torchscript", "cpu", "TorchScript (CPU)"))
    if cuda:
        options.append(RuntimeOption("torchscript", "cuda", "TorchScript (CUDA)"))
    for provider in _ort_providers():
        device = PROVIDER_DEVICES.get(provider, provider.removesuffix("ExecutionProvider").lower())
        short = provider.removesuffix("ExecutionProvider")
        options.append(RuntimeOption("onnxruntime", device, f"ONNX Runtime ({short})", provider))
    return options


def _ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return [p for p in ort.get_available_providers() if p not in SKIPPED_PROVIDERS]


def _describe(options: list[RuntimeOption]) -> str:
    return ", ".join(f"{o.runtime}/{o.device}" + (f" ({o.provider})" if o.provider else "") for o in options)


class Predictor:
    """A model ready to run on one runtime. Subclasses implement `_convert` and `_call`."""

    runtime = ""

    def __init__(self, device: str, input_names: list[str]):
        self.device = device
        self.input_names = input_names
        self.cold_start_ms: float | None = None  # creation time; the pipeline adds the first call
        self.notes: list[str] = []
        self.name = ""  # the model's name, for messages

    def execution(self) -> dict[str, Any]:
        """What actually ran: {"device": "cpu" | "cuda" | ..., "providers": [ONNX Runtime providers, empty for
        torch], "threads": intra-op threads the runtime was given} (the metrics["execution"] record)."""
        raise NotImplementedError

    def bind(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        """A zero-argument callable running one inference on `inputs` (converted once, here)."""
        raise NotImplementedError

    def timing_context(self) -> ContextManager:
        """The context the calls of `bind` must run in (torch: inference mode); enter it once per thread."""
        return contextlib.nullcontext()

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run once and return the first output as a NumPy array."""
        with self.timing_context():
            return self._first_output(self.bind(inputs)())

    def _first_output(self, out: Any) -> np.ndarray:
        raise NotImplementedError

    def _check_inputs(self, inputs: dict[str, np.ndarray]) -> None:
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ValueError(f"inputs missing for {missing}; the model takes {self.input_names}")


class TorchPredictor(Predictor):
    """PyTorch eager (and TorchScript, which only differs in how the module is prepared)."""

    runtime = "torch"

    def __init__(self, module: Any, device: str, input_names: list[str]):
        super().__init__(device, input_names)
        self.module = module
        self._output_device: str | None = None  # seen on the first output converted by run()

    def execution(self) -> dict[str, Any]:
        import torch

        # the weights' device says where the arithmetic ran (a module may move its result to the CPU itself);
        # a module without weights (frozen TorchScript) is judged by its output
        device = _module_device(self.module) or self._output_device or self.device
        return {"device": device, "providers": [], "threads": int(torch.get_num_threads())}

    def bind(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        import torch

        self._check_inputs(inputs)
        args = tuple(torch.from_numpy(np.ascontiguousarray(inputs[n])).to(self.device) for n in self.input_names)
        module = self.module
        if self.device == "cuda":
            sync = torch.cuda.synchronize

            def call() -> Any:
                out = module(*args)
                sync()
                return out

            return call
        return lambda: module(*args)

    def timing_context(self) -> ContextManager:
        import torch

        return torch.inference_mode()

    def _first_output(self, out: Any) -> np.ndarray:
        import torch

        while not isinstance(out, torch.Tensor):
            if isinstance(out, dict):
                out = next(iter(out.values()))
            elif isinstance(out, (list, tuple)) and out:
                out = out[0]
            else:
                raise TypeError(f"the model returned {type(out).__name__}, not a tensor")
        self._output_device = out.device.type
        return out.detach().float().cpu().numpy() if out.dtype in (torch.float16, torch.bfloat16) \
            else out.detach().cpu().numpy()


class TorchScriptPredictor(TorchPredictor):
    runtime = "torchscript"


class OrtPredictor(Predictor):
    """An ONNX Runtime session."""

    runtime = "onnxruntime"

    def __init__(self, session: Any, device: str, provider: str):
        super().__init__(device, [i.name for i in session.get_inputs()])
        self.session = session
        self.provider = provider
        self._dtypes = {i.name: _ORT_DTYPES.get(i.type) for i in session.get_inputs()}
        self.knobs: dict[str, Any] = {}  # ort_knobs of the settings the session was made with

    def execution(self) -> dict[str, Any]:
        providers = list(self.session.get_providers())  # registered with the session: what can actually run
        opts = self.session.get_session_options()
        record = {"device": provider_device(providers[0]) if providers else "unknown", "providers": providers,
                  "threads": int(opts.intra_op_num_threads)}
        if self.knobs:  # read back from the session where ORT exposes it, else as applied
            record.update({"inter_threads": int(opts.inter_op_num_threads),
                           "execution_mode": "parallel" if opts.execution_mode.name == "ORT_PARALLEL"
                           else "sequential",
                           "spinning": self.knobs["spinning"], "graph_opt_level": self.knobs["graph_opt_level"]})
        return record

    def bind(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        self._check_inputs(inputs)
        feed = {}
        for n in self.input_names:
            arr = np.ascontiguousarray(inputs[n])
            want = self._dtypes.get(n)
            feed[n] = arr.astype(want) if want is not None and arr.dtype != want else arr
        run = self.session.run
        return lambda: run(None, feed)

    def _first_output(self, out: Any) -> np.ndarray:
        return np.asarray(out[0])


def provider_device(provider: str) -> str:
    """The device an ONNX Runtime execution provider runs on ("cpu", "cuda", or the provider's short name)."""
    return PROVIDER_DEVICES.get(provider, provider.removesuffix("ExecutionProvider").lower())


def _module_device(module: Any) -> str | None:
    """The device type of a module's first parameter or buffer (None for a module holding neither, such as
    a frozen TorchScript module whose weights became constants)."""
    for tensors in (module.parameters, module.buffers):
        try:
            first = next(iter(tensors()), None)
        except Exception:  # noqa: BLE001 - some scripted modules do not expose these; the output device decides
            first = None
        if first is not None:
            return first.device.type
    return None


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
               "tensor(int8)": np.int8, "tensor(bool)": np.bool_}


def make_predictor(handle: ModelHandle, settings: RuntimeSettings) -> Predictor:
    """A predictor for `handle` on the runtime and device of `settings`; `cold_start_ms` is set to the
    creation time (session build, trace, export). RuntimeUnavailableError when the pair does not exist here
    or cannot take this model."""
    _check_available(settings)
    start = time.perf_counter()
    _set_torch_threads(resolve_threads(settings.threads))
    if settings.runtime == "onnxruntime":
        predictor: Predictor = _make_ort(handle, settings)
    elif settings.runtime in ("torch", "torchscript"):
        predictor = _make_torch(handle, settings)
    else:
        raise RuntimeUnavailableError(f"unknown runtime '{settings.runtime}'; available: "
                                      f"{_describe(available_runtimes())}")
    predictor.cold_start_ms = (time.perf_counter() - start) * 1000.0
    predictor.name = handle.name
    check_execution(settings, predictor.execution(), handle.name)
    return predictor


def requested_provider(settings: RuntimeSettings) -> str | None:
    """The ONNX Runtime provider a request means (None for the torch runtimes)."""
    if settings.runtime != "onnxruntime":
        return None
    return settings.provider or DEFAULT_PROVIDERS.get(settings.device, "CPUExecutionProvider")


def check_execution(settings: RuntimeSettings, execution: dict[str, Any], name: str = "the model") -> None:
    """Raise DeviceMismatchError when `execution` (Predictor.execution()) shows the model did not run where
    `settings` asked: another device, or (ONNX Runtime) without the requested provider. Call it after the
    first inference too: torch reports the device its outputs landed on."""
    provider = requested_provider(settings)
    # an explicitly named provider defines its own device label (as available_runtimes lists it)
    want_device = provider_device(settings.provider) if provider and settings.provider else settings.device
    want_device = want_device.split(":")[0]
    ran = execution.get("device")
    providers = execution.get("providers") or []
    if provider is not None and provider not in providers:
        raise DeviceMismatchError(
            f"{name}: {settings.runtime} was asked for {provider} on {settings.device} but the session runs on "
            f"{', '.join(providers) or 'no provider'} ({ran}): ONNX Runtime fell back because {provider} "
            f"could not be loaded. Install the onnxruntime build with that provider (and its libraries, e.g. "
            f"CUDA and cuDNN for CUDAExecutionProvider), or choose device cpu")
    if ran is not None and ran != want_device:
        raise DeviceMismatchError(
            f"{name}: {settings.runtime} was asked to run on {settings.device} but ran on {ran}; no figure of "
            f"this run would describe {settings.device}. Check that the device is visible to this process "
            f"(drivers, CUDA_VISIBLE_DEVICES), or choose device {ran}")


def _set_torch_threads(threads: int) -> None:
    """Give torch the run's thread count whenever it is loaded, also for ONNX Runtime runs (torch steps such
    as export and pruning run in the same process, and the environment record reads torch's count)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def check_runtime(settings: RuntimeSettings, handle: ModelHandle | None = None) -> None:
    """Raise RuntimeUnavailableError now if the runtime/device does not exist here or cannot take `handle`
    (an ONNX model on torch), so a job fails before any work."""
    _check_available(settings)
    if handle is not None and handle.backend == "onnx" and settings.runtime in ("torch", "torchscript"):
        raise RuntimeUnavailableError(_onnx_on_torch(handle.name, settings.runtime))


def _onnx_on_torch(name: str, runtime: str) -> str:
    return (f"{name} is an ONNX model and cannot run on {runtime}; choose the onnxruntime runtime "
            "(or open the torch version of the model)")


def _check_available(settings: RuntimeSettings) -> None:
    options = available_runtimes()
    if settings.runtime == "onnxruntime" and settings.provider:
        ok = any(o.runtime == "onnxruntime" and o.provider == settings.provider for o in options)
        what = f"onnxruntime provider '{settings.provider}'"
    else:
        ok = any(o.runtime == settings.runtime and o.device == settings.device for o in options)
        what = f"runtime '{settings.runtime}' on device '{settings.device}'"
    if not ok:
        raise RuntimeUnavailableError(f"{what} is not available on this machine; available: {_describe(options)}")


def _make_torch(handle: ModelHandle, settings: RuntimeSettings) -> TorchPredictor:
    import torch

    if handle.backend != "torch" or handle.module is None:
        raise RuntimeUnavailableError(_onnx_on_torch(handle.name, settings.runtime))
    torch.set_num_threads(resolve_threads(settings.threads))
    module = handle.module.eval().to(settings.device)
    names = [i.name for i in handle.inputs]
    if settings.runtime == "torch":
        return TorchPredictor(module, settings.device, names)
    example = tuple(torch.from_numpy(_zeros(spec, settings.batch)).to(settings.device) for spec in handle.inputs)
    predictor = TorchScriptPredictor(_trace(module, example, handle.name), settings.device, names)
    return predictor


def _trace(module: Any, example: tuple, name: str) -> Any:
    import torch

    try:
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(module, example, check_trace=False)
    except Exception as exc:  # tracing raises many types for unsupported Python control flow
        raise RuntimeUnavailableError(
            f"{name} cannot be traced to TorchScript ({type(exc).__name__}: {_first_line(exc)}); "
            "use the torch or onnxruntime runtime") from exc
    try:
        return torch.jit.freeze(traced.eval())
    except Exception:  # freezing is an optimization; a traced module that cannot be frozen still runs
        return traced


def _make_ort(handle: ModelHandle, settings: RuntimeSettings) -> OrtPredictor:
    import onnxruntime as ort

    provider = settings.provider or DEFAULT_PROVIDERS.get(settings.device, "CPUExecutionProvider")
    opts = ort_session_options(settings)
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    data = onnx_bytes(handle, settings.batch)
    try:
        session = ort.InferenceSession(data, opts, providers=providers)
    except Exception as exc:  # ORT reports graph problems as several exception types
        raise RuntimeUnavailableError(
            f"ONNX Runtime cannot create a session for {handle.name}: {_first_line(exc)}") from exc
    # ONNX Runtime's Python session re-creates itself on the CPU when a provider fails inside run(), printing
    # one line: a GPU measurement could turn into a CPU one half-way. Off: such a failure now raises.
    if hasattr(session, "disable_fallback"):
        session.disable_fallback()
    predictor = OrtPredictor(session, settings.device, provider)
    predictor.knobs = ort_knobs(settings)
    predictor.device = predictor.execution()["device"]
    return predictor


GRAPH_OPT_NAMES = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                   "all": "ORT_ENABLE_ALL"}


def ort_knobs(settings: RuntimeSettings) -> dict[str, Any]:
    """The ONNX Runtime knobs of `settings` as they take effect: intra-op threads (`intra_threads`, else
    `threads`, resolved; never 0, ORT's own "all" differs from torch's), inter-op threads and the executor they
    imply, spinning (None resolved to ORT's default, on) and the graph optimization level. RuntimeUnavailableError
    for an unknown level or a negative thread count."""
    if settings.graph_opt_level not in GRAPH_OPT_NAMES:
        raise RuntimeUnavailableError(f"unknown ONNX Runtime graph optimization level {settings.graph_opt_level!r}; "
                                      f"choose one of {', '.join(GRAPH_OPT_NAMES)}")
    intra = settings.intra_threads if settings.intra_threads is not None else settings.threads
    if intra < 0 or settings.inter_threads < 0:
        raise RuntimeUnavailableError("ONNX Runtime thread counts must be >= 0 (0 = all cores)")
    inter = resolve_threads(settings.inter_threads)
    return {"threads": resolve_threads(intra), "inter_threads": inter,
            "execution_mode": "parallel" if inter > 1 else "sequential",
            "spinning": True if settings.spinning is None else bool(settings.spinning),
            "spinning_requested": settings.spinning, "graph_opt_level": settings.graph_opt_level}


def ort_session_options(settings: RuntimeSettings) -> Any:
    """ONNX Runtime SessionOptions carrying the knobs of `settings` (see ort_knobs); every measured session uses
    them (the profiler builds its session from them too, so a profile describes the same kernels as the timed
    run). Spinning is only set when asked (True/False); None leaves ONNX Runtime's default."""
    import onnxruntime as ort

    knobs = ort_knobs(settings)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = knobs["threads"]
    opts.inter_op_num_threads = knobs["inter_threads"]
    # inter-op threads are used only by the parallel executor; asking for more than one means that executor
    opts.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if knobs["execution_mode"] == "parallel"
                           else ort.ExecutionMode.ORT_SEQUENTIAL)
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPT_NAMES[settings.graph_opt_level])
    if settings.spinning is not None:
        flag = "1" if settings.spinning else "0"
        opts.add_session_config_entry("session.intra_op.allow_spinning", flag)
        opts.add_session_config_entry("session.inter_op.allow_spinning", flag)
    opts.log_severity_level = 3  # errors only: a provider fallback is caught by check_execution, not the log
    return opts


def onnx_bytes(handle: ModelHandle, batch: int = 1) -> bytes:
    """The serialized ONNX model of `handle`; a torch model is exported in memory first (opset 17,
    dynamic batch dimension)."""
    if handle.backend == "onnx":
        return handle.onnx_model.SerializeToString()
    import torch

    module = handle.module.eval()
    example = tuple(torch.from_numpy(_zeros(spec, batch)) for spec in handle.inputs)
    names = [i.name for i in handle.inputs]
    dynamic = {n: {0: "batch"} for n in names if handle_dim_dynamic(handle, n)}
    if dynamic:
        dynamic["logits"] = {0: "batch"}
    buf = io.BytesIO()
    try:
        with torch.no_grad(), _quiet_warnings():
            torch.onnx.export(module, example, buf, input_names=names, output_names=["logits"],
                              dynamic_axes=dynamic or None, opset_version=ONNX_OPSET, dynamo=False)
    except Exception as exc:  # the exporter raises many types for unsupported operators
        raise RuntimeUnavailableError(
            f"{handle.name} cannot be exported to ONNX for onnxruntime ({type(exc).__name__}: "
            f"{_first_line(exc)}); use the torch runtime") from exc
    return buf.getvalue()


def handle_dim_dynamic(handle: ModelHandle, name: str) -> bool:
    """Whether the first dimension of input `name` is dynamic (None) in the handle's input spec."""
    for spec in handle.inputs:
        if spec.name == name:
            return bool(spec.shape) and spec.shape[0] is None
    return False


def _zeros(spec: Any, batch: int) -> np.ndarray:
    return np.zeros(spec.concrete_shape(batch), dtype=np.dtype(spec.dtype))


@contextlib.contextmanager
def _quiet_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
