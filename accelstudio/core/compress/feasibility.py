"""Which recipe a model format can take on which runtime, decided before any work.

Every refusal here but one was found by running the pair (a digits CNN and a small transformer in each format:
ONNX, safetensors weights of a bundled architecture, TorchScript, torch.export .pt2 and a pickled module, on
torch, TorchScript and ONNX Runtime, with every quantization mode, pruning method and recovery), not guessed:

- an ONNX graph runs only on ONNX Runtime, cannot lose channels (structured pruning) and cannot be trained
  (recovery): those need the torch form;
- TorchScript and torch.export programs are frozen graphs without nn.Linear/nn.Conv modules: there are no
  channels to remove, and torch's dynamic int8, weight-only int8/int4 and simulated quantization, which swap
  those modules, leave the model unchanged; TorchScript cannot be trained, torch.ao static int8 cannot trace
  it, and the fp16/bf16 casts cannot hook into it;
- ONNX Runtime's CPU provider has no bf16 kernels for Conv, Gemm or MatMul;
- torch.ao's int8 kernels (static and dynamic) run on the CPU only (fbgemm/qnnpack, as torch's quantization
  documentation says; the one rule here taken from documentation, as no GPU was at hand to run it);
- a graph whose batch is fixed at k cannot be trained or calibrated by torch in other batch sizes.

A TorchScript model that ONNX export cannot handle (many traced transformers) is known only when the export
is tried; the pipeline turns that failure into the same kind of sentence (`torchscript_export_error`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.model.handle import InputSpec, ModelHandle
from accelstudio.core.model.model_data import ModelData
from accelstudio.core.quant_modes import QuantMode, modes_where, quant_mode
from accelstudio.core.recipe import Recipe

MODEL_FORMATS = ("onnx", "safetensors", "state_dict", "torchscript", "export", "pickle", "example")
FROZEN_GRAPHS = {"torchscript": "a TorchScript file", "export": "a torch.export program"}
TORCH_RUNTIMES = ("torch", "torchscript")


class RecipeNotPossible(AccelStudioError):
    """A recipe this model format cannot take on the chosen runtime and device; the message says why and
    what to do instead, in one sentence."""

    category = "recipe not possible"


def check_job_feasible(model_format: str, backend: str, runtime: str, device: str, recipe: Recipe,
                       inputs: Sequence[InputSpec] | None = None, model_name: str | None = None) -> None:
    """Raise RecipeNotPossible when `recipe` cannot run on a model of `model_format` ("onnx", "safetensors",
    "state_dict", "torchscript", "export", "pickle" or "example") and `backend` ("torch"/"onnx") measured on
    `runtime` and `device`; return None when it can. With `inputs` (the model's declared inputs), also refuse
    what a fixed batch dimension rules out; `model_name` starts the message. Cheap and free of side effects:
    call it before any work."""
    reason = _refusal(model_format, backend, runtime, device, recipe)
    if reason is None and inputs is not None:
        reason = _batch_refusal(inputs, runtime, recipe)
    if reason is not None:
        raise RecipeNotPossible(f"{model_name}: {reason}" if model_name else reason)


def _refusal(fmt: str, backend: str, runtime: str, device: str, recipe: Recipe) -> str | None:
    prune, quant = recipe.prune, recipe.quantize
    mode = quant_mode(quant.mode)
    structured = prune.active and prune.method == "l1-structured"
    torch_side = runtime in TORCH_RUNTIMES
    if backend == "onnx" and fmt != "example":
        if torch_side:
            return (f"an ONNX model runs only on ONNX Runtime, not on {runtime}; choose the onnxruntime runtime, "
                    "or open the model's torch form")
        if structured:
            return ("structured pruning removes channels from torch layers and cannot be applied to an ONNX "
                    "graph; open the model's torch form (safetensors or .pt), or choose l1-unstructured")
        if recipe.recovery.active:
            return ("recovery trains the model in torch and cannot train an ONNX graph; open the model's torch "
                    "form (safetensors or .pt), or turn recovery off")
    if fmt in FROZEN_GRAPHS:
        what = FROZEN_GRAPHS[fmt]
        if structured:
            return (f"{what} is a frozen graph with no Linear or Conv modules to remove channels from; open "
                    "the model's Python or safetensors form, or choose l1-unstructured")
        if fmt == "torchscript" and recipe.recovery.active:
            return ("a TorchScript file cannot be trained, so recovery is not possible; open the model's "
                    "Python or safetensors form, or turn recovery off")
        if torch_side and mode.torch_swaps_modules:
            return (f"{quant.mode} in torch swaps nn.Linear/Conv modules, which {what} does not have (the "
                    "model would run unchanged); measure it on onnxruntime, where the graph is exported and "
                    "quantized, or open the model's Python or safetensors form")
        if fmt == "torchscript" and torch_side and mode.torch_traces:
            return (f"torch's {mode.label} cannot trace a TorchScript file; measure it on onnxruntime ({mode.label} "
                    f"then runs in ONNX Runtime), or choose {_untraced_alternative(mode)}")
        if fmt == "torchscript" and torch_side and mode.half:
            return (f"{quant.mode} casts cannot be added to a TorchScript file in torch; measure it on "
                    "onnxruntime with fp16, or open the model's Python or safetensors form")
    if not mode.onnxruntime_cpu and runtime == "onnxruntime" and device == "cpu":
        instead = " or ".join(modes_where(half=mode.half, onnxruntime_cpu=True)) or "another mode"
        return (f"ONNX Runtime's CPU provider has no {quant.mode} kernels for Conv, Gemm or MatMul, so a "
                f"{quant.mode} model cannot run here; choose {instead}, or {quant.mode} on the torch runtime")
    if mode.torch_ao and torch_side and device == "cuda" and backend == "torch":
        return (f"torch's {quant.mode} kernels run only on the CPU; measure it on the cpu device, or on "
                "onnxruntime with the CUDA provider")
    return None


def _untraced_alternative(mode: QuantMode) -> str:
    """A mode of the same width whose torch quantizer needs no tracing (dynamic-int8 for static-int8)."""
    same = modes_where(bits=mode.bits, torch_traces=False, weight_only=False, simulated=False)
    return same[0] if same else "another mode"


def _batch_refusal(inputs: Sequence[InputSpec], runtime: str, recipe: Recipe) -> str | None:
    from accelstudio.core.model.input_shapes import batch_layout

    layout, k = batch_layout(inputs)
    if layout != "fixed":
        return None
    if recipe.recovery.active and recipe.recovery.batch != k:
        return (f"the model's batch is fixed at {k}, so it cannot be trained in batches of "
                f"{recipe.recovery.batch}; set the recovery batch to {k}, or export the model with a dynamic "
                "batch axis")
    mode = quant_mode(recipe.quantize.mode)
    if mode.needs_calibration and runtime in TORCH_RUNTIMES:
        return (f"torch's {mode.label} calibrates in batches, which this graph (batch fixed at {k}) cannot take; "
                "measure it on onnxruntime, or export the model with a dynamic batch axis")
    return None


def check_handle_feasible(handle: ModelHandle, runtime: str, device: str, recipe: Recipe) -> None:
    """check_job_feasible for an opened model (its format, backend and declared inputs), plus what only the
    model itself shows: structured pruning of an attention model."""
    check_job_feasible(handle.source_format, handle.backend, runtime, device, recipe, handle.inputs, handle.name)
    check_model_feasible(handle, recipe)


def check_model_feasible(handle: ModelHandle | ModelData, recipe: Recipe) -> None:
    """Refuse what only the opened model (a handle or its ModelData) shows, not its format: structured pruning of
    an attention model."""
    if recipe.prune.active and recipe.prune.method == "l1-structured" and has_attention(handle):
        raise RecipeNotPossible(
            f"{getattr(handle, 'name', 'this model')}: structured pruning of an attention model would shrink the head and embedding sizes "
            "that its attention reshapes and position embeddings depend on, so the pruned model could not run; "
            "choose l1-unstructured or 2:4 pruning, or prune a convolutional or MLP model")


def has_attention(handle) -> bool:
    """LayerNorm, GELU, embeddings or multi-head attention in the torch module or the ONNX graph (the rule the
    quantizers use to keep such parts in float); a data-only ModelData says so in its `attention`."""
    if isinstance(getattr(handle, "attention", None), bool):
        return handle.attention
    module = getattr(handle, "module", None)
    if module is not None:
        from accelstudio.core.compress.quant_torch import is_attention_module

        return is_attention_module(module)
    graph = getattr(handle, "onnx_model", None)
    if graph is not None:
        from accelstudio.core.compress.quant_onnx_static import is_attention_model

        return is_attention_model(graph)
    return False


def torchscript_export_error(exc: Exception, guessed: Sequence[str] = ()) -> RecipeNotPossible:
    """The sentence for a TorchScript model that ONNX export could not convert; `guessed` names input dims
    that were guessed (a wrong guess is the likelier cause then)."""
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    if guessed:
        return RecipeNotPossible(f"this TorchScript file could not be exported to ONNX at guessed input sizes "
                                 f"({', '.join(guessed)}): {detail}; give its real sizes with --input-shape, "
                                 "or measure it on the torch or torchscript runtime")
    return RecipeNotPossible(f"this TorchScript file cannot be exported to ONNX ({detail}); measure it on the "
                             "torch or torchscript runtime, or open its ONNX form")


# --- what a file is, without loading it -------------------------------------------------------------------

def sniff_model_format(model: str | Path) -> str | None:
    """The format of a model reference from its first bytes (never executing anything): "example", "onnx",
    "safetensors", "torchscript", "export", "pickle" or "state_dict"; None when unknown or unreadable (the
    loader then reports the file properly)."""
    text = str(model)
    if text.startswith("example:"):
        return "example"
    path = Path(text)
    try:
        from accelstudio.core.model.loading_common import read_head, sniff_content

        if not path.is_file():
            return None
        kind = sniff_content(read_head(path), path.stat().st_size)
        if kind in ("onnx", "safetensors"):
            return kind
        if kind == "zip":
            return _zip_format(path)
        if kind == "pickle":
            return "pickle"
    except (AccelStudioError, OSError, ValueError):
        return None
    return None


def _zip_format(path: Path) -> str | None:
    from accelstudio.core.model.loading_pickle import classify_zip, open_zip, scan_zip_pickle

    with open_zip(path) as zf:
        kind, member = classify_zip(zf.namelist())
        if kind in ("torchscript", "export"):
            return kind
        if kind == "pickle":
            return "pickle" if scan_zip_pickle(zf, member).code_globals else "state_dict"
    return None


def onnx_file_inputs(path: str | Path) -> ModelHandle | None:
    """A weightless handle with an ONNX file's declared inputs (external data is not read), or None when the
    file cannot be parsed here (the worker reports it)."""
    try:
        import onnx

        from accelstudio.core.model.loading_onnx import onnx_inputs

        model = onnx.load(str(path), load_external_data=False)
        return ModelHandle(backend="onnx", source_format="onnx", inputs=onnx_inputs(model.graph),
                           onnx_model=model, source=Path(path))
    except Exception:  # noqa: BLE001 - any parse failure is reported by the worker's loader
        return None
