"""The Data group: what a run evaluates, calibrates and trains on, and the input shapes of dynamic dimensions.

Like the other control groups it holds no settings of its own: `show_data` writes a DataSettings into the
widgets, each user change emits `data_edited(settings, description)`, and the window turns that into an undoable
edit. Chosen files are counted and checked off the GUI thread (core.data.data_probe); a bad file shows the data
loader's own error, naming the file, under the group, and `problem()` returns it so a run is not started.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QGroupBox, QLabel, QLineEdit, QVBoxLayout,
                               QWidget)

from accelstudio.core.data.settings import DataSettings

EXAMPLE_PREFIX = "example:"
DATA_FILTER = "NumPy archives (*.npz);;All files (*)"
ROLES = ("eval", "calib", "train")
ROLE_FIELDS = {"eval": "data", "calib": "calib_data", "train": "train_data"}
ROLE_TITLES = {"eval": "Evaluation data", "calib": "Calibration data", "train": "Training data"}
BADGE_STYLE = ("QLabel { background: #d55e00; color: white; border-radius: 3px; padding: 1px 6px; "
               "font-weight: bold; }")
ERROR_STYLE = "QLabel { color: #d55e00; }"
UNSET = 0  # a dimension left to the data (or, for the first one, the runtime's batch)


def shape_text(dims: tuple[int | None, ...]) -> str:
    """'?x3x224x224' for (None, 3, 224, 224): '?' marks a dynamic dimension not chosen yet."""
    return "x".join("?" if not d else str(d) for d in dims)


def parse_shape(text: str, declared: tuple[int | None, ...]) -> tuple[int, ...]:
    """Dims from '1x3x640x640' ('?' keeps a dimension open, as 0). Raises ValueError naming the problem: a
    different rank, a number below 1, or a fixed dimension of the model changed."""
    parts = [p.strip() for p in text.lower().replace("×", "x").replace(",", "x").split("x")]
    if len(parts) != len(declared):
        raise ValueError(f"expected {len(declared)} dimensions like {shape_text(declared)}, got {len(parts)}")
    dims = []
    for axis, (part, want) in enumerate(zip(parts, declared)):
        value = UNSET if part in ("?", "") else _positive(part)
        if want is not None and value not in (UNSET, want):
            raise ValueError(f"dimension {axis} is fixed at {want} in the model")
        dims.append(value if want is None else want)
    return tuple(dims)


def _positive(part: str) -> int:
    if not part.isdigit() or int(part) < 1:
        raise ValueError(f"'{part}' is not a positive whole number (use ? to leave it open)")
    return int(part)


def spec_input_shapes(data: DataSettings, batch: int) -> dict[str, list[int]]:
    """JobSpec.input_shapes: inputs whose every dimension is known (an open first dimension takes the
    runtime's batch); inputs with other open dimensions are left to the data or the run's documented guesses."""
    shapes = {}
    for name, dims in data.input_shapes:
        filled = [batch if i == 0 and d == UNSET else d for i, d in enumerate(dims)]
        if dims and all(d != UNSET for d in filled):
            shapes[name] = filled
    return shapes


def model_inputs(loaded) -> tuple:
    """The declared InputSpecs of a LoadedModel (None marks a dynamic dimension)."""
    inputs = getattr(loaded.handle, "inputs", None)
    return tuple(inputs) if inputs else tuple(getattr(loaded.summary, "inputs", ()) or ())


def _data_key(ref: str) -> str:
    return "modelData/" + hashlib.sha1(ref.encode("utf-8")).hexdigest()[:16]


def remember_data(settings, ref: str, data: DataSettings) -> None:
    """Keep the data chosen for the model `ref` in the app's QSettings."""
    settings.setValue(_data_key(ref), json.dumps(data.to_dict()))


def remembered_data(settings, loaded) -> DataSettings:
    """The data last chosen for this model, without files that are gone or inputs it lacks (defaults when
    nothing usable was kept)."""
    text = settings.value(_data_key(loaded.ref))
    try:
        data = DataSettings.from_dict(json.loads(str(text))) if text else DataSettings()
    except (ValueError, TypeError, AttributeError):
        return DataSettings()  # an unreadable entry: start from the defaults
    exists = lambda p: p if p and Path(p).exists() else None  # noqa: E731
    names = {spec.name for spec in model_inputs(loaded)}
    return DataSettings(exists(data.data), exists(data.calib_data), exists(data.train_data),
                        tuple((n, d) for n, d in data.input_shapes if n in names))


class DataPanel(QGroupBox):
    """Evaluation, calibration and training data and input shapes; emits `data_edited(DataSettings, text)`."""

    data_edited = Signal(object, str)

    def __init__(self, runner=None, parent=None):
        super().__init__("Data", parent, objectName="dataGroup")
        self._runner = runner
        self._data = DataSettings()
        self._example = False
        self._inputs: tuple = ()
        self._num_classes = None
        self._probes: dict[tuple[str, str], str] = {}  # (role, path) -> description or "!error"
        self._array_shapes: dict[str, dict] = {}  # path -> {array name: shape} of a probed .npz
        self._shape_error = ""
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)
        self.combos: dict[str, QComboBox] = {}
        self.sources: dict[str, QLabel] = {}
        self.badge = QLabel("random inputs: fidelity only", objectName="syntheticBadge")
        self.badge.setStyleSheet(BADGE_STYLE)
        self.badge.setToolTip("No data set is chosen: the model is measured on synthesized random inputs, so "
                              "only agreement with the original model (fidelity) is measured, not accuracy")
        for role, label in (("eval", "Evaluate on"), ("calib", "Calibrate on"), ("train", "Train on")):
            combo = QComboBox(objectName=f"{role}DataCombo")
            combo.activated.connect(lambda _i, r=role: self._combo_activated(r))
            source = QLabel(objectName=f"{role}DataSource", wordWrap=True)
            source.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(label, combo)
            form.addRow("", source)
            if role == "eval":
                form.addRow("", self.badge)
            self.combos[role], self.sources[role] = combo, source
        self.shapes_box = QWidget(objectName="inputShapes")
        self.shapes_form = QFormLayout(self.shapes_box)
        self.shapes_form.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.shapes_box)
        self.shape_edits: dict[str, QLineEdit] = {}
        self.warning = QLabel(objectName="dataWarning", wordWrap=True)
        self.warning.setStyleSheet(ERROR_STYLE)
        self.warning.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.warning)
        self.set_model(None)

    # -- model and state -> widgets ------------------------------------------------------------------------
    def set_model(self, loaded) -> None:
        """The open model (a LoadedModel or None): which defaults exist and which inputs take shapes."""
        self._example = bool(loaded is not None and str(loaded.ref).startswith(EXAMPLE_PREFIX))
        self._inputs = model_inputs(loaded) if loaded is not None else ()
        self._num_classes = getattr(loaded.handle, "num_classes", None) if loaded is not None else None
        self._example_name = str(loaded.ref)[len(EXAMPLE_PREFIX):] if self._example else ""
        self._probes.clear()
        self._array_shapes.clear()
        defaults = {"eval": "The example's test set" if self._example else "Synthesized random inputs",
                    "calib": "The example's calibration split" if self._example else "Split off the evaluation data",
                    "train": "The example's training split" if self._example else "None (recovery needs a file)"}
        for role, combo in self.combos.items():
            combo.clear()
            combo.addItem(defaults[role], "default")
            combo.addItem("A .npz file…", "file")
            if role == "eval":
                combo.addItem("An image folder…", "folder")
        self._build_shape_rows()
        self.show_data(self._data)

    def _build_shape_rows(self) -> None:
        while self.shapes_form.rowCount():
            self.shapes_form.removeRow(0)
        self.shape_edits = {}
        if not self._inputs:
            return
        self.shapes_form.addRow(QLabel("<b>Input shapes</b> (? = dynamic: batch from Runtime, others from "
                                       "the data, else guessed)", wordWrap=True))
        for spec in self._inputs:
            edit = QLineEdit(objectName=f"shape_{spec.name}")
            dynamic = [str(i) for i, d in enumerate(spec.shape) if d is None]
            edit.setPlaceholderText(shape_text(spec.shape))
            edit.setToolTip(f"Declared {shape_text(spec.shape)} ({spec.dtype})"
                            + (f"; dynamic dimensions: {', '.join(dynamic)}" if dynamic else "; all fixed"))
            edit.setReadOnly(not dynamic)
            edit.editingFinished.connect(lambda n=spec.name: self._shape_edited(n))
            self.shapes_form.addRow(spec.name + (" *" if dynamic else ""), edit)
            self.shape_edits[spec.name] = edit

    def show_data(self, data: DataSettings) -> None:
        """Write `data` into the widgets (no edit is emitted) and count/check the chosen files."""
        self._data = data
        for role in ROLES:
            path = getattr(data, ROLE_FIELDS[role])
            kind = "default" if not path else ("folder" if role == "eval" and Path(path).is_dir() else "file")
            combo = self.combos[role]
            combo.setCurrentIndex(max(combo.findData(kind), 0))
            self._probe(role, path)
        chosen = dict(data.input_shapes)
        for spec in self._inputs:
            self.shape_edits[spec.name].setText(shape_text(chosen.get(spec.name, spec.shape)))
        self._shape_error = ""
        self._refresh_labels()

    # -- counting and checking files -----------------------------------------------------------------------
    def _probe(self, role: str, path: str | None) -> None:
        target = path or self._default_file(role)
        if target is None or (role, target) in self._probes:
            return
        self._probes[(role, target)] = "counting…"
        from accelstudio.core.data.data_probe import probe_data

        inputs = self._inputs if path else ()  # the bundled files are known to fit their example
        need_labels = role == "train" and bool(path)
        job = lambda: probe_data(target, inputs, self._num_classes, need_labels)  # noqa: E731
        done = lambda probe: self._probed(role, target, probe.describe(), probe.shapes)  # noqa: E731
        failed = lambda exc, _trace: self._probed(role, target, "!" + str(exc))  # noqa: E731
        if self._runner is None:
            try:
                done(job())
            except Exception as exc:  # noqa: BLE001 - any reading problem is shown, never raised
                failed(exc, "")
        else:
            self._runner.submit(f"data-probe-{role}", job, done, failed)

    def _default_file(self, role: str) -> str | None:
        if not self._example:
            return None
        from accelstudio.core.model.examples import get_example

        info = get_example(self._example_name)
        return {"eval": str(info.data_path), "calib": str(info.calib_path)}.get(role)

    def _probed(self, role: str, path: str, text: str, shapes: dict | None = None) -> None:
        self._probes[(role, path)] = text
        if shapes:
            self._array_shapes[path] = shapes
        self._refresh_labels()

    def _refresh_labels(self) -> None:
        for role in ROLES:
            self.sources[role].setText(self._source_text(role))
        self.badge.setVisible(not self._example and not self._data.data)
        self.warning.setText("<br>".join(self._warnings()))
        self.warning.setVisible(bool(self.warning.text()))

    def _source_text(self, role: str) -> str:
        path = getattr(self._data, ROLE_FIELDS[role])
        found = self._probes.get((role, path or self._default_file(role) or ""), "")
        if found.startswith("!"):
            return f"{Path(path).name if path else ''}: cannot be used (see below)"
        if path:
            return f"{found or Path(path).name} — {path}"
        if role == "eval":
            return found or "random inputs of the declared shapes (fixed seed)"
        if role == "calib":
            return (found + " (training split)") if found else "a part of the evaluation data"
        return "the example's own training split" if self._example else "none chosen"

    def _errors(self) -> list[str]:
        """What makes the chosen data unusable: a file the data loader refuses, a shape that cannot be parsed."""
        notes = [text[1:] for (role, path), text in self._probes.items()
                 if text.startswith("!") and path == getattr(self._data, ROLE_FIELDS[role])]
        return notes + ([self._shape_error] if self._shape_error else [])

    def _warnings(self) -> list[str]:
        """Errors, then advice said loudly: evaluation data reused for calibration or training, and input
        shapes that contradict the evaluation data."""
        data = self._data
        notes = self._errors() + self._shape_mismatches()
        same = lambda a, b: bool(a and b) and Path(a).resolve() == Path(b).resolve()  # noqa: E731
        if same(data.calib_data, data.data):
            notes.append("Calibrating on the evaluation set: the measured accuracy will look better than it is.")
        if same(data.train_data, data.data):
            notes.append("Training on the evaluation set: the measured accuracy will look better than it is.")
        return notes

    def _shape_mismatches(self) -> list[str]:
        """Chosen input shapes that differ from the evaluation file's arrays (outside the sample axis)."""
        arrays = self._array_shapes.get(self._data.data or "", {})
        notes = []
        for name, dims in self._data.input_shapes:
            found = arrays.get(name) or (arrays.get("x") if len(self._inputs) == 1 else None)
            if not found or len(found) != len(dims):
                continue
            differ = [i for i in range(1, len(dims)) if dims[i] != UNSET and dims[i] != found[i]]
            if differ:
                notes.append(f"Input shape of '{name}' asks {shape_text(dims)}, but the evaluation data holds "
                             f"samples of {shape_text((0, *found[1:]))}; change one of them.")
        return notes

    def problem(self) -> str:
        """Why the chosen data cannot be used ('' when it can): the data loader's message, naming the file."""
        return "; ".join(self._errors())

    # -- widgets -> edits ----------------------------------------------------------------------------------
    def ask_path(self, role: str, folder: bool) -> str | None:
        """Ask for a data file or folder (tests replace this); None when cancelled."""
        title = f"Choose the {ROLE_TITLES[role].lower()}"
        if folder:
            return QFileDialog.getExistingDirectory(self, title + " (one sub-folder per class)") or None
        path, _ = QFileDialog.getOpenFileName(self, title, "", DATA_FILTER)
        return path or None

    def choose(self, role: str, kind: str) -> None:
        """Pick the source of `role` ('eval', 'calib', 'train'): 'default', 'file' or 'folder' (asks for it)."""
        path = None
        if kind in ("file", "folder"):
            path = self.ask_path(role, kind == "folder")
            if not path:
                self.show_data(self._data)  # cancelled: show the previous choice again
                return
            path = str(Path(path).resolve())
        new = replace(self._data, **{ROLE_FIELDS[role]: path})
        if new != self._data:
            self.data_edited.emit(new, ROLE_TITLES[role])

    def _combo_activated(self, role: str) -> None:
        self.choose(role, self.combos[role].currentData())

    def _shape_edited(self, name: str) -> None:
        spec = next(s for s in self._inputs if s.name == name)
        try:
            dims = parse_shape(self.shape_edits[name].text(), spec.shape)
        except ValueError as exc:
            self._shape_error = f"Input shape of '{name}': {exc}"
            self._refresh_labels()
            return
        self._shape_error = ""
        shapes = {**dict(self._data.input_shapes), name: dims}
        if dims == tuple(d or UNSET for d in spec.shape):
            shapes.pop(name)  # as declared: nothing chosen
        new = replace(self._data, input_shapes=tuple(sorted(shapes.items())))
        self._refresh_labels()
        if new != self._data:
            self.data_edited.emit(new, f"Input shape of {name}")
