"""Is the window responsive? Start-up to plots, the longest event-loop stall during a real job, opening a big model.

The real main window runs offscreen (QT_QPA_PLATFORM=offscreen) in this process, with its settings and run store
in a temporary folder:

1. start-up: from before QApplication is created (and, when run as a script, from process start) until the
   default example is loaded, its background histogram has arrived and the model view has been rendered;
2. stall: a 10 ms QTimer heartbeat runs while the window's Run action starts a real job (prune 30% +
   dynamic int8 through JobBridge and a worker process) until its result is shown; the longest gap between
   beats minus 10 ms is the longest time the GUI thread could not answer. Goal <= 50 ms;
3. big model: a ResNet-50-sized ONNX model (53 convolutions + 1 Gemm, ~25.5 M parameters, random weights,
   built with onnx.helper in a temporary folder, 102 MB) opened through File > Open (the file chooser answered
   with its path) until its table, plots and histogram are rendered. Goal <= 1 s, and no stall over 50 ms while
   it opens (parsing, checking, inspection and the histogram run off the GUI thread, the file is parsed tensor
   by tensor, the plots are drawn in separate turns). The recipe left from step 2 is then predicted on the new
   model in the background: the time until that lands is reported, and the heartbeat runs through it;
4. a real graph: onnx's own light_resnet50.onnx (weights made by ConstantOfShape nodes, 102 MB in memory),
   opened the same way, same goals.

Writes benchmarks/results/gui_responsiveness.json. Exits non-zero only on an error, never on a missed goal.
Usage: python benchmarks/gui_responsiveness.py [--quick] [--repeats 100]
"""

from __future__ import annotations

import time

T_IMPORT = time.perf_counter()  # before Qt and the app are imported (the script's own start)

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "gui_responsiveness"
GOAL_STALL_MS, GOAL_OPEN_S = 50.0, 1.0
HEARTBEAT_MS = 10
LOAD_TIMEOUT_S, RUN_TIMEOUT_S = 120.0, 600.0
RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (width, blocks, stride)


def process_age_s() -> float | None:
    """Seconds since this process started (from /proc; None elsewhere)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------------------------------- the big model

def build_resnet50_onnx(path: Path, width_div: int = 1, classes: int = 1000, seed: int = 0) -> dict:
    """Write a ResNet-50-shaped ONNX model (bottleneck blocks 3-4-6-3, no BatchNorm, random weights) and
    return {"convs", "gemms", "params"}. `width_div` > 1 divides every width (a small model for --quick)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    count = {"convs": 0, "gemms": 0, "params": 0}

    def weight(name: str, shape: tuple[int, ...]) -> str:
        fan_in = int(np.prod(shape[1:]))
        w = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        inits.append(numpy_helper.from_array(w, name))
        count["params"] += w.size
        return name

    def conv(x: str, name: str, cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> str:
        w = weight(f"{name}.weight", (cout, cin, k, k))
        b = numpy_helper.from_array(np.zeros(cout, np.float32), f"{name}.bias")
        inits.append(b)
        count["params"] += cout
        count["convs"] += 1
        nodes.append(helper.make_node("Conv", [x, w, b.name], [f"{name}.out"], name=name, kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[k // 2] * 4))
        if not relu:
            return f"{name}.out"
        nodes.append(helper.make_node("Relu", [f"{name}.out"], [f"{name}.relu"], name=f"{name}.relu"))
        return f"{name}.relu"

    stem = 64 // width_div
    x = conv("input", "conv1", 3, stem, 7, 2)
    nodes.append(helper.make_node("MaxPool", [x], ["pool1"], name="pool1", kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 1, 1, 1]))
    x, cin = "pool1", stem
    for s, (width, blocks, stride) in enumerate(RESNET50_STAGES, start=1):
        width //= width_div
        for b in range(blocks):
            name, st = f"layer{s}.{b}", stride if b == 0 else 1
            h = conv(x, f"{name}.conv1", cin, width, 1)
            h = conv(h, f"{name}.conv2", width, width, 3, st)
            h = conv(h, f"{name}.conv3", width, width * 4, 1, relu=False)
            short = conv(x, f"{name}.downsample", cin, width * 4, 1, st, relu=False) if b == 0 else x
            nodes.append(helper.make_node("Add", [h, short], [f"{name}.sum"], name=f"{name}.add"))
            nodes.append(helper.make_node("Relu", [f"{name}.sum"], [f"{name}.out"], name=f"{name}.relu"))
            x, cin = f"{name}.out", width * 4
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1))
    fc_w = weight("fc.weight", (classes, cin))
    inits.append(numpy_helper.from_array(np.zeros(classes, np.float32), "fc.bias"))
    count["params"] += classes
    count["gemms"] += 1
    nodes.append(helper.make_node("Gemm", ["flat", fc_w, "fc.bias"], ["logits"], name="fc", transB=1))
    graph = helper.make_graph(nodes, "resnet50-shaped",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="accelstudio-bench")
    onnx.save_model(model, str(path))
    return count


# ------------------------------------------------------------------------------------------- measurements

class Heartbeat:
    """A 10 ms precise QTimer on the GUI thread; the gaps between its beats show how long the loop was busy.
    `label()` (optional) tells what the window was doing at each beat (the job stage)."""

    def __init__(self, interval_ms: int = HEARTBEAT_MS, label=None):
        from PySide6.QtCore import Qt, QTimer

        self.interval_ms = interval_ms
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._beat)
        self._label = label
        self.beats: list[float] = []
        self.labels: list[str] = []

    def _beat(self) -> None:
        self.beats.append(time.perf_counter())
        self.labels.append(self._label() if self._label else "")

    def start(self) -> None:
        self.beats.clear()
        self.labels.clear()
        self.timer.start()

    def stop(self) -> dict:
        """Stop and summarize: beats, the longest stall (gap - interval) in ms, where it happened, top gaps."""
        self.timer.stop()
        if len(self.beats) < 2:
            return {"beats": len(self.beats), "max_stall_ms": None}
        gaps = np.diff(self.beats) * 1000.0
        stalls = np.maximum(gaps - self.interval_ms, 0.0)
        order = np.argsort(stalls)[::-1][:5]
        return {"beats": len(self.beats), "duration_s": self.beats[-1] - self.beats[0],
                "max_stall_ms": float(stalls.max()), "p99_stall_ms": float(np.percentile(stalls, 99)),
                "stalls_over_50ms": int((stalls > GOAL_STALL_MS).sum()),
                "top_stalls": [{"ms": float(stalls[i]), "at_s": float(self.beats[i] - self.beats[0]),
                                "during": self.labels[i + 1] or self.labels[i]} for i in order]}


def wait_until(predicate, timeout_s: float) -> bool:
    """Run the event loop until predicate() is true (checked every 5 ms) or the timeout passes."""
    from PySide6.QtCore import QEventLoop, QTimer

    if predicate():
        return True
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: loop.quit() if predicate() else None)
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    timer.start()
    deadline.start(int(timeout_s * 1000))
    loop.exec()
    timer.stop()
    deadline.stop()
    return predicate()


def wait_shown(window, ref_check, timeout_s: float, with_prediction: bool = True) -> float | None:
    """Wait until the loaded model matches `ref_check`, its table, bar plots and histogram are shown (and, with
    `with_prediction`, the current recipe's pruning prediction has landed: the background runner is idle) and
    the model view has been rendered; the time that took, or None on timeout."""
    start = time.perf_counter()
    runner = window.models.runner

    def shown() -> bool:
        if window.state.model is None or not ref_check(window.state.model.ref) or window.model_view.plots_pending():
            return False
        if with_prediction:
            return window.models.is_settled()
        return not (runner.is_busy("load") or runner.is_busy("histogram"))

    if not wait_until(shown, timeout_s):
        return None
    window.model_view.grab()  # renders the table and the three plots now, as a paint would
    return time.perf_counter() - start


def startup(t_before_app: float, settings_path: Path):
    """Create the application and the window, open the default example, wait for its plots."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from accelstudio.app.main_window import MainWindow

    window = MainWindow(settings=QSettings(str(settings_path), QSettings.Format.IniFormat))
    window.show()
    window.open_default()
    if wait_shown(window, lambda ref: ref.startswith("example:"), LOAD_TIMEOUT_S) is None:
        raise RuntimeError("the default example did not load within the time limit")
    return app, window, time.perf_counter() - t_before_app


def job_stall(window, quick: bool, repeats: int) -> dict:
    """Press Run with a real recipe and keep the heartbeat going until the result is shown."""
    from accelstudio.core.recipe import PruneSpec, QuantSpec, Recipe

    state = window.state
    recipe = Recipe(prune=PruneSpec(amount=0.3), quantize=QuantSpec(mode="dynamic-int8", per_channel=True))
    runtime = replace(state.runtime, repeats=5 if quick else repeats, warmup=2 if quick else 10,
                      time_budget_s=0.5 if quick else 3.0)
    state.edit("benchmark settings", recipe=recipe, runtime=runtime)
    finished: list = []
    window.runs.run_finished.connect(finished.append)
    beat = Heartbeat(label=lambda: window.stage_label.text() if window.runs.is_running() else "idle/result")
    beat.start()
    wait_until(lambda: False, 0.2)  # a quiet stretch before pressing Run
    start = time.perf_counter()
    window.run_action.trigger()
    if not window.runs.is_running():
        beat.stop()
        raise RuntimeError("the Run action did not start a job")
    done = wait_until(lambda: bool(finished), RUN_TIMEOUT_S)
    job_s = time.perf_counter() - start
    wait_until(lambda: False, 0.5)  # the result is plotted and the run list refreshed
    summary = beat.stop()
    if not done:
        window.runs.cancel()
        raise RuntimeError(f"the job did not finish within {RUN_TIMEOUT_S:.0f} s")
    result = finished[0]
    return {**summary, "job_s": job_s, "status": result.status, "reason": result.reason,
            "recipe": recipe.describe(), "runtime": runtime.to_dict(), "p50_ms": result.metrics.get("p50_ms")}


def open_big(window, folder: Path, quick: bool) -> dict:
    """Build the ResNet-50-shaped model, open it with File > Open, wait for its plots."""
    path = folder / "resnet50-shaped.onnx"
    t0 = time.perf_counter()
    counts = build_resnet50_onnx(path, width_div=4 if quick else 1)
    build_s = time.perf_counter() - t0
    return {"build_s": build_s, **counts, **open_file(window, path)}


def light_resnet50() -> Path | None:
    """onnx's own ResNet-50 test graph (weights made by ConstantOfShape nodes), None when not installed."""
    import onnx

    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_resnet50.onnx"
    return path if path.is_file() else None


def open_file(window, path: Path) -> dict:
    """Open `path` with File > Open, wait for its plots; time and the heartbeat's stalls."""
    window.ask_open_path = lambda: str(path)  # the file chooser, answered
    beat = Heartbeat()
    beat.start()
    start = time.perf_counter()
    window.open_action.trigger()
    shown = wait_shown(window, lambda ref: ref == str(path), LOAD_TIMEOUT_S, with_prediction=False)
    open_s = time.perf_counter() - start if shown is not None else None
    # the recipe still set from the job (prune 30%) is predicted on the new model after its plots are shown
    predicted = wait_shown(window, lambda ref: ref == str(path), LOAD_TIMEOUT_S)
    predicted_s = time.perf_counter() - start if predicted is not None else None
    stalls = beat.stop()
    summary = window.state.model.summary if shown is not None else None
    return {"file": path.name, "file_bytes": path.stat().st_size,
            "layers_shown": len(summary.layers) if summary else None,
            "total_bytes": summary.total_bytes if summary else None,
            "open_to_plots_s": open_s, "open_to_recipe_prediction_s": predicted_s,
            "recipe": window.state.recipe.describe(), "stall_while_opening": stalls}


def _report_open_stall(opened: dict):
    """Print and judge the longest stall while a model opened (None when the heartbeat had too few beats)."""
    s = opened["stall_while_opening"]
    if s.get("max_stall_ms") is None:
        return None
    for top in s.get("top_stalls", [])[:2]:
        print(f"  stall {top['ms']:.1f} ms at {top['at_s']:.2f} s")
    return common.goal("  longest stall while opening it", s["max_stall_ms"], GOAL_STALL_MS, " ms", fmt=".1f")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short job and a ResNet-50 shape at 1/4 width")
    parser.add_argument("--repeats", type=int, default=100, help="timed calls of the job (default 100)")
    parser.add_argument("--results-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    folder = Path(tempfile.mkdtemp(prefix="accelstudio-gui-bench-"))
    saved_home = os.environ.get("ACCELSTUDIO_HOME")
    os.environ["ACCELSTUDIO_HOME"] = str(folder / "home")  # the run store of this benchmark, not the user's
    try:
        return run(args, folder)
    finally:
        if saved_home is None:
            os.environ.pop("ACCELSTUDIO_HOME", None)
        else:
            os.environ["ACCELSTUDIO_HOME"] = saved_home
        shutil.rmtree(folder, ignore_errors=True)


def run(args, folder: Path) -> int:
    """The three measurements, printed against their goals and written as JSON."""
    age_at_main = process_age_s() if __name__ == "__main__" else None
    info = common.header("GUI responsiveness (offscreen window, this process)")
    watch = common.LoadWatch()
    t_before_app = time.perf_counter()  # the header's imports are not the app's
    app, window, startup_s = startup(t_before_app, folder / "settings.ini")
    from_process = (age_at_main + (time.perf_counter() - T_IMPORT)) if age_at_main is not None else None
    try:
        print(f"start-up to the example's plots: {startup_s:.2f} s from before QApplication"
              + (f", {from_process:.2f} s from process start" if from_process else ""))
        job = job_stall(window, args.quick, args.repeats)
        watch.sample()
        print(f"job ({job['recipe']}) {job['status']} in {job['job_s']:.1f} s; heartbeat {job['beats']} beats")
        g_stall = common.goal("longest event-loop stall while the job ran", job["max_stall_ms"], GOAL_STALL_MS,
                              " ms", fmt=".1f")
        for s in job.get("top_stalls", [])[:3]:
            print(f"  stall {s['ms']:.1f} ms at {s['at_s']:.2f} s during: {s['during'][:90]}")
        big = open_big(window, folder, args.quick)
        watch.sample()
        print(f"ResNet-50-shaped ONNX: {big['convs']} conv + {big['gemms']} gemm layers, {big['params'] / 1e6:.1f} M "
              f"params, {big['file_bytes'] / 1e6:.0f} MB")
        g_open = common.goal("open through File > Open to plots drawn", big["open_to_plots_s"], GOAL_OPEN_S, " s",
                             fmt=".2f")
        print(f"  the carried-over recipe ({big['recipe']}) predicted on it after "
              f"{big['open_to_recipe_prediction_s'] or float('nan'):.2f} s")
        g_open_stall = _report_open_stall(big)
        light = light_resnet50()
        real = open_file(window, light) if light else None
        watch.sample()
        g_real = g_real_stall = None
        if real:
            print(f"onnx's light_resnet50.onnx: {real['layers_shown']} layers, {real['total_bytes'] / 1e6:.0f} MB "
                  f"in memory from a {real['file_bytes'] / 1e3:.0f} KB file")
            g_real = common.goal("open it to plots drawn", real["open_to_plots_s"], GOAL_OPEN_S, " s", fmt=".2f")
            g_real_stall = _report_open_stall(real)
    finally:
        window.close()
        app.processEvents()
    print(watch.summary())
    doc = {"quick": bool(args.quick), "goals": {"stall_ms_at_most": GOAL_STALL_MS, "open_big_s_at_most": GOAL_OPEN_S},
           "startup": {"to_plots_from_before_qapplication_s": startup_s, "to_plots_from_process_start_s": from_process},
           "job": job, "big_model": big, "light_resnet50": real,
           "result": {"stall": g_stall, "open_big": g_open, "open_big_stall": g_open_stall,
                      "open_light_resnet50": g_real, "open_light_resnet50_stall": g_real_stall},
           "qt_platform": os.environ.get("QT_QPA_PLATFORM"), "machine": info, "load_average": watch.record()}
    common.write_results(NAME, doc, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
