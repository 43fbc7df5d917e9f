"""What a sensitivity study needs before screening: the model, the screening set (and which split it is), and
each layer's share of the baseline's latency from the per-operator profile (core/measure/profile.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from accelstudio.core.data.dataset import Dataset, subset
from accelstudio.core.data.datasets import example_calibration, load_dataset, synthesize_inputs
from accelstudio.core.errors import AccelStudioError
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.model.handle import ModelHandle
from accelstudio.core.model.input_shapes import ShapePlan, batch_layout, declared_inputs, plan_shapes
from accelstudio.core.model.loading import open_model
from accelstudio.core.studies.sensitivity_params import SensitivityParams

PROFILE_CALLS = 5
PROFILE_WARMUP = 1
ALL_CALIB = 1_000_000


def open_study_model(p: SensitivityParams) -> ModelHandle:
    """The model of the study: a bundled example as ONNX unless a backend is asked (one session for every
    variant), a file on its own backend."""
    backend = p.backend or ("onnx" if p.model.startswith("example:") else None)
    return open_model(p.model, trust=p.trust, backend=backend)


def screening_data(p: SensitivityParams, handle: ModelHandle) -> tuple[Dataset, ShapePlan, str]:
    """(screening set of at most p.samples, the shape plan, the split it comes from in words)."""
    batched = batch_layout(declared_inputs(handle))[0] == "batched"
    batch = p.batch if batched else 1  # 1: the model's own rows per call
    # the study chooses its own batch: a given shape's first (batch) dimension only says "one call"
    shapes = {k: [batch, *v[1:]] for k, v in p.input_shapes.items()} if batched else dict(p.input_shapes)
    plan = plan_shapes(handle, batch, shapes)
    if p.data:
        ds, split = load_dataset(p.data, handle, max_samples=p.samples, plan=plan), "the given data (--data)"
    elif p.calib:
        ds = load_dataset(p.calib, handle, max_samples=p.samples, plan=plan)
        ds, split = Dataset(ds.inputs, None, ds.source, ds.synthesized, ds.num_samples), "calibration data (--calib)"
    elif handle.example and (calib := example_calibration(handle, ALL_CALIB)) is not None:
        ds, split = subset(calib, p.samples), "the example's calibration split (training data, never its test set)"
    else:
        ds, split = synthesize_inputs(handle, p.samples, plan), "synthesized inputs (fixed seed)"
    plan = plan_shapes(handle, batch, shapes, {k: tuple(v.shape) for k, v in ds.inputs.items()})
    return ds, plan, split


def latency_shares(handle: ModelHandle, settings: RuntimeSettings, data: Dataset,
                   plan: ShapePlan) -> tuple[dict[str, float], dict[str, Any]]:
    """({layer: share of the profiled time}, a record of the profile: source, calls, total_ms, or its error).
    A model the profiler cannot run gets no shares; the study goes on."""
    from accelstudio.core.measure.profile import profile_model

    feed = _one_call(data, plan)
    try:
        profile = profile_model(handle, settings, feed, calls=PROFILE_CALLS, warmup=PROFILE_WARMUP)
    except (AccelStudioError, RuntimeError, ValueError) as exc:
        return {}, {"error": f"no per-operator profile: {exc}"}
    shares: dict[str, float] = {}
    for row in profile.get("layers", []):
        shares[row["name"]] = shares.get(row["name"], 0.0) + float(row["share"])
    return ({k: round(v, 6) for k, v in shares.items()},
            {"source": profile.get("source"), "calls": profile.get("calls"), "total_ms": profile.get("total_ms"),
             "batch": int(next(iter(feed.values())).shape[0]) if plan.layout != "per-call" else 1})


def _one_call(data: Dataset, plan: ShapePlan) -> dict[str, np.ndarray]:
    if plan.layout == "per-call":
        return {k: v[0] for k, v in data.inputs.items()}
    rows = plan.batch if plan.layout == "fixed" else min(plan.batch, data.num_samples)
    feed = data.slice(0, rows)
    if plan.layout == "fixed" and data.num_samples < rows:
        feed = {k: np.concatenate([v, np.repeat(v[-1:], rows - len(v), axis=0)]) for k, v in feed.items()}
    return feed
