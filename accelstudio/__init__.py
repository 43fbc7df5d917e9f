"""AccelStudio: prune and quantize neural networks, and measure what it buys you."""

import os as _os

__version__ = "0.1.0"

# ONNX Runtime 1.32 otherwise writes a device id and a telemetry event database under ~/.cache/Microsoft and a
# session file in $TMPDIR as soon as it is imported (and may upload the events). Set here, before any import of
# onnxruntime in this process; worker processes inherit it. A value the user set is kept.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
