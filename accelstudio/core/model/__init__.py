"""Models: loading with safety checks (ONNX, TorchScript, torch.export, bundled architectures and examples),
inspection of layers and weights, the ONNX graph pieces and input shapes. Knows nothing of recipes."""
