"""Data sets: bundled examples, .npz files, image folders and synthesized inputs (fixed dims kept); the data a run
evaluates, calibrates and trains on."""
