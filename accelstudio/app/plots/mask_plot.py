"""The pruning mask of one layer as a heatmap: rows are output channels, columns the inputs (times the kernel
positions of a convolution); a dark cell is a weight the recipe removes (M = 0 in W x M), a light one is kept.
Large layers are shown in blocks, each cell the share of its weights removed."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from accelstudio.app.plots.model_plots import fit_title, swatch
from accelstudio.app.plots.theme import LIGHT, PlotColors, keep_in_view, style_plot, title_size


class MaskHeatmap(pg.PlotWidget):
    """W x M for the selected layer: which weights pruning removes."""

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setObjectName("maskHeatmap")
        self.plot = self.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "Input (x kernel position)")
        self.plot.setLabel("left", "Output channel")
        self.plot.invertY(True)
        self.plot.setAspectLocked(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.layer: str | None = None
        self.removed_share = 0.0
        self.counts = (0, 0)
        self._shape: tuple[int, int] = (0, 0)
        self._titles: list[str] = []
        self._colors = LIGHT
        self.setMinimumHeight(150)
        keep_in_view(self)
        self.clear_mask("Mask: prune a layer to see which weights go")

    def set_mask(self, layer: str, image: np.ndarray, kept: int, removed: int, shape: tuple[int, ...],
                 exact: bool = True) -> None:
        """Show `image` (share removed per cell, rows = output channels) of `layer` whose weight has `shape`."""
        self.layer = layer
        self.counts = (int(kept), int(removed))
        total = kept + removed
        self.removed_share = removed / total if total else 0.0
        rows = int(shape[0]) if shape else 1
        cols = int(np.prod(shape[1:])) if len(shape) > 1 else int(total // max(rows, 1))
        self._shape = (rows, cols)
        self.image.setImage(np.asarray(image, dtype=float), levels=(0.0, 1.0))
        self.image.setRect(0, 0, cols, rows)  # axes in weights, whatever the block size of the image
        self.plot.setXRange(0, cols, padding=0.02)
        self.plot.setYRange(0, rows, padding=0.02)
        self._recolor()
        estimate = "" if exact else " (estimate)"
        c = self._colors
        legend = f"{swatch(c.foreground, 'removed')} {swatch(c.muted, 'kept')}"
        self._set_titles([f"Mask of {layer}: {self.removed_share:.0%} removed{estimate} · {legend}",
                          f"{layer}: {self.removed_share:.0%} removed{estimate}", f"{self.removed_share:.0%} removed"])

    def clear_mask(self, message: str) -> None:
        """Nothing to show; the title says why."""
        self.layer = None
        self.counts = (0, 0)
        self.image.clear()
        self.plot.setXRange(0, 1, padding=0)
        self.plot.setYRange(0, 1, padding=0)
        self._set_titles([message, "Mask"])

    def _set_titles(self, options: list[str]) -> None:
        self._titles = list(options)
        self.plot.setTitle(fit_title(options, self.plot, self.width()), color=self._colors.foreground,
                           size=title_size())

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        # the title first: a title set after the view has sized its layout would resize it to its preferred size
        if getattr(self, "_titles", None):
            self.plot.setTitle(fit_title(self._titles, self.plot, self.width()))
        super().resizeEvent(ev)

    def apply_colors(self, colors: PlotColors) -> None:
        """Restyle for a light or dark background."""
        self._colors = colors
        self.setBackground(colors.background)
        style_plot(self.plot, colors)
        self._recolor()

    def _recolor(self) -> None:
        kept = pg.mkColor(self._colors.muted).lighter(150)
        removed = pg.mkColor(self._colors.secondary).darker(130)
        cmap = pg.ColorMap([0.0, 1.0], [kept, removed])
        self.image.setLookupTable(cmap.getLookupTable(nPts=64))
