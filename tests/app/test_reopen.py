"""Reopen last: the last model and recipe come back in a new window; a missing file gives a status message."""

from __future__ import annotations

import json

from accelstudio.app.control.reopen import BACKEND_KEY, MODEL_KEY, RECIPE_KEY
from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe
from tests import factories as fx

LOAD_MS = 60_000


def test_the_last_model_and_recipe_are_reopened(make_window, qtbot, settings, tmp_path):
    path = fx.onnx_example(tmp_path)
    first = make_window(load=False)
    with qtbot.waitSignal(first.model_loaded, timeout=LOAD_MS):
        first.open_model(str(path))
    recipe = Recipe(prune=PruneSpec(amount=0.4), quantize=QuantSpec(mode="dynamic-int8", per_channel=True))
    first.state.edit("test recipe", recipe=recipe)
    assert settings.value(MODEL_KEY) == str(path.resolve())
    assert Recipe.from_dict(json.loads(settings.value(RECIPE_KEY))) == recipe
    first.close()

    second = make_window(load=False)
    with qtbot.waitSignal(second.model_loaded, timeout=LOAD_MS):
        assert second.reopen.reopen_last()
    assert second.state.model.ref == str(path.resolve())
    assert second.state.recipe == recipe
    assert second.recipe_controls.amount_spin.value() == 40
    second.reopen.remembering = False  # as in a smoke run: nothing it does is kept
    second.state.edit("not kept", recipe=Recipe(prune=PruneSpec(amount=0.7)))
    assert Recipe.from_dict(json.loads(settings.value(RECIPE_KEY))) == recipe


def test_a_missing_last_model_gives_a_status_message_not_a_dialog(make_window, settings, tmp_path, dialog_answers):
    settings.setValue(MODEL_KEY, str(tmp_path / "gone.onnx"))
    settings.setValue(BACKEND_KEY, "")
    settings.setValue(RECIPE_KEY, "{not json")
    window = make_window(load=False)
    assert not window.reopen.reopen_last()
    assert "no longer there" in window.statusBar().currentMessage()
    assert "gone.onnx" in window.statusBar().currentMessage()
    assert dialog_answers.boxes == []


def test_an_unreadable_recipe_is_skipped_with_a_message(make_window, qtbot, settings):
    settings.setValue(MODEL_KEY, "example:digits-mlp")
    settings.setValue(BACKEND_KEY, "onnx")
    settings.setValue(RECIPE_KEY, json.dumps({"prune": {"amount": 7}}))
    window = make_window(load=False)
    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_MS):
        assert window.reopen.reopen_last()
    assert window.state.model.ref == "example:digits-mlp" and window.state.recipe == Recipe()


def test_the_app_reopens_the_last_model_on_start_but_not_a_smoke_run_or_a_given_model():
    from accelstudio.app import main as app_main

    calls = []

    class FakeReopen:
        remembering = True

        def reopen_last(self):
            calls.append("last")
            return True

    class FakeWindow:  # records what run_gui's start step asks a window to open
        def __init__(self):
            self.reopen = FakeReopen()
            self.reopen.remembering = True

        def open_model(self, ref, **k):
            calls.append(("open", ref))

        def open_default(self):
            calls.append("default")

    import argparse

    for args, expected in (
            (dict(smoke=None, open_model=None, lesson=None), ["last"]),
            (dict(smoke=None, open_model="m.onnx", lesson=None), [("open", "m.onnx")]),
            (dict(smoke="x.png", open_model=None, lesson=None), ["default"]),
            (dict(smoke="x.png", open_model=None, lesson=None, reopen_last=True), ["last"])):
        calls.clear()
        window = FakeWindow()
        app_main.open_start_model(window, argparse.Namespace(**args))
        assert calls == expected, (args, calls)
        assert window.reopen.remembering is not bool(args["smoke"])  # a smoke run keeps nothing for next time
