"""Bridges to work off the GUI thread: worker jobs and background model loading."""
