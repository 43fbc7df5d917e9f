"""Studies: loops over jobs (sweeps, sensitivity analysis, search, lessons' experiments).

Two shapes. A search or sweep is a generator of job specs that consumes their results to choose the next ones; it
never loads or runs a model itself (the worker does, one job at a time, through a trial executor). A screening
study (per-layer sensitivity) runs inside the worker as one job of kind "study" on a model loaded once; it is
looked up by name in `registry`.
"""
