"""Studies: loops over jobs (sweeps, sensitivity analysis, search, lessons' experiments).

A study is a generator of job specs that consumes their results to choose the next ones; it never loads or runs a
model itself (the worker does, one job at a time). Nothing lives here yet.
"""
