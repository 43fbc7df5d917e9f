"""Data sets for evaluation and calibration: bundled example data, user .npz files, image folders, or
synthesized inputs when nothing else is available.

Every check runs before any model work, and each failure is a DatasetError naming the file and what is wrong.
User files are read with `allow_pickle=False`, so a file holding pickled objects is refused without running it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from accelstudio.core.data.dataset import Dataset, check_labels, subset
from accelstudio.core.data.image_folder import load_image_folder
from accelstudio.core.errors import DatasetError
from accelstudio.core.model.examples import get_example
from accelstudio.core.model.handle import InputSpec, ModelHandle

SYNTH_SEED = 0
CALIB_SYNTH_SEED = 1  # synthesized calibration inputs are drawn apart from the synthesized fidelity set
SYNTH_MAX_BYTES = 512 * 2**20  # synthesized data sets are cut to this size (fewer samples, at least one)
LABELS_KEY = "labels"
SINGLE_INPUT_KEY = "x"
_NUMERIC_KINDS = "biuf"


def load_dataset(path: str | Path | None, handle: ModelHandle, max_samples: int | None = None,
                 synth_samples: int = 64, plan=None) -> Dataset:
    """Load the data set a model is evaluated on.

    `path` None: the bundled example's labeled test set when `handle.example` is set, else `synth_samples`
    synthesized inputs (labels None, synthesized True). Otherwise a .npz whose arrays are named after the
    model's inputs (or `x` for a single-input model) with optional integer `labels`, or a folder with one
    sub-folder of images per class. With `max_samples`, a fixed-seed subset of that size is kept (not the
    first rows, which are often sorted by class). `plan` (an input_shapes.ShapePlan) gives the dims the user
    set, which data must match (image folders are resized to them), and the shapes synthesized inputs take.
    Raises DatasetError naming the file and the problem.
    """
    if plan is not None:
        handle = data_handle(handle, plan)
    if path is None:
        if handle.example:
            data_path = get_example(handle.example).data_path
            ds = _load_npz(data_path, handle, source=f"example:{handle.example}")
        else:
            ds = synthesize_inputs(handle, synth_samples, plan)
    else:
        p = Path(path)
        if not p.exists():
            raise DatasetError(p, "data set not found; give a .npz file or a folder of class sub-folders")
        if p.is_dir():
            return load_image_folder(p, handle, max_samples=max_samples)
        ds = _load_npz(p, handle, source=str(p))
    return subset(ds, max_samples)


def data_handle(handle: ModelHandle, plan, guessed: bool = False) -> ModelHandle:
    """`handle` with the inputs as data sets hold them under `plan`: the dims the user set (and, with
    `guessed`, the guessed ones) made concrete; in the per-call layout a sample axis is put in front."""
    from dataclasses import replace

    specs = plan.sample_inputs() if guessed else plan.known_sample_inputs()
    if plan.layout == "per-call":
        specs = tuple(replace(s, shape=(None, *s.shape)) for s in specs)
    return replace(handle, inputs=specs)


def example_calibration(handle: ModelHandle, n: int) -> Dataset | None:
    """Up to `n` calibration inputs of a bundled example (its calib.npz, drawn from the training split), or
    None when `handle` is no example or the example has none."""
    if not handle.example:
        return None
    calib_path = get_example(handle.example).calib_path
    if not calib_path.exists():
        return None
    ds = _load_npz(calib_path, handle, source=f"example:{handle.example} calib.npz (training split)",
                   labels_allowed=False)
    return ds.take(n)


def calibration_inputs(handle: ModelHandle, dataset: Dataset | None, n: int) -> dict[str, np.ndarray]:
    """Up to `n` calibration samples: the example's calib.npz (training split) for a bundled example, else
    the first `n` samples of `dataset` (the caller keeps them out of evaluation), else `n` synthesized inputs
    drawn with their own seed."""
    example = example_calibration(handle, n)
    if example is not None:
        return example.inputs
    if dataset is None:
        dataset = synthesize_inputs(handle, n, seed=CALIB_SYNTH_SEED)
    return dataset.take(n).inputs


def synthesize_inputs(handle: ModelHandle, n: int, plan=None, seed: int = SYNTH_SEED) -> Dataset:
    """`n` fixed-seed random samples that fit the model's inputs at the shapes of `plan` (default: the
    documented guesses of input_shapes.plan_shapes at batch 1): floats uniform in the input's value range (or
    [0, 1]), token ids below the vocabulary size, masks all ones (input_shapes.synth_values)."""
    from accelstudio.core.model.input_shapes import plan_shapes, synth_values, token_vocab_sizes

    if not handle.inputs:
        raise DatasetError(handle.source, "the model declares no inputs, so no data can be synthesized")
    if plan is None:
        plan = plan_shapes(handle, 1)
    rng = np.random.default_rng(seed)
    vocab = token_vocab_sizes(handle)
    specs = data_handle(handle, plan, guessed=True).inputs
    n = _affordable_samples(handle, specs, n)
    inputs = {}
    for spec in specs:
        shape = (n, *(int(d) for d in spec.shape[1:]))
        inputs[spec.name] = synth_values(spec, shape, rng, vocab.get(spec.name))
    return Dataset(inputs, None, "synthesized", True, n)


def _affordable_samples(handle: ModelHandle, specs, n: int) -> int:
    """`n`, or fewer samples when n of these shapes would exceed SYNTH_MAX_BYTES; DatasetError when even one
    sample would (absurd shapes fail here, not by exhausting memory)."""
    per_sample = sum(int(np.prod([int(d) for d in s.shape[1:]], dtype=np.float64)) * _np_dtype(s, None).itemsize
                     for s in specs)
    if per_sample > SYNTH_MAX_BYTES:
        listing = ", ".join(f"{s.name} {'x'.join(str(d) for d in s.shape[1:])}" for s in specs)
        raise DatasetError(handle.source, f"one input sample of these shapes ({listing}) takes "
                                          f"{per_sample / 2**30:.1f} GiB; give smaller --input-shape values")
    return max(1, min(n, SYNTH_MAX_BYTES // max(per_sample, 1)))


# --- .npz files ------------------------------------------------------------------------------------------

def _load_npz(path: Path, handle: ModelHandle, source: str, labels_allowed: bool = True) -> Dataset:
    arrays = _read_npz(path)
    names = [spec.name for spec in handle.inputs]
    if not names:
        raise DatasetError(path, "the model declares no inputs, so the data set cannot be matched to it")
    inputs = {}
    for spec in handle.inputs:
        key = _array_key(spec, arrays, len(names))
        if key is None:
            expected = ", ".join(names) + (f" (or '{SINGLE_INPUT_KEY}')" if len(names) == 1 else "")
            found = ", ".join(sorted(arrays)) or "none"
            raise DatasetError(path, f"missing input array '{spec.name}'; expected arrays named {expected}, "
                                     f"found {found}")
        inputs[spec.name] = check_input_array(path, spec, arrays[key], key)
    num = check_sample_counts(path, inputs)
    labels = None
    if labels_allowed and LABELS_KEY in arrays:
        labels = check_labels(path, arrays[LABELS_KEY], num, handle.num_classes)
    return Dataset(inputs, labels, source, False, num)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    _check_npz_signature(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not hasattr(loaded, "files"):  # a bare .npy gives an ndarray, which is no context manager
            raise DatasetError(path, "is a single .npy array, not a .npz archive; save it with "
                                     "numpy.savez(path, x=inputs, labels=labels)")
        with loaded as npz:
            return {name: npz[name] for name in npz.files}
    except DatasetError:
        raise
    except MemoryError:  # a header can declare any shape: a few bytes may ask for terabytes
        raise DatasetError(path, "an array in it is too large to load into memory (its header declares more "
                                 "data than fits; the file may be damaged)") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DatasetError(path, "contains pickled objects; refusing to load. Save plain numeric arrays "
                                     "with numpy.savez") from None
        raise DatasetError(path, f"not a readable .npz file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DatasetError(path, f"not a readable .npz file ({exc}); save arrays with numpy.savez") from None


def _check_npz_signature(path: Path) -> None:
    """Refuse a file that starts like neither a zip (.npz), a .npy nor a pickle, before NumPy guesses it is one
    of them (NumPy reports any unknown file as 'pickled data')."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as exc:
        raise DatasetError(path, f"cannot be read ({exc.strerror}); check the path and permissions") from None
    if head and not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY", b"\x80")):
        raise DatasetError(path, "not a readable .npz file: it does not start like a NumPy archive (a web page "
                                 "or another kind of file?); save arrays with numpy.savez")


def _array_key(spec: InputSpec, arrays: dict[str, np.ndarray], n_inputs: int) -> str | None:
    if spec.name in arrays:
        return spec.name
    if n_inputs == 1 and SINGLE_INPUT_KEY in arrays:
        return SINGLE_INPUT_KEY
    return None


def check_input_array(path: Path | None, spec: InputSpec, arr: np.ndarray, key: str) -> np.ndarray:
    """Validate one input array against its InputSpec and convert it to the input's dtype.

    Checks dtype (numeric), rank, every fixed non-batch dimension, NaN/Inf and emptiness; the first axis is
    always the sample axis."""
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise DatasetError(path, f"array '{key}' has dtype {arr.dtype}, which cannot be converted to "
                                 f"{spec.dtype}; store numbers")
    if arr.ndim != len(spec.shape):
        raise DatasetError(path, f"array '{key}' has shape {arr.shape} (rank {arr.ndim}), but input "
                                 f"'{spec.name}' expects rank {len(spec.shape)} {_shape_text(spec.shape)}")
    for axis in range(1, arr.ndim):
        want = spec.shape[axis]
        if want is not None and arr.shape[axis] != want:
            raise DatasetError(path, f"array '{key}' has shape {arr.shape}, but input '{spec.name}' expects "
                                     f"{_shape_text(spec.shape)} (dimension {axis} differs)")
    if arr.shape[0] == 0:
        raise DatasetError(path, f"array '{key}' is empty (0 samples)")
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            bad_rows = ~finite.reshape(arr.shape[0], -1).all(axis=1)
            first = int(np.argmax(bad_rows))
            raise DatasetError(path, f"array '{key}' contains NaN or Inf in {int(bad_rows.sum())} sample(s) "
                                     f"(first at index {first}); clean or drop them")
    dtype = _np_dtype(spec, path)
    if dtype.kind in "iu" and arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
        raise DatasetError(path, f"array '{key}' holds fractional values but input '{spec.name}' is {dtype}")
    return np.ascontiguousarray(arr.astype(dtype, copy=False))


def check_sample_counts(path: Path | None, inputs: dict[str, np.ndarray]) -> int:
    """The common number of samples of all input arrays; DatasetError when they differ."""
    counts = {name: int(arr.shape[0]) for name, arr in inputs.items()}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{k}: {v}" for k, v in counts.items())
        raise DatasetError(path, f"inputs have different numbers of samples ({listing})")
    return next(iter(counts.values()))


def _np_dtype(spec: InputSpec, path: Path | None) -> np.dtype:
    try:
        return np.dtype(spec.dtype)
    except TypeError:
        raise DatasetError(path, f"input '{spec.name}' has dtype {spec.dtype!r}, which data sets cannot "
                                 "provide") from None


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + ")"
