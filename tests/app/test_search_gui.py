"""The Search dock: hidden by default, opened from Run > Search for a recipe...; a short search through the
worker fills the Pareto plot, and "Use this recipe" restores the controls to a trial's recipe."""

from __future__ import annotations

from dataclasses import replace

from accelstudio.core.recipe import Recipe

SEARCH_MS = 400_000


def test_search_panel_runs_trials_and_restores_a_recipe(window, qtbot):
    controller = window.search
    assert not controller.dock.isVisible()
    action = next(a for a in window.findChildren(type(window.run_action)) if a.objectName() == "searchAction")
    action.trigger()
    assert controller.dock.isVisible()
    window.state.edit("test settings", recipe=Recipe(),
                      runtime=replace(window.state.runtime, runtime="onnxruntime", threads=1, repeats=60))
    panel = controller.panel
    for mode, box in panel.mode_boxes.items():
        box.setChecked(mode == "dynamic-int8")
    for key, box in panel.vary_boxes.items():
        box.setChecked(key == "granularity")
    panel.constraint_value.setValue(2.0)
    with qtbot.waitSignal(controller.thread.finished, timeout=SEARCH_MS) as done:
        assert controller.start(max_trials=2)
        assert panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
        assert not window.run_action.isEnabled()  # no run timed next to the trials
    state = done.args[0]
    screened = [t for t in state["trials"] if t["phase"] == "screen"]
    assert len(screened) == 2 and all(t["status"] == "done" for t in screened)
    assert len(panel.plot.points) == 2  # both measured trials are on the plot
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled() and window.run_action.isEnabled()
    runs = window.runs.store.list_runs(study_id=state["study_id"])
    assert len(runs) == len(state["trials"])  # every trial is a stored run of the study

    trial = next(t for t in screened if t["point"]["quant"] == "dynamic-int8")
    controller.select(trial["number"])
    assert panel.use_button.isEnabled()
    assert controller.use_selected()
    assert window.state.recipe == Recipe.from_dict(trial["extra"]["recipe"])
    assert window.recipe_controls.mode_combo.currentText() == "dynamic-int8"
    window.state.undo_stack.undo()  # one undoable step
    assert window.state.recipe == Recipe()


def test_stop_ends_the_search_and_keeps_what_it_found(window, qtbot):
    controller = window.search
    controller.open()
    window.state.edit("test settings", recipe=Recipe(),
                      runtime=replace(window.state.runtime, runtime="onnxruntime", threads=1, repeats=60))
    with qtbot.waitSignal(controller.thread.finished, timeout=SEARCH_MS) as done:
        assert controller.start(max_trials=20)
        qtbot.waitUntil(lambda: len(controller.panel.plot.points) >= 1, timeout=SEARCH_MS)
        controller.panel.stop_button.click()
    state = done.args[0]
    assert state["status"] == "stopped" and state["trials"]
    assert window.runs.store.get_study(state["study_id"]).status == "stopped"
    assert controller.panel.start_button.isEnabled() and "stopped" in controller.panel.status.text()
    assert controller.panel.resume_button.isEnabled()
    assert controller.panel.resume_button.text() == f"Resume {state['study_id']}"

    screened = sum(1 for t in state["trials"] if t["phase"] == "screen")
    with qtbot.waitSignal(controller.thread.finished, timeout=SEARCH_MS) as done:
        assert controller.resume(max_trials=1)  # one more screening trial
        assert not controller.panel.resume_button.isEnabled()
    resumed = done.args[0]
    assert resumed["study_id"] == state["study_id"]  # the same stored search, continued
    assert sum(1 for t in resumed["trials"] if t["phase"] == "screen") == screened + 1
    assert resumed["status"] == "done" and not controller.panel.resume_button.isEnabled()
