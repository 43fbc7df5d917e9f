#!/usr/bin/env bash
# Set up AccelStudio in a virtual environment (.venv by default).
#   bash setup.sh           install the app
#   bash setup.sh --test    install the app and the test tools
# Torch: with an NVIDIA GPU (nvidia-smi present) or ACCELSTUDIO_TORCH=cuda, pip takes PyPI's CUDA build of
# torch 2.13.0. Otherwise the CPU build: from a local wheel if pip already knows one, else from PyTorch's
# CPU index (download.pytorch.org/whl/cpu), so a machine without a GPU never pulls the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")"

venv="${ACCELSTUDIO_VENV:-.venv}"
python="${PYTHON:-python3}"
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "AccelStudio needs Python 3.11 or newer")'
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install -q --upgrade pip >/dev/null

torch_flags=()
if [ "${ACCELSTUDIO_TORCH:-}" = "cuda" ] || { [ -z "${ACCELSTUDIO_TORCH:-}" ] && command -v nvidia-smi >/dev/null 2>&1; }; then
  echo "setup: installing torch with CUDA (PyPI build)"
else
  tmp=$(mktemp -d)
  if "${pip[@]}" download -q --no-deps --no-index torch==2.13.0 -d "$tmp" >/dev/null 2>&1 \
      && ls "$tmp" | grep -q '+cpu'; then
    echo "setup: installing torch (CPU build, local wheel)"
  else
    echo "setup: installing torch (CPU build from download.pytorch.org/whl/cpu)"
    torch_flags=(--extra-index-url https://download.pytorch.org/whl/cpu)
  fi
  rm -rf "$tmp"
fi
"${pip[@]}" install -q "${torch_flags[@]}" -e ".${extras}"
echo "setup: done. Start the app with $venv/bin/accelstudio"
