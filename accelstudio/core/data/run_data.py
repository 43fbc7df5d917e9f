"""The data stage of a run: the evaluation set, a calibration set kept apart from it, the training set for
recovery (checked for overlap with the evaluation set), the concrete input shapes, and the record of all of
it that every run stores as `metrics["data"]` (see RunResult in job.py).

Where calibration comes from, in order: `--calib FILE`; a bundled example's calib.npz (drawn from its
training split); with synthesized inputs, a second synthesized set drawn with another seed; otherwise a
fixed-seed part split off the evaluation data (at most a quarter of it), which is then never evaluated.

Training data overlapping the evaluation data (same input bytes in a row) is refused unless the job allows
it; calibration data overlapping it is allowed, with a loud note. Both counts are recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from accelstudio.core.data.dataset import Dataset, subset
from accelstudio.core.data.datasets import CALIB_SYNTH_SEED, example_calibration, load_dataset, synthesize_inputs
from accelstudio.core.data.training import recovery_data
from accelstudio.core.errors import DatasetError
from accelstudio.core.model.input_shapes import ShapePlan, plan_shapes
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.quant_modes import modes_where

CALIBRATED_MODES = modes_where(needs_calibration=True)
CALIB_SPLIT_SEED = 1
EVAL_SPLIT_SEED = 2  # the validation / test halves of the evaluation data (eval_half)
MAX_CALIB_FRACTION = 0.25  # of the evaluation data, when calibration is split off it
SYNTH_EVAL_SAMPLES = 64


class TrainOverlapError(DatasetError):
    """Training data that shares samples with the evaluation data, refused unless explicitly allowed."""

    category = "training data overlaps the evaluation data"


@dataclass(frozen=True)
class RunData:
    """What a run is fed: `eval` (never holds a calibration sample), `calib` (input arrays, or None when the
    recipe needs none), `train` ({"inputs", "labels"} for recovery, or None to use an example's own split),
    the shape `plan`, the `record` stored as metrics["data"], and the `notes` the run must show."""

    eval: Dataset
    calib: dict[str, np.ndarray] | None
    train: dict[str, Any] | None
    plan: ShapePlan
    record: dict[str, Any]
    notes: tuple[str, ...] = field(default=())


def prepare_run_data(spec, handle: ModelHandle) -> RunData:
    """Load and split the data of JobSpec `spec` for `handle`; every check runs here, before model work.
    Raises DatasetError (TrainOverlapError), InputShapeError, BatchShapeError."""
    recipe = spec.recipe
    limit = spec.max_eval_samples if spec.max_eval_samples and spec.max_eval_samples > 0 else None
    plan = plan_shapes(handle, spec.runtime.batch, spec.input_shapes)
    needs_calib = recipe.quantize.mode in CALIBRATED_MODES
    notes: list[str] = []
    if spec.data is None and not handle.example:
        full = synthesize_inputs(handle, SYNTH_EVAL_SAMPLES, plan)
    else:
        extra = recipe.quantize.calib_samples if needs_calib and spec.calib_data is None else 0
        # a split is taken from the whole data set, so that a limited validation run never reads test samples
        whole = getattr(spec, "eval_split", "all") != "all"
        full = load_dataset(spec.data, handle, max_samples=(limit + extra) if limit and not whole else None,
                            plan=plan)
        plan = plan_shapes(handle, spec.runtime.batch, spec.input_shapes, _data_shapes(full))
    notes.extend(plan.guessed)
    if plan.layout == "fixed" and plan.batch != spec.runtime.batch:
        notes.append(f"the model's batch dimension is fixed at {plan.batch}: each call runs {plan.batch} rows "
                     f"(batch {spec.runtime.batch} was asked)")
    split = getattr(spec, "eval_split", "all")
    # the half first: its rows are the same whatever the recipe (a calibration part is split off within it)
    evaluation, calib, calib_record = _calibration(spec, handle, eval_half(full, split), plan, needs_calib, notes)
    evaluation = subset(evaluation, limit)
    train, train_record = _training(spec, handle, evaluation, plan, notes)
    record = {"eval": {"source": evaluation.source, "n": int(evaluation.num_samples),
                       "synthesized": bool(evaluation.synthesized), "labeled": evaluation.labels is not None, "split": split},
              "calib": calib_record, "train": train_record, "input_shapes": plan.call_shapes(),
              "guessed_dims": list(plan.guessed_dims), "layout": plan.layout}
    return RunData(evaluation, calib, train, plan, record, tuple(notes))


def _data_shapes(ds: Dataset) -> dict[str, tuple[int, ...]]:
    return {name: tuple(arr.shape) for name, arr in ds.inputs.items()}


# --- calibration -------------------------------------------------------------------------------------------

def _calibration(spec, handle, full: Dataset, plan: ShapePlan, needs: bool, notes: list[str]):
    """(evaluation set, calibration inputs, calibration record)."""
    if not needs:
        if spec.calib_data is not None:
            notes.append(f"calibration data {spec.calib_data} was not used: only static-int8 calibrates")
        return full, None, None
    n = spec.recipe.quantize.calib_samples
    if spec.calib_data is not None:
        calib = load_dataset(spec.calib_data, handle, max_samples=n, plan=plan)
        overlap = count_overlap(calib.inputs, full.inputs)
        record = {"source": str(spec.calib_data), "n": int(calib.num_samples), "split_from_eval": False,
                  "overlap_with_eval": overlap}
        if overlap:
            notes.append(f"CALIBRATION OVERLAPS EVALUATION: {overlap} of {calib.num_samples} calibration samples "
                         f"in {spec.calib_data} are also in the evaluation data ({full.source}); the accuracy "
                         "of this run is optimistic")
        return full, calib.inputs, record
    example = example_calibration(handle, n)
    if example is not None:
        return full, example.inputs, {"source": example.source, "n": int(example.num_samples),
                                      "split_from_eval": False}
    if full.synthesized:
        calib = synthesize_inputs(handle, n, plan, seed=CALIB_SYNTH_SEED)
        return full, calib.inputs, {"source": f"synthesized (seed {CALIB_SYNTH_SEED}, apart from the fidelity set)",
                                    "n": int(calib.num_samples), "split_from_eval": False}
    evaluation, calib = split_calibration(full, n)
    notes.append(f"calibrated on {calib.num_samples} samples split off {full.source} (never evaluated); the "
                 f"other {evaluation.num_samples} are evaluated. Give --calib FILE to calibrate on other data")
    return evaluation, calib.inputs, {"source": f"{full.source} (split)", "n": int(calib.num_samples),
                                      "split_from_eval": True}


def eval_half(ds: Dataset, split: str) -> Dataset:
    """`ds` itself for split "all"; else the "validation" or the "test" half of it: two disjoint fixed-seed
    halves (validation gets the smaller one when the count is odd), each kept in its original order. A search
    chooses on one half and reports on the other. DatasetError for an unknown split or too few samples."""
    if split == "all":
        return ds
    if split not in ("validation", "test"):
        raise DatasetError(None, f"evaluation split {split!r} is unknown; use all, validation or test")
    if ds.num_samples < 2:
        raise DatasetError(None, f"{ds.source} holds {ds.num_samples} sample(s): too few to split into "
                                 "validation and test halves")
    order = np.random.default_rng(EVAL_SPLIT_SEED).permutation(ds.num_samples)
    half = ds.num_samples // 2
    idx = np.sort(order[:half] if split == "validation" else order[half:])
    out = _rows(ds, idx)
    return Dataset(out.inputs, out.labels, f"{ds.source} ({split} half)", ds.synthesized, out.num_samples)


def split_calibration(ds: Dataset, n: int) -> tuple[Dataset, Dataset]:
    """(rest, calibration part): a fixed-seed part of `ds` of at most `n` samples and at most a quarter of
    it, disjoint from the rest. DatasetError when `ds` is too small to split."""
    if ds.num_samples < 2:
        raise DatasetError(None, f"{ds.source} holds {ds.num_samples} sample(s): too few to split off a calibration "
                                 "part that is never evaluated; give calibration data with --calib FILE")
    k = max(1, min(n, int(ds.num_samples * MAX_CALIB_FRACTION)))
    rng = np.random.default_rng(CALIB_SPLIT_SEED)
    calib_idx = np.sort(rng.choice(ds.num_samples, size=k, replace=False))
    keep = np.setdiff1d(np.arange(ds.num_samples), calib_idx)
    return _rows(ds, keep), _rows(ds, calib_idx)


def _rows(ds: Dataset, idx: np.ndarray) -> Dataset:
    labels = None if ds.labels is None else ds.labels[idx]
    return Dataset({k: v[idx] for k, v in ds.inputs.items()}, labels, ds.source, ds.synthesized, len(idx))


# --- training ----------------------------------------------------------------------------------------------

def _training(spec, handle, evaluation: Dataset, plan: ShapePlan, notes: list[str]):
    """(training data for recovery or None, training record or None); refuses overlap unless allowed."""
    if not spec.recipe.recovery.active:
        return None, None
    if spec.train_data is None:
        if not handle.example:
            return None, None  # recovery reports that a user model needs --train-data
        train = recovery_data(handle)
        source = f"example:{handle.example} training split"
    else:
        ds = load_dataset(spec.train_data, handle, plan=plan)
        if ds.labels is None:
            raise DatasetError(spec.train_data, "has no 'labels' array; training data for --finetune/--distill "
                                                "needs one class index per sample")
        train, source = {"inputs": ds.inputs, "labels": ds.labels}, str(spec.train_data)
    n = int(len(train["labels"]))
    overlap = count_overlap(train["inputs"], evaluation.inputs)
    if overlap and not getattr(spec, "allow_train_overlap", False):
        raise TrainOverlapError(Path(source) if spec.train_data else None,
                                f"{overlap} of its {n} training samples are also in the evaluation data "
                                f"({evaluation.source}); training on them makes the accuracy meaningless. Give "
                                "training data apart from the evaluation data, or pass --allow-train-overlap to "
                                "run anyway with a warning recorded in the run")
    if overlap:
        notes.append(f"TRAINED ON EVALUATION DATA: {overlap} of {n} training samples ({source}) are also "
                     f"evaluated ({evaluation.source}); the accuracy of this run is not a fair test")
    return train, {"source": source, "n": n, "overlap_with_eval": int(overlap)}


def row_hashes(inputs: dict[str, np.ndarray], dtypes: dict[str, np.dtype] | None = None) -> list[bytes]:
    """One digest per sample over the bytes of all its input arrays (in name order), each array first cast to
    `dtypes[name]` when given (so equal values compare equal whatever dtype a file stored them in)."""
    names = sorted(inputs)
    arrays = [np.ascontiguousarray(inputs[k] if dtypes is None else inputs[k].astype(dtypes[k], copy=False))
              for k in names]
    digests = []
    for i in range(len(arrays[0]) if arrays else 0):
        h = hashlib.blake2b(digest_size=16)
        for arr in arrays:
            h.update(arr[i].tobytes())
        digests.append(h.digest())
    return digests


def count_overlap(inputs: dict[str, np.ndarray], others: dict[str, np.ndarray]) -> int:
    """How many samples of `inputs` have the same input bytes as some sample of `others` (0 when the two
    hold different inputs)."""
    if sorted(inputs) != sorted(others):
        return 0
    seen = set(row_hashes(others))
    return sum(d in seen for d in row_hashes(inputs, {k: v.dtype for k, v in others.items()}))
