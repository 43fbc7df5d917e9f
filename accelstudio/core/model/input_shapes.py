"""Concrete input shapes for a run: what the user set, what the data says, and documented guesses.

The rule, in one place (the CLI's --input-shape help and the README point here):

1. A dimension the model fixes is kept as it is. Nothing overrides it.
2. A dimension the user sets (`--input-shape NAME=1x3x640x640`, JobSpec.input_shapes) is used next.
3. When data is given, every non-batch dimension comes from the data's arrays (or the image folder's
   images, resized to any size set in step 2).
4. Only then is a symbolic dimension guessed, by the kind of input, and every guess is recorded in the run
   (`metrics["data"]["guessed_dims"]`) with a loud note:
   - image: a 4-D float input (N,C,H,W) or (N,H,W,C) with C 1 or 3 -> H = W = 224, C = 3;
   - token sequence: a 2-D integer or boolean input (N,S), or a 3-D float input (N,S,F) -> S = 128
     tokens; attention masks, token type ids and position ids follow the sequence length of the other
     token inputs (one given or fixed length is shared by all of them);
   - anything else -> 64.

The first dimension is the batch (samples per call). Three layouts follow from the model's inputs:
"batched" (every first dimension symbolic: the batch is free), "fixed" (every fixed first dimension is the
same k, symbolic ones follow it: each call takes k rows, and only --batch 1 or k is honoured) and "per-call" (first dimensions that
disagree, such as a MatMul of [2,3] by [3,4]: one sample is one whole call, with symbolic first dimensions
set to the batch). A batch the model cannot honour raises BatchShapeError before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from accelstudio.core.errors import AccelStudioError
from accelstudio.core.model.handle import InputSpec, ModelHandle

GUESS_IMAGE_SIDE = 224
GUESS_IMAGE_CHANNELS = 3
GUESS_SEQ_LEN = 128
GUESS_OTHER_DIM = 64
LAYOUTS = ("batched", "fixed", "per-call")


class BatchShapeError(AccelStudioError):
    """The requested batch cannot be fed to a model whose first dimensions are fixed."""

    category = "batch not possible"


@dataclass(frozen=True)
class ShapePlan:
    """How a model is fed: its layout (see the module docstring), the rows per call, and the inputs with
    every symbolic non-batch dimension made concrete (`inputs`; the first dimension is left as declared).
    `guessed` holds one loud note per guessed dimension, `guessed_dims` their compact form "x[2]=224 (H)"."""

    layout: str
    batch: int
    inputs: tuple[InputSpec, ...]
    guessed: tuple[str, ...] = ()
    guessed_dims: tuple[str, ...] = ()
    known: tuple[InputSpec, ...] = ()  # the inputs before any guess (declared, set by the user, from data)

    def call_shapes(self) -> dict[str, list[int]]:
        """The concrete shape of every input in one call."""
        return {spec.name: [self.batch if d is None else int(d) for d in spec.shape] for spec in self.inputs}

    def sample_inputs(self) -> tuple[InputSpec, ...]:
        """Inputs as data sets hold them: in the per-call layout one sample is one whole call, so its first
        dimension is concrete too."""
        return self._per_sample(self.inputs)

    def known_sample_inputs(self) -> tuple[InputSpec, ...]:
        """`sample_inputs` without the guesses: what data sets must match."""
        return self._per_sample(self.known or self.inputs)

    def _per_sample(self, specs: tuple[InputSpec, ...]) -> tuple[InputSpec, ...]:
        if self.layout != "per-call":
            return specs
        return tuple(replace(s, shape=(self.batch if s.shape[0] is None else s.shape[0], *s.shape[1:]))
                     for s in specs)


# --- parsing -----------------------------------------------------------------------------------------------

def parse_input_shapes(values: Sequence[str], input_names: Sequence[str] | None = None) -> dict[str, tuple[int, ...]]:
    """`NAME=1x3x640x640` (or `NAME=1,3,640,640`) into {name: shape}. The name may be left out when the model
    has one input (`input_names` given) or, with `input_names` None, to be resolved later under the key ""."""
    from accelstudio.core.model.inspect import InputShapeError

    shapes: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, _, dims = str(value).rpartition("=")
        name = name.strip()
        if not name and input_names is not None:
            if len(input_names) != 1:
                listing = ", ".join(input_names) or "none"
                raise InputShapeError(f"--input-shape {value}: name the input (the model's inputs: {listing}), "
                                      "e.g. NAME=1x3x224x224")
            name = input_names[0]
        try:
            shape = tuple(int(d) for d in dims.replace("x", ",").replace("X", ",").split(",") if d.strip())
        except ValueError:
            raise InputShapeError(f"--input-shape {value}: use NAME=1x3x224x224 (or 1x3x224x224 for a "
                                  "single-input model)") from None
        if not shape:
            raise InputShapeError(f"--input-shape {value}: no dimensions given")
        if any(d < 1 for d in shape):
            raise InputShapeError(f"--input-shape {value}: every dimension must be at least 1")
        shapes[name] = shape
    return shapes


def name_unnamed(shapes: dict[str, Any], input_names: Sequence[str]) -> dict[str, Any]:
    """Give a shape stored under "" (no name on the command line) to the model's single input."""
    if "" not in shapes:
        return dict(shapes)
    from accelstudio.core.model.inspect import InputShapeError

    if len(input_names) != 1:
        raise InputShapeError(f"--input-shape without a name needs a single-input model; this one has "
                              f"{', '.join(input_names) or 'no inputs'}: write NAME=DIMS")
    out = {k: v for k, v in shapes.items() if k}
    out[input_names[0]] = shapes[""]
    return out


# --- batch layout ------------------------------------------------------------------------------------------

def batch_layout(inputs: Sequence[InputSpec]) -> tuple[str, int | None]:
    """("batched", None), ("fixed", k) or ("per-call", None) for the model's inputs. Inputs whose first
    dimension is symbolic follow a fixed one when every fixed first dimension agrees."""
    firsts = [s.shape[0] if s.shape else 0 for s in inputs]
    if not firsts or all(d is None for d in firsts):
        return "batched", None
    fixed = {d for d in firsts if d is not None}
    if len(fixed) == 1 and 0 not in fixed:
        return "fixed", next(iter(fixed))
    return "per-call", None


def check_batch(inputs: Sequence[InputSpec], batch: int, model: str = "the model") -> int:
    """The rows per call for a requested `batch`; BatchShapeError when fixed first dimensions refuse it.

    A fixed batch k takes --batch 1 (the default, read as "the model's own") or k."""
    layout, k = batch_layout(inputs)
    if layout == "batched":
        return batch
    if layout == "fixed":
        if batch in (1, k):
            return k
        raise BatchShapeError(f"{model}: its batch dimension is fixed at {k} ({_inputs_text(inputs)}), so "
                              f"batch {batch} cannot run; use --batch {k}, or export the model with a dynamic "
                              "batch axis")
    if batch > 1 and not any(s.shape and s.shape[0] is None for s in inputs):
        raise BatchShapeError(f"{model}: its inputs are fixed ({_inputs_text(inputs)}) and have no batch "
                              f"dimension to set to {batch}; drop --batch (each call runs these shapes)")
    return batch


def _inputs_text(inputs: Sequence[InputSpec]) -> str:
    return ", ".join(f"{s.name} [{', '.join('?' if d is None else str(d) for d in s.shape)}]" for s in inputs)


# --- the plan ----------------------------------------------------------------------------------------------

def plan_shapes(handle: ModelHandle, batch: int, given: dict[str, Sequence[int]] | None = None,
                data_shapes: dict[str, tuple[int, ...]] | None = None) -> ShapePlan:
    """Concrete shapes for `handle` at `batch` (see the module docstring for the rule). `given` are the
    user's full shapes (validated: names, rank, fixed dims), `data_shapes` the data set's array shapes
    (first axis = samples). Raises InputShapeError, BatchShapeError."""
    from accelstudio.core.model.inspect import InputShapeError

    handle = replace(handle, inputs=declared_inputs(handle))
    given = name_unnamed(dict(given or {}), [s.name for s in handle.inputs])
    layout, _ = batch_layout(handle.inputs)
    _validate_given(handle, given)
    rows = check_batch(handle.inputs, _given_batch(handle, given, batch, layout), handle.name)
    specs = []
    for spec in handle.inputs:
        dims = list(spec.shape)
        if spec.name in given:
            dims = [d if d is not None else (None if i == 0 and layout != "per-call" else int(g))
                    for i, (d, g) in enumerate(zip(spec.shape, given[spec.name]))]
        elif data_shapes and spec.name in data_shapes:
            got = data_shapes[spec.name]
            offset = 1 if layout == "per-call" else 0  # data holds a sample axis in front of each call
            if len(got) != len(dims) + offset:
                raise InputShapeError(f"input '{spec.name}': the data's arrays have shape {got}, not "
                                      f"{len(dims)} dimensions per {'call' if offset else 'sample'}")
            dims = [d if d is not None or (i == 0 and not offset) else int(got[i + offset])
                    for i, d in enumerate(dims)]
        specs.append(replace(spec, shape=tuple(dims)))
    guessed, notes, compact = _guess_missing(specs, rows)
    return ShapePlan(layout, rows, tuple(guessed), tuple(notes), tuple(compact), tuple(specs))


def declared_inputs(handle: ModelHandle) -> tuple[InputSpec, ...]:
    """The inputs as the model really declares them. A loader that had to guess an input from the first
    layer (TorchScript, pickled modules: metadata "input_guessed") knows its channels but not its image size,
    so those dims are symbolic here and come from the data, the user or the documented guess."""
    if not handle.metadata.get("input_guessed"):
        return handle.inputs
    return tuple(replace(s, shape=s.shape[:2] + (None,) * (len(s.shape) - 2)) if len(s.shape) == 4 else s
                 for s in handle.inputs)


def with_plan(handle: ModelHandle, plan: ShapePlan) -> ModelHandle:
    """`handle` declaring the plan's concrete non-batch dims, so that tracing, export, calibration and
    inspection all see the shapes the run measures."""
    return replace(handle, inputs=plan.inputs)


def _validate_given(handle: ModelHandle, given: dict[str, Sequence[int]]) -> None:
    from accelstudio.core.model.inspect import resolve_inputs

    resolve_inputs(handle, {k: tuple(v) for k, v in given.items()})


def _given_batch(handle: ModelHandle, given: dict, batch: int, layout: str) -> int:
    """The batch, reconciled with the first dimension of user-given shapes of batched inputs."""
    from accelstudio.core.model.inspect import InputShapeError

    if layout == "per-call":
        return batch
    firsts = {int(shape[0]) for name, shape in given.items()
              if any(s.name == name and s.shape and s.shape[0] is None for s in handle.inputs)}
    if not firsts:
        return batch
    if len(firsts) > 1 or (batch != 1 and batch not in firsts):
        raise InputShapeError(f"--input-shape sets batch {sorted(firsts)} but the run's batch is {batch}; "
                              "make the first dimensions and --batch agree")
    return next(iter(firsts))


def _guess_missing(specs: list[InputSpec], rows: int) -> tuple[list[InputSpec], list[str], list[str]]:
    """Fill every symbolic non-batch dim by the kind of its input; a loud note and a compact entry per guess."""
    seq = _known_seq_len(specs)
    notes: list[str] = []
    compact: list[str] = []
    out = []
    for spec in specs:
        dims = list(spec.shape)
        kind = input_kind(spec)
        filled = []
        for i, d in enumerate(dims):
            if d is not None or i == 0:  # the first dimension is the batch, never guessed
                continue
            dims[i], label = _guess(kind, i, dims, seq)
            if kind == "tokens" and i == 1 and seq is None:
                seq = dims[i]  # the other token inputs (masks, type ids) follow this one
            filled.append((i, label))
        example = "x".join(str(rows if d is None else d) for d in dims)
        for i, label in filled:
            compact.append(f"{spec.name}[{i}]={dims[i]} ({label})")
            notes.append(f"input '{spec.name}' dim {i} ({label}) was not given: guessed {dims[i]}; latency depends "
                         f"on it, set it with --input-shape {spec.name}={example}")
        out.append(replace(spec, shape=tuple(dims)))
    return out, notes, compact


def input_kind(spec: InputSpec) -> str:
    """"image", "tokens" or "other" (see the module docstring)."""
    rank = len(spec.shape)
    kind = np.dtype(spec.dtype).kind if _known_dtype(spec.dtype) else "f"
    if rank == 4 and kind == "f" and (spec.shape[1] in (1, 3, None) or spec.shape[3] in (1, 3)):
        return "image"
    if (rank == 2 and kind in "iub") or (rank == 3 and kind == "f" and spec.shape[2] is not None):
        return "tokens"
    return "other"


def _known_dtype(dtype: str) -> bool:
    try:
        np.dtype(dtype)
        return True
    except TypeError:
        return False


def _known_seq_len(specs: list[InputSpec]) -> int | None:
    """The sequence length a token input already has (fixed, given or from data), shared by the others."""
    for spec in specs:
        if input_kind(spec) == "tokens" and len(spec.shape) >= 2 and spec.shape[1] is not None:
            return int(spec.shape[1])
    return None


def _guess(kind: str, axis: int, dims: list, seq: int | None) -> tuple[int, str]:
    if kind == "image":
        channels_last = dims[3] in (1, 3) and dims[1] not in (1, 3)
        if (axis == 1 and not channels_last) or (axis == 3 and channels_last):
            return GUESS_IMAGE_CHANNELS, "C"
        return GUESS_IMAGE_SIDE, "H" if axis == (1 if channels_last else 2) else "W"
    if kind == "tokens" and axis == 1:
        return (seq or GUESS_SEQ_LEN), "sequence length"
    return GUESS_OTHER_DIM, f"dim {axis}"


# --- synthesized values ------------------------------------------------------------------------------------

def token_vocab_sizes(handle: ModelHandle) -> dict[str, int]:
    """Per integer input, the number of valid ids when an embedding table it indexes can be read: an ONNX
    Gather whose data is an initializer (the table's rows), or the smallest nn.Embedding of a torch model."""
    ints = [s.name for s in handle.inputs if _known_dtype(s.dtype) and np.dtype(s.dtype).kind in "iu"]
    if not ints:
        return {}
    if handle.backend == "onnx" and handle.onnx_model is not None:
        return _onnx_vocab(handle.onnx_model, set(ints))
    if handle.module is not None:
        from torch import nn

        sizes = [m.num_embeddings for m in handle.module.modules() if isinstance(m, nn.Embedding)]
        if sizes:
            return {name: min(sizes) for name in ints}
    return {}


def _onnx_vocab(model, names: set[str]) -> dict[str, int]:
    graph = model.graph
    tables = {init.name: int(init.dims[0]) for init in graph.initializer if len(init.dims) == 2}
    alias = {n: n for n in names}  # a Cast/Unsqueeze of an id input still carries its ids
    for node in graph.node:
        if node.op_type in ("Cast", "Unsqueeze", "Reshape", "Flatten") and node.input and node.input[0] in alias:
            alias[node.output[0]] = alias[node.input[0]]
    found: dict[str, int] = {}
    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[1] in alias and node.input[0] in tables:
            name = alias[node.input[1]]
            found[name] = min(found.get(name, tables[node.input[0]]), tables[node.input[0]])
    return found


def synth_values(spec: InputSpec, shape: tuple[int, ...], rng: np.random.Generator,
                 vocab: int | None) -> np.ndarray:
    """Random values that fit an input: masks all ones, token type ids zeros, position ids 0..S-1, token ids
    below the vocabulary size (else 0-9), booleans at random, floats uniform in the input's range (or [0, 1])."""
    dtype = np.dtype(spec.dtype)
    lowered = spec.name.lower()
    if dtype.kind in "iub" and "mask" in lowered:
        return np.ones(shape, dtype=dtype)
    if dtype.kind in "iu" and ("token_type" in lowered or "segment" in lowered):
        return np.zeros(shape, dtype=dtype)
    if dtype.kind in "iu" and "position" in lowered and len(shape) >= 2:
        return np.broadcast_to(np.arange(shape[-1], dtype=dtype), shape).copy()
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo, hi = spec.value_range or (0, vocab if vocab else 10)
        return rng.integers(int(lo), max(int(hi), int(lo) + 1), size=shape).astype(dtype)
    lo, hi = spec.value_range or (0.0, 1.0)
    return rng.uniform(lo, hi, size=shape).astype(dtype)
