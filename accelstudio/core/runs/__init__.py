"""Runs: the SQLite run store, its exports and artifacts, baselines and the one typed report (verdicts,
intervals) that the GUI, the CLI and the exports all read."""
