"""The runtime panel offers ONNX Runtime's thread knobs and a compiled form, and round-trips them."""

from __future__ import annotations

from accelstudio.app.views.runtime_panel import RuntimePanel
from accelstudio.core.job import RuntimeSettings
from accelstudio.core.measure.runtimes import available_runtimes


def test_knobs_show_and_compose(qtbot):
    panel = RuntimePanel()
    qtbot.addWidget(panel)
    panel.set_options(available_runtimes())
    for spinning in (True, None, False):
        settings = RuntimeSettings(threads=1, inter_threads=2, spinning=spinning, graph_opt_level="basic",
                                   compile="ort-levels")
        panel.show_runtime(settings)
        assert panel.compose() == settings
    edits = []
    panel.runtime_edited.connect(lambda s, text: edits.append((s, text)))
    panel.spinning_combo.setCurrentIndex(panel.spinning_combo.findData(True))
    assert edits and edits[-1][0].spinning is True and edits[-1][1] == "Spinning"
    panel.graph_combo.setCurrentIndex(panel.graph_combo.findData("disabled"))
    assert edits[-1][0].graph_opt_level == "disabled"


def test_ort_knobs_are_disabled_for_torch(qtbot):
    panel = RuntimePanel()
    qtbot.addWidget(panel)
    panel.set_options(available_runtimes())
    panel.show_runtime(RuntimeSettings(runtime="torch", compile="inductor"))
    assert not panel.spinning_combo.isEnabled() and panel.compile_combo.currentData() == "inductor"
    panel.show_runtime(RuntimeSettings(runtime="onnxruntime"))
    assert panel.spinning_combo.isEnabled()
