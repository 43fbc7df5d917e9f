"""AccelStudio: prune and quantize neural networks, and measure what it buys you."""

__version__ = "0.1.0"
