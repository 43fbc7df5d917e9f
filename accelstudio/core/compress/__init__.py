"""Compression of a loaded model by a recipe: pruning, quantization (torch and ONNX), recovery, export, the
feasibility of a recipe on a model and the size it predicts, and the data-only snapshot the GUI edits against."""
