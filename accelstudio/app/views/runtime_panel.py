"""The runtime group: backend and device (only those available here), threads, ONNX Runtime's knobs (inter-op
threads, spinning, graph optimization), a compiled form to measure next to eager, batch, repeats, time budget,
and whether to profile each operator after the timed calls."""

from __future__ import annotations

import os
from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QSpinBox)

from accelstudio.core.job import COMPILE_BACKENDS, GRAPH_OPT_LEVELS, RuntimeSettings

RUNTIME_LABELS = {"torch": "PyTorch eager", "torchscript": "TorchScript", "onnxruntime": "ONNX Runtime"}
SPINNING_CHOICES = (("spin off", False), ("spin on", True), ("spin: ORT default", None))
COMPILE_LABELS = {"": "none", "inductor": "torch.compile (inductor)", "torchscript": "TorchScript",
                  "ort-levels": "ORT graph levels", "openvino": "OpenVINO EP"}


class RuntimePanel(QGroupBox):
    """Runtime settings; emits `runtime_edited(settings, description)` on every user change."""

    runtime_edited = Signal(object, str)

    def __init__(self, parent=None):
        super().__init__("Runtime", parent, objectName="runtimeGroup")
        self._settings = RuntimeSettings()
        self._options: list = []
        self._updating = False
        form = QFormLayout(self)
        self.backend_combo = QComboBox(objectName="backendCombo")
        self.device_combo = QComboBox(objectName="deviceCombo")
        self.backend_combo.currentIndexChanged.connect(self._backend_changed)
        self.device_combo.currentIndexChanged.connect(lambda: self._emit("Device"))
        form.addRow("Backend", self.backend_combo)
        form.addRow("Device", self.device_combo)
        cores = os.cpu_count() or 1
        self.threads_spin = self._spin(1, max(cores * 4, 64), "Threads", form,
                                       f"Intra-op threads for both runtimes ({cores} cores here)")
        self._add_ort_row(form)
        self.compile_combo = QComboBox(objectName="compileCombo")
        for key in ("",) + COMPILE_BACKENDS:
            self.compile_combo.addItem(COMPILE_LABELS[key], key)
        self.compile_combo.setToolTip("Also measure a compiled form next to the eager one (interleaved), with its "
                                      "compile time and the calls it takes to pay that back")
        self.compile_combo.currentIndexChanged.connect(lambda: self._emit("Compile"))
        form.addRow("Compile", self.compile_combo)
        self.batch_spin = self._spin(1, 4096, "Batch", form, "Samples per call")
        self.threads_spin.setObjectName("threadsSpin")
        self.batch_spin.setObjectName("batchSpin")
        self.warmup_spin = self._spin(0, 1000, "Warm-up", form, "Calls discarded before timing")
        self.repeats_spin = self._spin(1, 100_000, "Repeats", form, "Timed calls (at most; the budget may stop first)")
        self.budget_spin = QDoubleSpinBox(suffix=" s", decimals=1)
        self.budget_spin.setRange(0.1, 600.0)
        self.budget_spin.setToolTip("Stop timing after this long even if fewer repeats ran")
        self.budget_spin.valueChanged.connect(lambda: self._emit("Time budget"))
        form.addRow("Time budget", self.budget_spin)
        self.profile_check = QCheckBox("Profile operators", objectName="profileCheck")
        self.profile_check.setToolTip("After the timed calls, profile each operator (time, precision, conversions) "
                                      "and place the layers under this machine's roofline; shown under Profile")
        self.profile_check.toggled.connect(lambda: self._emit("Profile"))
        form.addRow(self.profile_check)
        self.note = QLabel(wordWrap=True)
        self.note.setEnabled(False)
        form.addRow(self.note)

    def _add_ort_row(self, form: QFormLayout) -> None:
        """One compact row of ONNX Runtime knobs: inter-op threads, spinning, graph optimization level."""
        row = QHBoxLayout()
        self.inter_spin = QSpinBox(objectName="interThreadsSpin")
        self.inter_spin.setRange(1, 64)
        self.inter_spin.setToolTip("ONNX Runtime inter-op threads (more than 1 runs independent nodes in parallel)")
        self.spinning_combo = QComboBox(objectName="spinningCombo")
        for text, value in SPINNING_CHOICES:
            self.spinning_combo.addItem(text, value)
        self.spinning_combo.setToolTip("Spinning threads answer faster but keep cores busy between calls")
        self.graph_combo = QComboBox(objectName="graphOptCombo")
        for level in GRAPH_OPT_LEVELS:
            self.graph_combo.addItem(f"opt {level}", level)
        self.graph_combo.setToolTip("ONNX Runtime graph optimization level")
        self.inter_spin.valueChanged.connect(lambda: self._emit("Inter-op threads"))
        self.spinning_combo.currentIndexChanged.connect(lambda: self._emit("Spinning"))
        self.graph_combo.currentIndexChanged.connect(lambda: self._emit("Graph optimization"))
        for w in (self.inter_spin, self.spinning_combo, self.graph_combo):
            row.addWidget(w)
        form.addRow("ORT", row)

    def _spin(self, low: int, high: int, label: str, form: QFormLayout, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setToolTip(tip)
        spin.valueChanged.connect(lambda: self._emit(label))
        form.addRow(label, spin)
        return spin

    def set_options(self, options: list) -> None:
        """The RuntimeOptions that work on this machine; only these are offered."""
        self._options = list(options)
        self._updating = True
        try:
            self.backend_combo.clear()
            for runtime in dict.fromkeys(o.runtime for o in self._options):
                self.backend_combo.addItem(RUNTIME_LABELS.get(runtime, runtime), runtime)
        finally:
            self._updating = False
        self.show_runtime(self._settings)
        devices = sorted({o.device for o in self._options})
        self.note.setText(f"Available here: {', '.join(o.label for o in self._options)}")
        self.device_combo.setToolTip("Devices found: " + ", ".join(devices))

    def show_runtime(self, settings: RuntimeSettings) -> None:
        """Write `settings` into the widgets without emitting edits."""
        self._settings = settings
        self._updating = True
        try:
            index = self.backend_combo.findData(settings.runtime)
            if index >= 0:
                self.backend_combo.setCurrentIndex(index)
            self._fill_devices(settings.runtime, settings.device, settings.provider)
            self.threads_spin.setValue(settings.threads or (os.cpu_count() or 1))
            self.inter_spin.setValue(max(settings.inter_threads, 1))
            self.spinning_combo.setCurrentIndex(self.spinning_combo.findData(settings.spinning))
            self.graph_combo.setCurrentIndex(max(self.graph_combo.findData(settings.graph_opt_level), 0))
            self.compile_combo.setCurrentIndex(max(self.compile_combo.findData(settings.compile), 0))
            self._enable_ort_row(settings.runtime)
            self.batch_spin.setValue(settings.batch)
            self.warmup_spin.setValue(settings.warmup)
            self.repeats_spin.setValue(settings.repeats)
            self.budget_spin.setValue(settings.time_budget_s)
            self.profile_check.setChecked(settings.profile)
        finally:
            self._updating = False

    def _fill_devices(self, runtime: str, device: str, provider: str | None) -> None:
        self.device_combo.clear()
        for option in (o for o in self._options if o.runtime == runtime):
            self.device_combo.addItem(f"{option.device} ({option.label})", (option.device, option.provider))
        for i in range(self.device_combo.count()):
            dev, prov = self.device_combo.itemData(i)
            if dev == device and (provider is None or prov == provider):
                self.device_combo.setCurrentIndex(i)
                break

    def _backend_changed(self) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            self._fill_devices(self.backend_combo.currentData(), self._settings.device, None)
            self._enable_ort_row(self.backend_combo.currentData())
        finally:
            self._updating = False
        self._emit("Backend")

    def compose(self) -> RuntimeSettings:
        """The settings the widgets show."""
        device, provider = self.device_combo.currentData() or (self._settings.device, self._settings.provider)
        runtime = self.backend_combo.currentData() or self._settings.runtime
        default_provider = provider if runtime == "onnxruntime" and device not in ("cpu", "cuda") else None
        return replace(self._settings, runtime=runtime, device=device, provider=default_provider,
                       threads=self.threads_spin.value(), batch=self.batch_spin.value(),
                       warmup=self.warmup_spin.value(), repeats=self.repeats_spin.value(),
                       time_budget_s=round(self.budget_spin.value(), 1), inter_threads=self.inter_spin.value(),
                       spinning=self.spinning_combo.currentData(), graph_opt_level=self.graph_combo.currentData(),
                       compile=self.compile_combo.currentData() or "", profile=self.profile_check.isChecked())

    def _enable_ort_row(self, runtime: str) -> None:
        for w in (self.inter_spin, self.spinning_combo, self.graph_combo):
            w.setEnabled(runtime == "onnxruntime")

    def _emit(self, text: str) -> None:
        if self._updating:
            return
        settings = self.compose()
        if settings != self._settings:
            self.runtime_edited.emit(settings, text)
