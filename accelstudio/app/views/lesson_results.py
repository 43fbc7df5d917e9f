"""The texts a finished lesson step shows: the per-layer sensitivity table, and the transfer experiment's
accuracies, intervals, times and comparison. Formatting only; the figures come from the runs' reports and the
experiment's result."""

from __future__ import annotations

import html

from accelstudio.app.plots import run_metrics as rm
from accelstudio.core.recipe import Recipe


def sensitivity_html(results: list[RunResult]) -> str:
    """One line per layer-sensitivity job: the layer pruned alone and the accuracy change with its interval."""
    rows = []
    for run in results:
        recipe = Recipe.from_dict((run.spec or {}).get("recipe") or {})
        if recipe.is_identity or run.status != "done":
            continue
        layers = ", ".join(f"{name} {amount:.0%}" for name, amount in recipe.prune.overrides.items())
        change = rm.report(run).quality.change
        rows.append(f"<tr><td>{html.escape(layers)}</td><td>{html.escape(change.text() if change else 'n/a')}"
                    f"</td></tr>")
    return "<b>Accuracy change when one layer alone is pruned</b><table>" + "".join(rows) + "</table>"


def transfer_summary(result: dict) -> str:
    """Two lines for the status: each target network's accuracy, interval and time, and the comparison."""
    phases, change = result["phases"], result["comparison"]["change"]

    def one(name: str) -> str:
        p = phases[name]
        return f"{name} {p['accuracy']:.1%} [{p['interval'][0]:.1%}, {p['interval'][1]:.1%}] in {p['seconds']:.1f} s"

    return html.escape(f"{one('transfer')} · {one('scratch')} (source on 0-4: {phases['source']['seconds']:.1f} s). "
                       f"Transfer vs scratch {change['delta_pts']:+.1f} pts (95% CI {change['lo_pts']:+.1f}.."
                       f"{change['hi_pts']:+.1f}, exact p = {change['p_value']:.2g}: {change['verdict']})")


def transfer_html(result: dict) -> str:
    """The transfer experiment's outcome: accuracy with its interval, time and trained parameters per network,
    and the paired comparison of transfer with training from scratch."""
    lines = []
    for name, label in (("source", "Source (digits 0-4)"), ("transfer", "Transfer"), ("scratch", "From scratch")):
        phase = result["phases"][name]
        lo, hi = phase["interval"]
        lines.append(f"{label}: accuracy {phase['accuracy']:.1%} [{lo:.1%}, {hi:.1%}] on {phase['n']} test "
                     f"samples, {phase['seconds']:.1f} s, {phase['trained_params']:,} trained parameters, "
                     f"{phase['train_samples']} training samples")
    change = result["comparison"]["change"]
    lines.append(f"Transfer vs scratch: {change['delta_pts']:+.1f} pts (95% CI {change['lo_pts']:+.1f}.."
                 f"{change['hi_pts']:+.1f}; {change['lost']} lost, {change['gained']} gained, exact p = "
                 f"{change['p_value']:.3g}: {change['verdict']})")
    return "<br>".join(html.escape(line) for line in lines)
