"""The profile of the selected run: where its time goes (per layer or op type) beside its baseline's, the
conversions it pays for, and its layers under this machine's roofs."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from accelstudio.app.plots.profile_plots import ProfileBars, RooflinePlot, profile_bars
from accelstudio.core.job import RunResult

NO_PROFILE = ("Run {id} has no profile: tick <b>Profile operators</b> under Runtime and run again "
              "(the profile pass runs after the timed calls, so it never changes the latency figures).")


class ProfileView(QWidget):
    """Shows one run's metrics["profile"] and metrics["roofline"] and its baseline's (`show_runs`)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("profileView")
        self.run: RunResult | None = None
        self.baseline: RunResult | None = None
        self.grouping = QComboBox(objectName="profileGrouping")
        self.grouping.addItem("Per layer", "layer")
        self.grouping.addItem("Per op type", "op_type")
        self.grouping.setToolTip("Group the time by the layer table's layers or by operator type")
        self.grouping.currentIndexChanged.connect(lambda _: self._draw())
        self.summary = QLabel("Select a profiled run.", objectName="profileSummary", wordWrap=True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bars = ProfileBars()
        self.roofline = RooflinePlot()
        bar = QHBoxLayout()
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.grouping, 0, Qt.AlignmentFlag.AlignTop)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.bars)
        split.addWidget(self.roofline)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(split, 1)

    def show_runs(self, run: RunResult | None, baseline: RunResult | None = None) -> None:
        """Show `run`'s profile beside `baseline`'s (its like-for-like baseline, when that one was profiled)."""
        self.run = run
        self.baseline = baseline if baseline is not None and run is not None and baseline.run_id != run.run_id \
            else None
        self._draw()

    def _draw(self) -> None:
        run = self.run
        profile = (run.metrics.get("profile") if run is not None else None) or None
        if profile is None:
            self.bars.set_bars([], "")
            self.roofline.set_roofline(None)
            if run is None:
                self.summary.setText("Select a profiled run.")
            elif run.metrics.get("profile_error"):
                self.summary.setText(f"Run {run.run_id}: no profile ({html.escape(run.metrics['profile_error'])})")
            else:
                self.summary.setText(NO_PROFILE.format(id=run.run_id))
            return
        base = self.baseline.metrics.get("profile") if self.baseline is not None else None
        by = self.grouping.currentData()
        what = "layer" if by == "layer" else "op type"
        title = f"Run {run.run_id}: ms per call by {what}" + (f" vs baseline run {self.baseline.run_id}" if base else "")
        self.bars.set_bars(profile_bars(profile, base, by), title)
        self.roofline.set_roofline(run.metrics.get("roofline"),
                                   self.baseline.metrics.get("roofline") if base is not None else None)
        self.summary.setText(self._summary(run, profile, base))

    def _summary(self, run: RunResult, profile: dict, base: dict | None) -> str:
        conv = profile.get("conversions", {})
        parts = [f"<b>Run {run.run_id}</b> ({profile['source']}, {profile['calls']} profiled calls): "
                 f"{profile['total_ms']:.3f} ms per call",
                 f"conversions {conv.get('count', 0)} per call, {conv.get('time_ms', 0.0):.3f} ms "
                 f"({conv.get('share', 0.0):.1%})"]
        if base is not None:
            bconv = base.get("conversions", {})
            parts.append(f"baseline run {self.baseline.run_id}: {base['total_ms']:.3f} ms per call, conversions "
                         f"{bconv.get('time_ms', 0.0):.3f} ms")
        elif self.baseline is not None:
            parts.append(f"baseline run {self.baseline.run_id} was not profiled (run it again with Profile "
                         "operators ticked to see it beside this one)")
        else:
            parts.append("no like-for-like baseline run to show beside it")
        model = (run.metrics.get("roofline") or {}).get("model")
        if model:
            parts.append(f"whole model {model['achieved_gflops']:.2f} GFLOP/s: {model['bound']}-bound")
        if run.metrics.get("roofline_error"):
            parts.append(f"no roofline: {html.escape(run.metrics['roofline_error'])}")
        return " · ".join(parts)
