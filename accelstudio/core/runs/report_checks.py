"""The checks behind a RunReport's "broken" verdict and its warnings (see accelstudio.core.runs.report).

Broken (fidelity collapsed, though the run finished): any output NaN/Inf; mean cosine to the uncompressed model
below BROKEN_COSINE; for class scores, top-1 agreement below BROKEN_AGREEMENT (the baseline agrees with itself
100%); with labels, a real accuracy drop larger than BROKEN_DROP_PTS. The likely cause is read from the recipe.
"""

from __future__ import annotations

from typing import Any

from accelstudio.core.job import RunResult
from accelstudio.core.measure.machine_load import busy_note
from accelstudio.core.runs.report_model import Broken, Quality

BROKEN_COSINE = 0.9
BROKEN_AGREEMENT = 0.5
BROKEN_DROP_PTS = 10.0


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def broken_check(run: RunResult, quality: Quality) -> Broken | None:
    """A Broken verdict when the run's fidelity collapsed, else None."""
    reasons = []
    nonfinite = quality.nonfinite_outputs or 0
    if nonfinite:
        n = quality.n_eval
        reasons.append(f"{nonfinite}{f' of {n}' if n else ''} outputs hold NaN or Inf")
    elif quality.n_compared == 0 and quality.agreement is None and _dict(run.metrics).get("fidelity"):
        reasons.append("no output could be compared with the original")
    if quality.cosine is not None and quality.cosine < BROKEN_COSINE:
        reasons.append(f"cosine {quality.cosine:.3f} to the original model (below {BROKEN_COSINE})")
    if quality.output_kind == "class_scores" and quality.agreement is not None \
            and quality.agreement < BROKEN_AGREEMENT:
        reasons.append(f"top-1 agreement with the original only {quality.agreement:.0%}")
    change = quality.change
    if change is not None and change.verdict == "real drop" and change.delta_pts < -BROKEN_DROP_PTS:
        reasons.append(f"accuracy fell {-change.delta_pts:.1f} points")
    if not reasons:
        return None
    return Broken(tuple(reasons), likely_cause(_dict(_dict(run.spec).get("recipe")), nonfinite > 0))


def likely_cause(recipe: dict, nonfinite: bool) -> str:
    """The most likely cause of a collapse, with what to do, from the recipe that ran."""
    quant = _dict(recipe.get("quantize"))
    prune = _dict(recipe.get("prune"))
    mode = quant.get("mode") or "none"
    amount = prune.get("amount")
    pruned = isinstance(amount, (int, float)) and amount > 0
    if mode == "none" and not pruned and (_dict(recipe.get("recovery")).get("method") or "none") == "none":
        return ("the unchanged model itself gives NaN/Inf or no comparable output on these inputs: check the "
                "input data (range, dtype, shapes)")
    row = _mode_row(mode)
    if row is not None and row.needs_calibration:
        return (f"{row.label} activation ranges that do not fit the values this model computes (calibration on "
                "random or too few inputs, or attention/LayerNorm/residual layers in 8 bits): calibrate on real "
                "samples (--calib), keep the widest-ranging layers in float (exclude them), or use dynamic int8")
    if row is not None and row.half:
        return (f"{mode} overflow or underflow in some layers: keep the layers with large activations in float32 "
                "(exclude them) or use int8")
    if nonfinite:
        return "the compressed model produces NaN/Inf: keep the layer that overflows in float (exclude it)"
    int8_kernels = row is not None and row.per_channel_allowed and row.bits == 8 and not row.weight_only
    if int8_kernels and not quant.get("per_channel", True):
        return "per-tensor int8 weights saturate: use per-channel weights"
    narrow = row is not None and (row.simulated or (row.bits is not None and row.bits < 8))
    if narrow or (mode != "none" and quant.get("bits", 8) < 8):
        return "too few bits for these weights: use 8 bits or keep the sensitive layers in float"
    if pruned:
        return (f"pruning {amount:.0%} removed too much: lower the amount, exclude the sensitive layers, or "
                "recover accuracy by fine-tuning")
    if mode != "none":
        return f"{mode} does not suit some layers of this model: exclude the most sensitive layers"
    return "the compressed model no longer follows the original; compare the layers' errors"


def _mode_row(name: str):
    """The quantization-mode table's row for a stored run's mode name (None for a name this version lacks)."""
    from accelstudio.core.errors import RecipeError
    from accelstudio.core.quant_modes import quant_mode

    try:
        return quant_mode(name)
    except RecipeError:
        return None


def run_warnings(run: RunResult, baseline: RunResult | None = None) -> list[str]:
    """Warnings from the run's machine, execution and data records (and its baseline run's machine record and
    library versions)."""
    m = _dict(run.metrics)
    baseline_metrics = _dict(baseline.metrics) if baseline is not None else None
    out = []
    busy = busy_note(_dict(m.get("machine")))
    if busy:
        out.append(busy)
    if baseline_metrics is not None:
        base_busy = _busy_text(_dict(baseline_metrics.get("machine")))
        if base_busy:
            out.append(f"the baseline was measured on a busy machine ({base_busy}); the speed-up is not "
                       "trustworthy")
    if baseline is not None:
        mine, theirs = _dict(run.environment).get("versions"), _dict(baseline.environment).get("versions")
        if mine and theirs and mine != theirs:
            changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            out.append(f"the baseline ran with other library versions ({', '.join(changed)}): part of the "
                       "difference may come from them")
    out.extend(_device_warnings(run))
    data = _dict(m.get("data"))
    guessed = [str(g) for g in data.get("guessed_dims") or ()]
    if guessed:
        out.append(f"input dims guessed ({', '.join(guessed)}): latency is measured at guessed sizes; set the "
                   "input shapes (e.g. --input-shape x=1x3x640x640) or give data")
    overlap = _dict(data.get("train")).get("overlap_with_eval")
    if isinstance(overlap, int) and overlap > 0:
        out.append(f"the training data holds {overlap} rows of the evaluation data: the accuracy is optimistic")
    return out


def _busy_text(machine: dict) -> str:
    if not machine.get("busy"):
        return ""
    pct = machine.get("other_cpu_pct")
    load = machine.get("load_1min")
    if isinstance(pct, (int, float)):
        return f"other processes used {pct:.0f}% of the CPU"
    if isinstance(load, (int, float)):
        return f"load average {load:.1f}"
    return "other processes were running"


def _device_warnings(run: RunResult) -> list[str]:
    execution = _dict(_dict(run.metrics).get("execution"))
    requested = _dict(_dict(run.spec).get("runtime"))
    out = []
    ran, asked = execution.get("device"), requested.get("device")
    if ran and asked and ran != asked:
        providers = ", ".join(str(p) for p in execution.get("providers") or ())
        out.append(f"asked for {asked} but ran on {ran}{f' ({providers})' if providers else ''}: this run does "
                   "not measure the requested device")
    threads, wanted = execution.get("threads"), requested.get("threads")
    if isinstance(threads, int) and isinstance(wanted, int) and wanted > 0 and threads != wanted:
        out.append(f"asked for {wanted} threads but {threads} were used")
    return out
