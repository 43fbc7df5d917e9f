"""The quantization modes a recipe can name, and the facts about each one, in one table.

Recipe validation and descriptions, the predicted size, hardware warnings, both quantizers' dispatch and the
controls' enabling read these facts here instead of comparing mode names, so a new mode is one row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accelstudio.core.errors import RecipeError


@dataclass(frozen=True)
class QuantMode:
    """One quantization mode.

    `bits`: width of the integer grid the stored weights land on (None: weights stay floats; the simulated mode
    takes its width from the recipe). `weight_bytes`: bytes one stored weight takes, before scales and zero
    points. `per_channel_allowed`: the per-channel / per-tensor choice changes the result.
    `needs_calibration`: activation scales come from calibration inputs. `weight_type_allowed`: the int8 weight
    type (qint8 signed, quint8 unsigned) can be chosen. `half`: every float tensor is stored in 16 bits.
    `weight_only`: weights are stored in low precision and computed in float32. `simulated`: weights are rounded
    to the recipe's grid (bits, symmetry) but kept in float32. `cpu_kernels`: made for CPU integer kernels (a GPU
    runs it on slower paths). `symmetric_allowed`: the quantizers honour the recipe's symmetric / asymmetric
    grid choice. `onnxruntime_cpu`: ONNX Runtime's CPU provider has kernels for the mode's Conv, Gemm and MatMul.
    How torch quantizes it: `torch_ao` with torch.ao's quantized kernels, which run only on the CPU;
    `torch_swaps_modules` by replacing or wrapping nn.Linear/Conv modules (a frozen graph has none);
    `torch_traces` by tracing the module's graph (FX), which a TorchScript file cannot take.
    `onnx_kinds` / `torch_kinds`: the kinds of layer ("linear", "conv", "embedding") stored in low precision when
    the model runs on ONNX Runtime / torch (half modes store every float tensor in 16 bits instead).
    """

    name: str
    label: str
    bits: int | None
    weight_bytes: float
    per_channel_allowed: bool
    needs_calibration: bool
    weight_type_allowed: bool
    tip: str
    half: bool = False
    weight_only: bool = False
    simulated: bool = False
    cpu_kernels: bool = False
    symmetric_allowed: bool = False
    onnxruntime_cpu: bool = True
    torch_ao: bool = False
    torch_swaps_modules: bool = False
    torch_traces: bool = False
    onnx_kinds: frozenset[str] = field(default_factory=frozenset)
    torch_kinds: frozenset[str] = field(default_factory=frozenset)

    @property
    def active(self) -> bool:
        """Whether the mode changes the model at all."""
        return self.name != "none"

    def grid(self, symmetric: bool = True, bits: int | None = None) -> tuple[int, int] | None:
        """The (lowest, highest) integer code a weight can take on this mode's grid (integer_range), `bits` wide
        for the simulated mode (the recipe's width). None when the weights are stored as floats."""
        width = bits if self.simulated else self.bits
        return None if width is None else integer_range(width, symmetric)

    def stored_kinds(self, backend: str) -> frozenset[str]:
        """The kinds of layer this mode stores in low precision on `backend` ("onnx" or "torch")."""
        return {"onnx": self.onnx_kinds, "torch": self.torch_kinds}.get(backend, frozenset())


def integer_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """The smallest and largest integer code of a `bits`-wide grid: symmetric around zero (signed, the most
    negative code unused so that +x and -x both exist) or unsigned from 0."""
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        raise RecipeError("quantize.bits", f"must be an integer from 2 to 8, got {bits!r}")
    if symmetric:
        top = 2 ** (bits - 1) - 1
        return -top, top
    return 0, 2 ** bits - 1


QUANT_MODE_TABLE: tuple[QuantMode, ...] = (
    QuantMode("none", "float32", None, 4.0, per_channel_allowed=False, needs_calibration=False,
              weight_type_allowed=False, tip="Keep float32 weights and activations."),
    QuantMode("dynamic-int8", "dynamic int8", 8, 1.0, per_channel_allowed=True, needs_calibration=False,
              weight_type_allowed=True, cpu_kernels=True, torch_ao=True, torch_swaps_modules=True,
              onnx_kinds=frozenset({"linear", "embedding"}), torch_kinds=frozenset({"linear"}),
              tip="int8 weights; activations quantized on the fly (Linear/MatMul layers)."),
    QuantMode("static-int8", "static int8", 8, 1.0, per_channel_allowed=True, needs_calibration=True,
              weight_type_allowed=True, torch_ao=True, torch_traces=True,
              onnx_kinds=frozenset({"linear", "conv", "embedding"}),  # onnxruntime's QDQ default op set
              torch_kinds=frozenset({"linear", "conv"}),
              tip="int8 weights and activations, scales calibrated on sample inputs."),
    QuantMode("fp16", "float16", None, 2.0, per_channel_allowed=False, needs_calibration=False,
              weight_type_allowed=False, half=True,
              tip="Half-precision floats (often slower on CPUs without native fp16)."),
    QuantMode("bf16", "bfloat16", None, 2.0, per_channel_allowed=False, needs_calibration=False,
              weight_type_allowed=False, half=True, onnxruntime_cpu=False,
              tip="bfloat16 (often slower on CPUs without native bf16)."),
    QuantMode("weight-int8", "weight-only int8", 8, 1.0, per_channel_allowed=True, needs_calibration=False,
              weight_type_allowed=False, weight_only=True, cpu_kernels=True, symmetric_allowed=True,
              torch_swaps_modules=True, onnx_kinds=frozenset({"linear"}), torch_kinds=frozenset({"linear", "conv"}),
              tip="int8 weights stored, computed in float32 (smaller file, same speed)."),
    # int4 weights always carry one scale per block of 32 inputs, so per-channel has nothing to change
    QuantMode("weight-int4", "weight-only int4", 4, 0.5, per_channel_allowed=False, needs_calibration=False,
              weight_type_allowed=False, weight_only=True, cpu_kernels=True, symmetric_allowed=True,
              torch_swaps_modules=True, onnx_kinds=frozenset({"linear"}), torch_kinds=frozenset({"linear", "conv"}),
              tip="4-bit weights stored, computed in float32 (smallest file)."),
    QuantMode("sim", "simulated", None, 4.0, per_channel_allowed=True, needs_calibration=False,
              weight_type_allowed=False, simulated=True, symmetric_allowed=True, torch_swaps_modules=True,
              tip="Simulated quantization: weights rounded to a 2-8 bit grid but kept in float32, to see accuracy."),
)
QUANT_MODES: tuple[str, ...] = tuple(mode.name for mode in QUANT_MODE_TABLE)
_BY_NAME = {mode.name: mode for mode in QUANT_MODE_TABLE}


def quant_mode(name: str) -> QuantMode:
    """The table's row for mode `name`; RecipeError (field quantize.mode) for a name it lacks."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise RecipeError("quantize.mode", f"got {name!r}; allowed: {', '.join(QUANT_MODES)}") from None


def modes_where(**facts) -> tuple[str, ...]:
    """Names of the modes whose facts equal `facts`, in table order, e.g. modes_where(half=True)."""
    return tuple(m.name for m in QUANT_MODE_TABLE if all(getattr(m, k) == v for k, v in facts.items()))
