"""Per-layer sensitivity: each layer pruned alone at several amounts, quantized alone, and kept in float alone
(every other layer quantized), measured on a screening subset as points lost, with each layer's share of the
baseline's latency (the per-operator profile) beside it.

Fast by construction: one model, built once (sensitivity_runners), weights computed with numpy
(sensitivity_variants); the sample count is lowered to fit the budget, layers are screened biggest first
(latency share and parameter count) and the study stops cleanly at the budget, marking the rest not screened.
The result dict is described in sensitivity_result.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from accelstudio.core.data.dataset import Dataset, subset
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.progress import CancelToken, ProgressCallback, ProgressEvent, check_cancel
from accelstudio.core.studies.sensitivity_metrics import METRICS, Reference, recovered_cell, variant_cell
from accelstudio.core.studies.sensitivity_params import MIN_SAMPLES, SensitivityError, SensitivityParams
from accelstudio.core.studies.sensitivity_result import layer_score, rank_rows
from accelstudio.core.studies.sensitivity_runners import VariantRunner, make_runner
from accelstudio.core.studies.sensitivity_setup import latency_shares, open_study_model, screening_data
from accelstudio.core.studies.sensitivity_variants import (
    KEEP_FLOAT, PRUNE, QUANT_ALONE, ScreenedLayer, Setting, pruned_weight, quantized_kinds, quantized_weight,
    study_settings,
)

STAGE = "sensitivity"
FIT_FRACTION = 0.85  # of the budget left after the setup, planned for the variants


def run_sensitivity(params: dict[str, Any], progress: ProgressCallback, cancel: CancelToken) -> dict[str, Any]:
    """The registered study "sensitivity": `params` is SensitivityParams.to_dict(); returns the result dict."""
    started = time.perf_counter()
    p = SensitivityParams.from_dict(params)
    progress(ProgressEvent(STAGE, 0.0, f"opening {p.model}"))
    handle = open_study_model(p)
    data, plan, split = screening_data(p, handle)
    settings = RuntimeSettings(runtime="onnxruntime" if handle.backend == "onnx" else "torch", threads=p.threads,
                               batch=plan.batch)
    runner = make_runner(handle, data, plan.batch, plan.layout, settings)
    check_cancel(cancel)
    columns = study_settings(p.prune_method, p.amounts, p.quantize)
    quant_names = _quantized_names(runner.layers, p, handle.backend)
    if not runner.layers:
        raise SensitivityError(f"{handle.name}: no Conv/Gemm/MatMul/Linear layer with a float weight to screen")
    progress(ProgressEvent(STAGE, 0.02, "profiling the baseline for each layer's share of latency"))
    shares, latency = latency_shares(handle, settings, data, plan)
    notes: list[str] = []
    hint = _output_hint(handle)
    ref, base_s = _reference(runner, data, cancel, hint)
    requested = data.num_samples
    per_layer = {l.name: _applicable(l, columns, quant_names) for l in runner.layers}
    planned = sum(len(v) for v in per_layer.values()) + (1 if quant_names else 0)
    remaining = p.budget_s - (time.perf_counter() - started)
    if base_s * planned > FIT_FRACTION * remaining and data.num_samples > MIN_SAMPLES:
        n = max(MIN_SAMPLES, int(data.num_samples * FIT_FRACTION * max(remaining, 0.0) / (base_s * planned)))
        if n < data.num_samples:
            data = subset(data, n)
            runner.data = data
            ref, base_s = _reference(runner, data, cancel, hint)
            notes.append(f"screened on {n} of {requested} samples to fit the {p.budget_s:g} s budget "
                         f"({planned} variants at {base_s:.2f} s each)")
    all_quant = {name: quantized_weight(_by_name(runner, name), p.quantize) for name in quant_names}
    all_cell = variant_cell(runner.outputs(all_quant, cancel), ref) if quant_names else None
    order = _screening_order(runner.layers, shares)
    rows, stopped, per_variant = [], False, base_s
    for i, layer in enumerate(order):
        check_cancel(cancel)
        elapsed = time.perf_counter() - started
        if stopped or elapsed + per_variant * len(per_layer[layer.name]) > p.budget_s:
            stopped = True
            rows.append(_row(layer, shares, {}, screened=False))
            continue
        t0 = time.perf_counter()
        cells = _screen_layer(runner, layer, columns, per_layer[layer.name], p, ref, all_quant, all_cell, cancel)
        if per_layer[layer.name]:
            per_variant = max(per_variant, (time.perf_counter() - t0) / len(per_layer[layer.name]))
        row = _row(layer, shares, cells, screened=True)
        rows.append(row)
        progress(ProgressEvent(STAGE, (i + 1) / len(order), f"{layer.name}: {_row_text(row)}", partial={"row": row}))
    if stopped:
        notes.append(f"stopped at the {p.budget_s:g} s budget: "
                     f"{sum(not r['screened'] for r in rows)} of {len(rows)} layers not screened (the smallest)")
    if p.quantize:
        notes.append("quantization screened as weight-only fake quantization (weights rounded to the mode's grid, "
                     "computed in float32); activation quantization is not simulated")
    rows = _model_order(rows, runner.layers)
    return {
        "kind": "sensitivity", "model": {"name": handle.name, "backend": handle.backend, "runtime": settings.runtime},
        "metric": {"name": ref.metric, "loss": METRICS[ref.metric], "output_kind": ref.output_kind},
        "samples": {"n": int(data.num_samples), "requested": int(requested), "source": data.source, "split": split,
                    "labeled": data.labels is not None, "synthesized": bool(data.synthesized)},
        "settings": [s.to_dict() for s in columns], "prune_method": p.prune_method, "quantize": p.quantize,
        "baseline": {"accuracy": ref.accuracy}, "all_quantized": all_cell,
        "ranking": rank_rows(rows), "rows": rows, "not_screened": [r["layer"] for r in rows if not r["screened"]],
        "latency": latency, "budget_s": p.budget_s, "stopped_at_budget": stopped,
        "elapsed_s": round(time.perf_counter() - started, 3), "seconds_per_variant": round(per_variant, 4),
        "notes": notes,
    }


def _reference(runner: VariantRunner, data: Dataset, cancel, hint) -> tuple[Reference, float]:
    from accelstudio.core.measure.evaluate import describe_outputs

    t0 = time.perf_counter()
    outputs = np.asarray(runner.outputs({}, cancel))
    kind = describe_outputs(outputs, data.labels is not None, hint)["output_kind"]
    return Reference(outputs, data.labels, kind), time.perf_counter() - t0


def _output_hint(handle):
    from accelstudio.core.measure.evaluate import module_output_hint, output_hint

    return output_hint(handle.onnx_model) if handle.backend == "onnx" else module_output_hint(handle.module)


def _quantized_names(layers: list[ScreenedLayer], p: SensitivityParams, backend: str) -> list[str]:
    if not p.quantize:
        return []
    kinds = quantized_kinds(p.quantize, backend)
    names = [l.name for l in layers if l.kind in kinds]
    if not names:
        raise SensitivityError(f"quantization mode {p.quantize.get('mode')!r} stores no layer of this model in low "
                               f"precision on {backend} (it quantizes {', '.join(sorted(kinds)) or 'nothing'}); "
                               "choose another mode, e.g. sim-8")
    return names


def _applicable(layer: ScreenedLayer, columns: list[Setting], quant_names: list[str]) -> list[Setting]:
    return [s for s in columns if s.kind == PRUNE or layer.name in quant_names]


def _by_name(runner: VariantRunner, name: str) -> ScreenedLayer:
    return next(l for l in runner.layers if l.name == name)


def _screening_order(layers: list[ScreenedLayer], shares: dict[str, float]) -> list[ScreenedLayer]:
    """Biggest first: the mean of the latency share and the share of parameters."""
    total = sum(l.params for l in layers) or 1
    return sorted(layers, key=lambda l: -(shares.get(l.name, 0.0) + l.params / total) / 2)


def _screen_layer(runner, layer, columns, applicable, p, ref, all_quant, all_cell, cancel) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for setting in columns:
        check_cancel(cancel)
        if setting not in applicable:
            cells[setting.label] = None
        elif setting.kind == PRUNE:
            weight = pruned_weight(layer, setting.amount, p.prune_method)
            cells[setting.label] = variant_cell(runner.outputs({layer.name: weight}, cancel), ref)
        elif setting.kind == QUANT_ALONE:
            cells[setting.label] = variant_cell(runner.outputs({layer.name: all_quant[layer.name]}, cancel), ref)
        elif setting.kind == KEEP_FLOAT:
            others = {k: v for k, v in all_quant.items() if k != layer.name}
            cells[setting.label] = recovered_cell(variant_cell(runner.outputs(others, cancel), ref), all_cell)
    return cells


def _row(layer: ScreenedLayer, shares: dict[str, float], cells: dict[str, Any], screened: bool) -> dict[str, Any]:
    score, tiebreak = layer_score(cells) if screened else (None, 0.0)
    return {"layer": layer.name, "kind": layer.kind, "params": layer.params,
            "latency_share": shares.get(layer.name), "screened": screened, "cells": cells,
            "score": None if score is None else round(score, 4), "tiebreak": round(tiebreak, 6)}


def _row_text(row: dict[str, Any]) -> str:
    return ", ".join(f"{label} {c['loss']:+.1f}" for label, c in row["cells"].items() if c and c["loss"] is not None)


def _model_order(rows: list[dict[str, Any]], layers: list[ScreenedLayer]) -> list[dict[str, Any]]:
    position = {l.name: i for i, l in enumerate(layers)}
    return sorted(rows, key=lambda r: position[r["layer"]])
