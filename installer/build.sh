#!/usr/bin/env bash
# Build the AccelStudio desktop bundle with PyInstaller, smoke-test the frozen binary, pack the tarball.
#
#   pip install -e .[build]        # once: PyInstaller
#   bash installer/build.sh        # build + smoke test + tarball (several minutes)
#   bash installer/build.sh --skip-build   # smoke-test and pack an existing installer/dist/AccelStudio
#
# Output: installer/dist/AccelStudio/ (run ./accelstudio) and
# installer/dist/AccelStudio-<version>-linux-<arch>.tar.gz. Exits non-zero when the build or any smoke check fails.
# PYTHON picks the interpreter whose packages get bundled (default: python3 on PATH, e.g. the active venv).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
GOAL_MB=800
SOURCE_ROOT="$PWD"
DIST="$PWD/installer/dist"
WORK="$PWD/installer/build"
BUNDLE="$DIST/AccelStudio"
EXE="$BUNDLE/accelstudio"
SKIP_BUILD=0
[[ "${1:-}" == "--skip-build" ]] && SKIP_BUILD=1

step() { printf '\n== [%4ds] %s\n' "$SECONDS" "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

VERSION="$("$PYTHON" -c 'import accelstudio; print(accelstudio.__version__)')" \
    || fail "cannot import accelstudio with $PYTHON; install the project first: pip install -e .[build]"
TARBALL="$DIST/AccelStudio-$VERSION-linux-$(uname -m).tar.gz"

# --- build -------------------------------------------------------------------------------------------------
if [[ $SKIP_BUILD == 0 ]]; then
    "$PYTHON" -c 'import PyInstaller' 2>/dev/null \
        || fail "PyInstaller is missing for $PYTHON; install it with: pip install -e .[build]"
    step "building the bundle with PyInstaller (accelstudio $VERSION; takes minutes)"
    mkdir -p "$WORK"
    rm -rf "$BUNDLE" "$TARBALL"
    if ! "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN --distpath "$DIST" --workpath "$WORK" \
            installer/accelstudio.spec > "$WORK/pyinstaller.log" 2>&1; then
        tail -n 40 "$WORK/pyinstaller.log" >&2
        fail "PyInstaller failed (full log: installer/build/pyinstaller.log)"
    fi
    BUILD_S=$SECONDS
    echo "built $BUNDLE in ${BUILD_S}s (log: $WORK/pyinstaller.log)"
fi
[[ -x "$EXE" ]] || fail "$EXE does not exist; run without --skip-build"

# --- smoke test --------------------------------------------------------------------------------------------
SMOKE_HOME="$(mktemp -d "${TMPDIR:-/tmp}/accelstudio-smoke.XXXXXX")"
trap 'rm -rf "$SMOKE_HOME"' EXIT
export QT_QPA_PLATFORM=offscreen ACCELSTUDIO_HOME="$SMOKE_HOME"
unset ACCELSTUDIO_STORE PYTHONPATH PYTHONHOME
EXE_ABS="$(cd "$BUNDLE" && pwd)/accelstudio"
cd "$SMOKE_HOME"  # nothing may come from the source tree

check_json() {  # check_json FILE PYTHON-EXPRESSION-ON-d DESCRIPTION
    "$PYTHON" - "$1" "$2" <<'PY' || fail "$3 (output: $1)"
import json, sys
d = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2], {"d": d})
if not ok:
    print(json.dumps({k: d.get(k) for k in ("status", "reason", "traceback") if k in d}, indent=1)[:3000])
sys.exit(0 if ok else 1)
PY
}

step "smoke: bundle contents"
for f in accelstudio.desktop accelstudio.png accelstudio.svg install-desktop-entry.sh accelstudio-mime.xml \
         _internal/accelstudio/resources/examples/digits-cnn/model.onnx _internal/accelstudio/resources/data/digits_split.npz \
         _internal/accelstudio/resources/icons/accelstudio.svg _internal/PySide6/Qt/plugins/platforms/libqoffscreen.so \
         _internal/PySide6/Qt/plugins/platforms/libqxcb.so _internal/PySide6/Qt/plugins/iconengines/libqsvgicon.so _internal/torch/bin/torch_shm_manager; do
    [[ -e "$BUNDLE/$f" ]] || fail "the bundle lacks $f"
done
for meta in "$SOURCE_ROOT"/resources/examples/*/meta.json; do  # every bundled example, with all its files
    example="$(basename "$(dirname "$meta")")"
    for f in model.safetensors model.onnx data.npz calib.npz meta.json; do
        [[ -e "$BUNDLE/_internal/accelstudio/resources/examples/$example/$f" ]] || fail "the bundle lacks example $example/$f"
    done
done
for dist in accelstudio torch onnxruntime onnx numpy; do  # run records read versions from package metadata
    compgen -G "$BUNDLE/_internal/$dist[-.]*info" > /dev/null || fail "the bundle lacks $dist's metadata"
done
for junk in torch/test torch/include torch/bin/test_api torch/bin/protoc PySide6/Qt/translations tkinter matplotlib sklearn scipy pytest; do
    [[ ! -e "$BUNDLE/_internal/$junk" ]] || fail "the bundle still holds _internal/$junk"
done
echo "examples, data, icons, Qt plugins and metadata present; test files and unused packages left out"

step "smoke: --version"
out="$("$EXE_ABS" --version)" || fail "accelstudio --version exited non-zero"
[[ "$out" == "accelstudio $VERSION" ]] || fail "--version printed '$out'"
echo "$out"

step "smoke: the executable is its own worker (accelstudio --worker)"
set +e
out="$(printf 'not a job\n' | timeout 300 "$EXE_ABS" --worker 2>&1)"; rc=$?
set -e
[[ $rc == 2 && "$out" == *ProtocolError* ]] || fail "accelstudio --worker (rc $rc) did not answer a bad spec: $out"
echo "worker answered a bad job spec with a protocol error (exit 2), as it should"

step "smoke: accelstudio inspect --example digits-cnn --json"
timeout 300 "$EXE_ABS" inspect --example digits-cnn --json > inspect.json || fail "inspect exited non-zero"
check_json inspect.json 'len(d["layers"]) > 0 and d["total_params"] > 0' "inspect gave no layers"
"$PYTHON" -c 'import json; d = json.load(open("inspect.json")); print(len(d["layers"]), "layers,", d["total_params"], "parameters")'

for runtime in onnxruntime torch; do
    step "smoke: accelstudio run --example digits-mlp --runtime $runtime --prune 0.3 --quantize dynamic-int8 --repeats 20 --json"
    timeout 600 "$EXE_ABS" run --example digits-mlp --runtime "$runtime" --prune 0.3 --quantize dynamic-int8 \
        --repeats 20 --json > "run-$runtime.json" || fail "run on $runtime exited non-zero (output: run-$runtime.json)"
    check_json "run-$runtime.json" 'd["status"] == "done" and d["p50_ms"] > 0' "run on $runtime is not done"
    "$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1]))
print("status", d["status"], "| p50 %.4f ms | accuracy %.4f (baseline %.4f)" % (d["p50_ms"], d["accuracy"], d["baseline_accuracy"]))' \
        "run-$runtime.json"
done

step "smoke: GUI (offscreen): accelstudio --smoke screenshot.png"
timeout 900 "$EXE_ABS" --smoke "$SMOKE_HOME/screenshot.png" || fail "the GUI smoke test failed"
"$PYTHON" - "$SMOKE_HOME/screenshot.png" <<'PY' || fail "the screenshot is not a usable PNG"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
width, height = struct.unpack(">II", data[16:24])
assert width >= 400 and height >= 300, f"only {width}x{height}"
print(f"screenshot {width}x{height}, {len(data)} bytes")
PY
if command -v xvfb-run > /dev/null; then  # the same on a real X11 server: the bundled xcb platform plugin
    step "smoke: GUI on X11 (Xvfb, QT_QPA_PLATFORM=xcb)"
    QT_QPA_PLATFORM=xcb timeout 900 xvfb-run -a -s "-screen 0 1600x1000x24" "$EXE_ABS" --smoke "$SMOKE_HOME/x11.png" \
        || fail "the GUI smoke test on X11 failed"
else
    echo "(xvfb-run not found: the X11 variant of the GUI smoke test is skipped)"
fi
cd - > /dev/null
cp "$SMOKE_HOME/screenshot.png" "$DIST/smoke-screenshot.png"
echo "copied to $DIST/smoke-screenshot.png"

# --- pack --------------------------------------------------------------------------------------------------
step "packing $TARBALL"
rm -f "$TARBALL"
compress=gzip
command -v pigz > /dev/null && compress=pigz
tar -C "$DIST" --owner=0 --group=0 --use-compress-program="$compress" -cf "$TARBALL.tmp" AccelStudio
mv -f "$TARBALL.tmp" "$TARBALL"
tar -tzf "$TARBALL" AccelStudio/accelstudio AccelStudio/install-desktop-entry.sh AccelStudio/accelstudio.desktop \
    > /dev/null || fail "$TARBALL lacks the executable or the desktop files"

# --- report ------------------------------------------------------------------------------------------------
unpacked_mb=$(du -sm "$BUNDLE" | cut -f1)
step "done"
echo "bundle:   $BUNDLE  $(du -sh "$BUNDLE" | cut -f1) unpacked (${unpacked_mb} MB; goal < ${GOAL_MB} MB:" \
     "$([[ $unpacked_mb -lt $GOAL_MB ]] && echo within || echo OVER))"
echo "tarball:  $TARBALL  $(du -sh "$TARBALL" | cut -f1)"
echo "install:  tar xzf $(basename "$TARBALL") && AccelStudio/accelstudio   (menu entry: bash AccelStudio/install-desktop-entry.sh)"
echo "time:     ${SECONDS}s in all${BUILD_S:+, build ${BUILD_S}s}"
