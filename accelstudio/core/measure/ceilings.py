"""The roofs of this machine: how fast it multiplies matrices in each precision, and how fast it moves memory.

Measured, not looked up: a dense square matrix product (fp32 with torch and numpy; int8 with torch._int_mm
and an ONNX Runtime MatMulInteger graph where the CPU has VNNI or AMX; bf16 and fp16 with torch where the CPU
does that arithmetic natively) at the run's thread count, best of a few calls, and a large array copy for
memory bandwidth (read plus write bytes, arrays far larger than the caches). Each figure is the best any of
the libraries reached: the roof a kernel could touch on this machine.

The whole measurement takes a few seconds (at most MEASURE_BUDGET_S, checked in benchmarks/roofline.py) and is
cached per machine under ACCELSTUDIO_HOME (ceilings.json), keyed by CPU model, instruction-set flags and thread
count, so later profiles read the cache. A busy machine gives lower roofs: the machine's load while measuring is
kept with the figures (`machine`), and `measure_ceilings(refresh=True)` (`accelstudio roofline --refresh`)
measures again.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from accelstudio.core.progress import CancelToken, ProgressCallback, ProgressEvent, check_cancel

MEASURE_BUDGET_S = 10.0
GEMM_N = 1024  # 2.1 GFLOP per product: tens of ms on a laptop core, far above timer resolution
COPY_BYTES = 128 * 2**20  # per array: beyond the last-level cache of current CPUs
REPS = 5
TARGET_S = 7.0  # the measuring loop shares this out among the figures, leaving room under MEASURE_BUDGET_S
MIN_FIGURE_S = 0.2
CACHE_FILE = "ceilings.json"
STAGE = "ceilings"


@dataclass(frozen=True)
class Ceilings:
    """Peak rates measured here at `threads` threads: GFLOP/s per precision (int8 in GOP/s; None where the
    CPU has no native arithmetic for it) and memory bandwidth in GB/s. `sources` says which library reached
    each figure; `cached` is True when read back from the cache."""

    cpu: str
    key: str
    threads: int
    fp32_gflops: float
    bandwidth_gbs: float
    int8_gops: float | None = None
    bf16_gflops: float | None = None
    fp16_gflops: float | None = None
    sources: dict[str, str] = field(default_factory=dict)
    machine: dict = field(default_factory=dict)  # load while measuring (machine_load's record): busy = low roofs
    measured_at: str = ""
    seconds: float = 0.0
    cached: bool = False

    def peak(self, precision: str) -> float:
        """The compute roof (GFLOP/s) for kernels of `precision`; fp32's where that precision has none."""
        value = {"int8": self.int8_gops, "bf16": self.bf16_gflops, "fp16": self.fp16_gflops}.get(precision)
        return value if value else self.fp32_gflops

    def ridge(self, precision: str) -> float:
        """The arithmetic intensity (FLOP/byte) where the memory roof meets the compute roof."""
        return self.peak(precision) / self.bandwidth_gbs if self.bandwidth_gbs > 0 else float("inf")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Ceilings":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})


def machine_key(threads: int, features: dict | None = None) -> str:
    """CPU model + its SIMD flags + the thread count, hashed: one cache entry per machine and thread count."""
    from accelstudio.core.measure.hardware import cpu_features

    f = cpu_features() if features is None else features
    flags = sorted(k for k, v in f.items() if v is True)
    text = f"{f.get('model_name')}|{f.get('arch')}|{','.join(flags)}|{threads}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def measure_ceilings(threads: int = 0, refresh: bool = False, progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> Ceilings:
    """This machine's ceilings at `threads` (0 = the cores this process may use): from the cache unless
    `refresh`, else measured now (a few seconds) and cached."""
    from accelstudio.core.measure.environment import resolve_threads
    from accelstudio.core.measure.hardware import cpu_features

    features = cpu_features()
    n = resolve_threads(threads)
    key = machine_key(n, features)
    cache = _read_cache()
    if not refresh and key in cache:
        try:
            return replace(Ceilings.from_dict(cache[key]), cached=True)
        except TypeError:  # an entry from another version: measure again
            pass
    found = _measure(features, n, key, progress, cancel)
    cache[key] = found.to_dict()
    _write_cache(cache)
    return found


def _measure(features: dict, threads: int, key: str, progress, cancel) -> Ceilings:
    import torch

    from accelstudio.core.measure.machine_load import finish_window, sample_cpu

    start = time.perf_counter()
    before = sample_cpu()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rates: dict[str, tuple[float, str]] = {}
    steps: list[tuple[str, str, Callable[[float], float | None]]] = [
        ("fp32", "torch.mm", lambda cap: _torch_gemm(torch.float32, cap)),
        ("fp32", "numpy matmul", _numpy_gemm),
        ("bandwidth", "torch copy", _torch_copy),
    ]
    if features.get("int8_dot"):
        steps += [("int8", "torch._int_mm", _torch_int8_gemm), ("int8", "onnxruntime MatMulInteger",
                                                               lambda cap: _ort_int8_gemm(threads, cap))]
    if features.get("bf16_native"):
        steps.append(("bf16", "torch.mm bf16", lambda cap: _torch_gemm(torch.bfloat16, cap)))
    if features.get("fp16_native"):
        steps.append(("fp16", "torch.mm fp16", lambda cap: _torch_gemm(torch.float16, cap)))
    try:
        for i, (what, source, fn) in enumerate(steps):
            check_cancel(cancel)
            if progress is not None:
                progress(ProgressEvent(STAGE, i / len(steps), f"measuring {what} with {source}"))
            cap = max(MIN_FIGURE_S, (TARGET_S - (time.perf_counter() - start)) / (len(steps) - i))
            try:
                rate = fn(cap)
            except (RuntimeError, ImportError, ValueError):  # a kernel missing in this build: no figure
                rate = None
            if rate and rate > rates.get(what, (0.0, ""))[0]:
                rates[what] = (rate, source)
    finally:
        torch.set_num_threads(previous)
    return Ceilings(
        cpu=features.get("model_name", "unknown CPU"), key=key, threads=threads,
        fp32_gflops=rates["fp32"][0], bandwidth_gbs=rates["bandwidth"][0],
        int8_gops=rates.get("int8", (None,))[0], bf16_gflops=rates.get("bf16", (None,))[0],
        fp16_gflops=rates.get("fp16", (None,))[0], sources={k: v[1] for k, v in rates.items()},
        machine=finish_window(before, min_window_s=0.0),
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - start)


def _best_seconds(call: Callable[[], object], cap_s: float) -> float:
    """The fastest of up to REPS calls after one warm-up call, stopping once `cap_s` has passed (at least one
    timed call)."""
    deadline = time.perf_counter() + cap_s
    call()
    best = float("inf")
    for _ in range(REPS):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return best


def _gflops(n: int, seconds: float) -> float:
    return 2.0 * n ** 3 / seconds / 1e9


def _torch_gemm(dtype, cap_s: float) -> float:
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(GEMM_N, GEMM_N, generator=gen).to(dtype)
    b = torch.randn(GEMM_N, GEMM_N, generator=gen).to(dtype)
    with torch.inference_mode():
        return _gflops(GEMM_N, _best_seconds(lambda: torch.mm(a, b), cap_s))


def _numpy_gemm(cap_s: float) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
    b = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
    return _gflops(GEMM_N, _best_seconds(lambda: a @ b, cap_s))


def _torch_int8_gemm(cap_s: float) -> float:
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 127, (GEMM_N, GEMM_N), dtype=torch.int8, generator=gen)
    b = torch.randint(-128, 127, (GEMM_N, GEMM_N), dtype=torch.int8, generator=gen)
    with torch.inference_mode():
        return _gflops(GEMM_N, _best_seconds(lambda: torch._int_mm(a, b), cap_s))


def _ort_int8_gemm(threads: int, cap_s: float) -> float:
    """ONNX Runtime's own int8 kernel (MLAS), the one its quantized models run."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-128, 127, (GEMM_N, GEMM_N), dtype=np.int8), "w")
    node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
    graph = helper.make_graph([node], "int8_gemm",
                              [helper.make_tensor_value_info("a", TensorProto.UINT8, [GEMM_N, GEMM_N])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [GEMM_N, GEMM_N])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    a = rng.integers(0, 255, (GEMM_N, GEMM_N), dtype=np.uint8)
    return _gflops(GEMM_N, _best_seconds(lambda: session.run(None, {"a": a}), cap_s))


def _torch_copy(cap_s: float) -> float:
    """GB/s of a large copy at the thread count (read and write counted)."""
    import torch

    src = torch.ones(COPY_BYTES // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    return 2 * COPY_BYTES / _best_seconds(lambda: dst.copy_(src), cap_s) / 1e9


def _cache_path():
    from accelstudio.core.paths import data_dir

    return data_dir() / CACHE_FILE


def _read_cache() -> dict:
    try:
        data = json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict) -> None:
    path = _cache_path()
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(cache, indent=1))
        tmp.replace(path)
    except OSError:  # a read-only home: measured again next time, nothing else lost
        pass
