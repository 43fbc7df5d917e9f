"""The main window: model view in the middle, controls docked left, results docked below, menus, shortcuts.

Opening models, recent files, drag and drop, themes and saved layout live here; the model/controls wiring
lives in ModelController and running jobs in RunController.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QProgressBar,
                               QPushButton, QScrollArea, QTabWidget, QVBoxLayout, QWidget)

from accelstudio import __version__
from accelstudio.app.views import dialogs
from accelstudio.app.control.artifacts_menu import ArtifactsController
from accelstudio.app.control.search_controller import SearchController
from accelstudio.app.views.controls import RecipeControls
from accelstudio.app.views.data_panel import DataPanel, remember_data, remembered_data
from accelstudio.app.control.help_controller import HelpController
from accelstudio.app.control.lesson_controller import LessonController
from accelstudio.app.control.model_controller import ModelController
from accelstudio.app.control.sensitivity_controller import SensitivityController
from accelstudio.app.control.presentation import PresentationController
from accelstudio.app.control.reopen import ReopenController
from accelstudio.app.control.session_controller import SessionController
from accelstudio.app.control.training_controller import TrainingController
from accelstudio.app.views.model_view import ModelView
from accelstudio.app.views.graph_view import GraphView
from accelstudio.app.control.graph_controller import GraphController
from accelstudio.app.views.recovery_controls import model_kind
from accelstudio.app.views.profile_view import ProfileView
from accelstudio.app.views.results_panel import ResultsPanel
from accelstudio.app.control.run_controller import RunController
from accelstudio.app.views.runtime_panel import RuntimePanel
from accelstudio.app.bridges.model_loader import LoadedModel
from accelstudio.core.data.settings import DataSettings
from accelstudio.app.plots.theme import THEME_MODES, ThemeManager
from accelstudio.core.errors import TrustRequiredError
from accelstudio.core.model.examples import DEFAULT_EXAMPLE, list_examples, resources_dir

MODEL_FILTER = "Models (*.onnx *.pt *.pth *.pt2 *.safetensors *.ts);;All files (*)"
MAX_RECENT = 10
EXAMPLE_PREFIX = "example:"
RESULTS_SHARE = 0.48  # of the window height, for the results dock: plots and at least four table rows
ICON_FILES = ("accelstudio.svg", "accelstudio-256.png", "accelstudio-128.png", "accelstudio-64.png")


def default_settings() -> QSettings:
    """The app's settings: an INI file under $ACCELSTUDIO_HOME/config when that is set (nothing is written
    outside AccelStudio's home then), else the platform's usual place for AccelStudio's settings."""
    from accelstudio.core.paths import settings_file

    path = settings_file()
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings("AccelStudio", "AccelStudio")


def app_icon() -> QIcon:
    """AccelStudio's icon from resources/icons (SVG and PNG sizes); a null icon when none can be read."""
    icon = QIcon()
    folder = resources_dir() / "icons"
    for name in ICON_FILES:
        path = folder / name
        if path.is_file():
            icon.addFile(str(path))
    return icon


DEFAULT_SIZE = (1500, 950)


def default_size() -> tuple[int, int]:
    """The window's first size: DEFAULT_SIZE, cut to the screen's free area on a real screen (1280x720 and up
    fit; the offscreen platform's nominal 800x600 screen is no screen at all and is ignored)."""
    screen = QApplication.primaryScreen()
    if screen is None or QApplication.platformName() == "offscreen":
        return DEFAULT_SIZE
    free = screen.availableGeometry()
    return min(DEFAULT_SIZE[0], free.width()), min(DEFAULT_SIZE[1], free.height())


class MainWindow(QMainWindow):
    """AccelStudio's window. `settings` holds geometry, layout, theme and recent files."""

    model_loaded = Signal(object)  # LoadedModel, after the views show it

    def __init__(self, settings: QSettings | None = None, store=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("AccelStudio")
        self.setWindowIcon(app_icon())
        self.settings = settings if settings is not None else default_settings()
        self.theme = ThemeManager(QApplication.instance(), str(self.settings.value("theme", "system")), self)
        self.model_view = ModelView()
        self.recipe_controls = RecipeControls()
        self.runtime_panel = RuntimePanel()
        self.models = ModelController(self.model_view, self.recipe_controls, self.runtime_panel, self)
        self.state = self.models.state
        self.data_panel = DataPanel(self.models.runner)
        self.results = ResultsPanel()
        self.profile_view = ProfileView()
        self.runs = RunController(self, self.state, self.results, store)
        self.artifacts = ArtifactsController(self, self.results, self.models.runner, self.settings)
        self.graph_view = GraphView()
        self.graph = GraphController(self.graph_view, self.models, self.model_view, self.results, self.runs, self)
        self._closed = False
        self._build_central()
        self.lessons, self.sessions = LessonController(self), SessionController(self)
        self.training = TrainingController(self, busy_elsewhere=self.lessons.is_busy)
        self.sensitivity = SensitivityController(self)
        self.search = SearchController(self)
        self.presentation = PresentationController(self)
        self.help = HelpController(self)
        self.reopen = ReopenController(self)
        self._build_status_bar()
        self._build_menus()
        self._connect()
        self.setAcceptDrops(True)
        self.resize(*default_size())
        self._size_docks()
        self._docks_sized = self._restore_layout()
        self.presentation.restore()
        self.theme.changed.connect(self.refresh_plot_colors)
        self.refresh_plot_colors()
        self.models.start()

    # -- construction ----------------------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.central_tabs = QTabWidget(objectName="centralTabs")
        self.central_tabs.addTab(self.model_view, "Layers")
        self.central_tabs.addTab(self.graph_view, "Graph")
        # the tab bar may take its height from the pages' spare room: the window's minimum stays as it was
        self.central_tabs.setMinimumHeight(self.model_view.minimumSizeHint().height())
        self.setCentralWidget(self.central_tabs)
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.addWidget(self.recipe_controls)
        layout.addWidget(self.runtime_panel)
        layout.addWidget(self.data_panel)
        layout.addStretch(1)
        scroll = QScrollArea(objectName="controlsScroll")
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.run_button = QPushButton("Run  (F5)", objectName="runButton")
        self.run_button.setToolTip("Apply the recipe and measure it in a separate worker process")
        self.run_button.setMinimumHeight(32)
        pinned = QWidget()  # Run stays in view below the scrolling controls, whatever warnings they show
        pinned_layout = QVBoxLayout(pinned)
        pinned_layout.setContentsMargins(0, 0, 0, 4)
        pinned_layout.addWidget(scroll, 1)
        pinned_layout.addWidget(self.run_button)
        self.controls_dock = self._dock("Controls", "controlsDock", pinned, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.controls_dock.setMinimumWidth(360)
        self.results_dock = self._dock("Results", "resultsDock", self.results, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.profile_dock = self._dock("Profile", "profileDock", self.profile_view, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.results_dock, self.profile_dock)
        self.profile_dock.hide()  # View > Profile: its tab bar would push a 720-pixel screen's window past it
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self, objectName=name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.stage_label = QLabel(objectName="stageLabel")
        self.progress_bar = QProgressBar(objectName="jobProgress")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setFixedWidth(220)
        self.progress_bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel (Esc)", objectName="cancelButton")
        for widget in (self.stage_label, self.progress_bar, self.cancel_button, self.artifacts.usage_label):
            bar.addPermanentWidget(widget)
        self.runs.attach_status(self.stage_label, self.progress_bar, self.cancel_button, self.run_button)

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work even when the menu bar is hidden
        return action

    def _build_menus(self) -> None:
        menu = self.menuBar().addMenu("&File")
        self.open_action = self._action("&Open model…", self.open_dialog, QKeySequence.StandardKey.Open,
                                        "Open an ONNX, TorchScript, torch.export or weights file")
        menu.addAction(self.open_action)
        self.recent_menu = menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.examples_menu = menu.addMenu("&Examples")
        for info in list_examples():
            for backend, label in (("torch", "PyTorch"), ("onnx", "ONNX")):
                action = self.examples_menu.addAction(f"{info.title} — {label}")
                action.setToolTip(info.description)
                action.triggered.connect(lambda _=False, n=info.name, b=backend: self.open_model(
                    EXAMPLE_PREFIX + n, backend=b))
        menu.addSeparator()
        for action in self.results.export_actions():
            menu.addAction(action)
        menu.addSeparator()
        self.sessions.fill_menu(menu)
        menu.addSeparator()
        menu.addAction(self._action("&Quit", self.close, QKeySequence("Ctrl+Q")))
        menu = self.menuBar().addMenu("&Edit")
        self.undo_action = self.state.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
        self.redo_action = self.state.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for action in (self.undo_action, self.redo_action):
            menu.addAction(action)
            self.addAction(action)
        menu = self.menuBar().addMenu("&View")
        menu.addAction(self.controls_dock.toggleViewAction())
        menu.addAction(self.results_dock.toggleViewAction())
        menu.addAction(self.profile_dock.toggleViewAction())
        menu.addAction(self.lessons.dock.toggleViewAction())
        menu.addAction(self.training.dock.toggleViewAction())
        menu.addAction(self.search.dock.toggleViewAction())
        theme_menu = menu.addMenu("&Theme")
        group = QActionGroup(self)
        self.theme_actions = {}
        for mode in THEME_MODES:
            action = theme_menu.addAction(mode.capitalize())
            action.setCheckable(True)
            action.setChecked(mode == self.theme.mode)
            action.triggered.connect(lambda _=False, m=mode: self.set_theme(m))
            group.addAction(action)
            self.theme_actions[mode] = action
        self.presentation.fill_menu(menu)
        menu = self.menuBar().addMenu("&Run")
        self.run_action = self._action("&Run", self.runs.start_run, QKeySequence("F5"),
                                       "Measure the current recipe in a worker process")
        self.cancel_action = self._action("&Cancel run", self.runs.cancel, QKeySequence("Esc"))
        menu.addAction(self.run_action)
        menu.addAction(self.cancel_action)
        self.runs.attach_actions(self.run_action, self.cancel_action)
        self.sensitivity.fill_menu(menu)
        self.search.fill_menu(menu)
        menu.addSeparator()
        self.artifacts.fill_menu(menu)
        self.artifacts.attach_table(self.results.table, [self.results.io.save_model])
        menu = self.menuBar().addMenu("&Help")
        self.help.fill_menu(menu)
        self.lessons.fill_menu(menu.addMenu("&Lessons"))
        menu.addAction(self._action("&About AccelStudio", lambda: dialogs.show_about(self, __version__)))

    def _connect(self) -> None:
        self.models.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.models.loader.loaded.connect(self._model_loaded)
        self.models.loader.failed.connect(self._load_failed)
        self.models.loader.started.connect(lambda ref: self.statusBar().showMessage(f"Opening {_short(ref)}…"))
        self.run_button.clicked.connect(self.runs.start_run)
        self.cancel_button.clicked.connect(self.runs.cancel)
        self.results.restore_requested.connect(self.runs.restore)
        self.results.selection_changed.connect(self._show_profile)
        self.state.model_changed.connect(lambda loaded: self.recipe_controls.set_model_kind(model_kind(loaded)))
        self.runs.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.data_panel.data_edited.connect(lambda data, text: self.state.edit(text, data=data))
        self.state.data_changed.connect(self._data_changed)
        self.runs.data_problem = self.data_panel.problem
        self.runs.run_finished.connect(self.artifacts.run_finished)
        self.artifacts.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.graph.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.artifacts.refresh_usage()
        if self.runs.store_problem:
            self.statusBar().showMessage(self.runs.store_problem)

    def _show_profile(self, run_ids: list) -> None:
        run = self.results.run(run_ids[0]) if run_ids else None
        self.profile_view.show_runs(run, self.results.baseline_for(run) if run is not None else None)
        if run is not None and "profile" in run.metrics and not self.profile_dock.isVisible():
            self.statusBar().showMessage(f"Run {run.run_id} has a per-operator profile: View > Profile", 8000)

    # -- models ---------------------------------------------------------------------------------------------
    def open_default(self) -> None:
        """Open the default bundled example (torch form, so structured pruning works)."""
        self.open_model(EXAMPLE_PREFIX + DEFAULT_EXAMPLE, backend="torch")

    def open_model(self, ref: str, *, backend: str | None = None, trust: bool = False) -> None:
        """Start loading a model in the background; the views update when it is ready."""
        self.models.loader.load(ref, trust=trust, backend=backend)

    def open_dialog(self) -> None:
        """File > Open."""
        path = self.ask_open_path()
        if path:
            self.open_model(path)

    def ask_open_path(self) -> str:
        """The file chooser (a method so tests can replace it)."""
        start = str(self.settings.value("lastDir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start, MODEL_FILTER)
        return path

    def _model_loaded(self, loaded: LoadedModel) -> None:
        switched = self.state.model is not None and self.state.model.ref != loaded.ref
        self.data_panel.set_model(loaded)
        resets = self.state.set_model(loaded, data=self._remembered_data(loaded), kind=model_kind(loaded))
        self.data_panel.show_data(self.state.data)
        if not loaded.ref.startswith(EXAMPLE_PREFIX):
            self.add_recent(loaded.ref)
            self.settings.setValue("lastDir", str(Path(loaded.ref).parent))
        self.setWindowTitle(f"{loaded.title} — AccelStudio")
        n = len(loaded.summary.layers)
        reset_text = ("; reset: " + "; ".join(resets)) if resets else ""
        self.statusBar().showMessage(f"Opened {loaded.title}: {n} layers with weights{reset_text}",
                                     15000 if resets else 6000)
        self.results.set_current_model(name=loaded.summary.name, path=None if loaded.ref.startswith(
            EXAMPLE_PREFIX) else loaded.ref)
        if switched:  # the plots, verdict and baseline choice belonged to the previous model's runs
            self.results.set_baseline_hint(None)
            self.results.table.clearSelection()
        self.runs.model_ready()
        self.model_loaded.emit(loaded)

    def _load_failed(self, ref: str, backend, exc: BaseException, trace: str) -> None:
        if self._closed:
            return
        if isinstance(exc, TrustRequiredError):
            if dialogs.ask_trust(self, exc.path, exc.detail):
                self.open_model(ref, backend=backend, trust=True)
            else:
                self.statusBar().showMessage(f"Not opened: {_short(ref)} was not trusted", 8000)
            return
        self.statusBar().showMessage(f"Could not open {_short(ref)}", 8000)
        dialogs.show_error(self, "Could not open the model", exc, trace)

    # -- data choices, remembered per model ---------------------------------------------------------------
    def _remembered_data(self, loaded: LoadedModel) -> DataSettings:
        return remembered_data(self.settings, loaded)

    def _data_changed(self, data: DataSettings) -> None:
        self.data_panel.show_data(data)
        if self.state.model is not None:
            remember_data(self.settings, self.state.model.ref, data)

    # -- recent files -------------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        """Most recent first, at most 10."""
        value = self.settings.value("recentFiles", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [str(v) for v in items][:MAX_RECENT]

    def add_recent(self, path: str) -> None:
        """Put `path` first in File > Open recent."""
        path = str(Path(path).resolve())
        items = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("recentFiles", items[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = self.recent_files()
        for path in items:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_model(p))
        if not items:
            self.recent_menu.addAction("(none yet)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", lambda: self.settings.setValue("recentFiles", []))

    # -- drag and drop ------------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if _dropped_file(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        path = _dropped_file(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.open_model(path)

    # -- theme and layout ---------------------------------------------------------------------------------
    def set_theme(self, mode: str) -> None:
        """View > Theme: 'system', 'light' or 'dark' (remembered)."""
        self.theme.set_mode(mode)
        self.settings.setValue("theme", mode)
        self.theme_actions[mode].setChecked(True)
        self.refresh_plot_colors()

    def refresh_plot_colors(self, *_args) -> None:
        """Restyle the model view's plots for the theme and plot scale."""
        self.model_view.apply_colors(self.theme.colors())

    def _size_docks(self) -> None:
        """Default dock sizes for the current window size."""
        self.resizeDocks([self.results_dock], [int(self.height() * RESULTS_SHARE)], Qt.Orientation.Vertical)
        self.resizeDocks([self.controls_dock], [380], Qt.Orientation.Horizontal)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Without a saved layout, size the docks for the size the window is first shown at (a small screen
        may have shrunk it), so the model view keeps its share."""
        super().showEvent(event)
        if not self._docks_sized:
            self._docks_sized = True
            self._size_docks()

    def _restore_layout(self) -> bool:
        """Geometry, dock layout and splitters as saved; True when a dock layout was restored."""
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("windowState")
        if state is not None:
            self.restoreState(state)
        for split in (self.model_view.main_split, self.model_view.plot_split):
            saved = self.settings.value(f"split/{split.objectName()}")
            if saved is not None:
                split.restoreState(saved)
        return state is not None

    def _save_layout(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("windowState", self.saveState())
        for split in (self.model_view.main_split, self.model_view.plot_split):
            self.settings.setValue(f"split/{split.objectName()}", split.saveState())
        self.settings.sync()

    def closeEvent(self, event) -> None:  # noqa: N802
        """Save the layout, stop any job and join every background thread."""
        if not self._closed:
            self._closed = True
            self._save_layout()
            self.presentation.shutdown()
            self.lessons.shutdown()
            self.sensitivity.shutdown()
            self.search.shutdown()
            self.runs.shutdown()
            self.models.shutdown()
        super().closeEvent(event)


def _dropped_file(mime) -> str | None:
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and Path(url.toLocalFile()).is_file():
            return url.toLocalFile()
    return None


def _short(ref: str) -> str:
    return ref if ref.startswith(EXAMPLE_PREFIX) else Path(ref).name
