"""Measurement: runtimes, latency benchmark, evaluation, statistics, the environment record, hardware capabilities
and machine load."""
