"""Plots, the theme they draw with, their export, and the figures of a run they read."""
