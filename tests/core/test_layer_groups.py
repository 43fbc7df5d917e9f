"""Grouping layers for plots: by block (module path, or runs of consecutive layers) and by operator type."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest

from accelstudio.core.model.inspect import inspect_model
from accelstudio.core.model.layer_groups import MAX_BLOCKS, block_key, group_layers
from accelstudio.core.model.loading import open_model

RESNET50 = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light" / "light_resnet50.onnx"


def test_block_key_follows_the_module_path():
    assert block_key("layer1.0.conv1") == "layer1.0"
    assert block_key("encoder.layers.3.linear1") == "encoder.layers.3"
    assert block_key("features.0") == "features"
    assert block_key("fc") == "" and block_key("n12") == ""


def test_groups_add_sizes_and_weight_sparsity_by_params():
    names = ["layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.fc"]
    groups = group_layers(names, ["Conv", "Conv", "Conv", "Linear"], [100, 300, 50, 50], [400, 1200, 200, 200],
                          [0.0, 0.5, 0.2, 0.0], [0.5, 0.5, 0.2, 0.0], "block")
    assert [g.name for g in groups] == ["layer1.0", "layer2.0"]
    assert groups[0].bytes == 1600 and groups[0].params == 400
    assert groups[0].sparsity == pytest.approx((0 * 100 + 0.5 * 300) / 400)
    assert groups[0].predicted == pytest.approx(0.5)
    by_type = group_layers(names, ["Conv", "Conv", "Conv", "Linear"], [100, 300, 50, 50], [1, 1, 1, 1],
                           [0.0] * 4, [0.0] * 4, "type")
    assert [g.name for g in by_type] == ["Conv ×3", "Linear ×1"] and by_type[0].layers == tuple(names[:3])
    with pytest.raises(ValueError, match="unknown grouping"):
        group_layers(names, ["Conv"] * 4, [1] * 4, [1] * 4, [0.0] * 4, [0.0] * 4, "colour")


def test_a_many_layer_model_without_module_paths_groups_into_consecutive_blocks():
    summary = inspect_model(open_model(str(RESNET50)))
    layers = summary.layers
    assert len(layers) > 100
    args = ([la.name for la in layers], [la.op_type for la in layers], [la.params for la in layers],
            [la.bytes for la in layers], [la.sparsity for la in layers], [la.sparsity for la in layers])
    blocks = group_layers(*args, "block")
    assert 1 < len(blocks) <= MAX_BLOCKS
    assert sum(g.bytes for g in blocks) == sum(la.bytes for la in layers)
    assert [n for g in blocks for n in g.layers] == [la.name for la in layers]  # in model order, each once
    types = group_layers(*args, "type")
    assert {g.name.split(" ")[0] for g in types} == {la.op_type for la in layers}


def test_a_narrow_plot_asks_for_fewer_consecutive_blocks():
    names = [f"n{i}" for i in range(100)]
    groups = group_layers(names, ["Conv"] * 100, [1] * 100, [1] * 100, [0.0] * 100, [0.0] * 100, "block",
                          max_blocks=8)
    assert len(groups) <= 8 and [n for g in groups for n in g.layers] == names
    assert groups[0].name == "n0…n12"
