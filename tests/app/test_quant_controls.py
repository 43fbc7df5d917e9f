"""The quantization controls enable what the chosen mode's row of the mode table allows, and show its tip."""

from __future__ import annotations

from accelstudio.app.views.controls import RecipeControls
from accelstudio.core.quant_modes import QUANT_MODE_TABLE
from accelstudio.core.recipe import Recipe


def test_controls_follow_the_mode_table(qtbot):
    controls = RecipeControls()
    qtbot.addWidget(controls)
    controls.show_recipe(Recipe())
    edits = []
    controls.recipe_edited.connect(lambda *args: edits.append(args))
    for mode in QUANT_MODE_TABLE:
        controls.mode_combo.setCurrentIndex(controls.mode_combo.findData(mode.name))
        assert controls.mode_combo.currentData() == mode.name
        assert controls.granularity_combo.isEnabled() == mode.per_channel_allowed, mode.name
        assert controls.weight_type_combo.isEnabled() == mode.weight_type_allowed, mode.name
        assert controls.calib_combo.isEnabled() == controls.calib_samples.isEnabled() == mode.needs_calibration
        assert controls.bits_slider.isEnabled() == mode.simulated
        assert controls.symmetric_check.isEnabled() == mode.symmetric_allowed, mode.name
        assert controls.mode_combo.toolTip() == mode.tip
    assert len(edits) == len(QUANT_MODE_TABLE) - 1  # every change but the first ("none", already chosen)
