"""Saving plots and files: PNG (rendered at 2x), SVG (QSvgGenerator + QWidget.render, which works on Qt 6.12
where pyqtgraph's own SVG exporter fails), and an atomic copy of a run's optimized model.

Every write goes to a temporary file in the target folder first and is moved into place with os.replace, so
a failure never leaves a half-written file under the chosen name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsView, QWidget


class ExportError(OSError):
    """A plot or file could not be written; the message names the file and the cause."""


@contextmanager
def atomic_target(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success move it onto `path`, on failure delete it."""
    target = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix,
                                        dir=target.parent)
    except OSError as exc:
        raise ExportError(f"{target}: cannot write in {target.parent} ({exc.strerror or exc}); "
                          "choose another folder") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _size(widget: QWidget) -> QSize:
    size = widget.size()
    if size.width() < 10 or size.height() < 10:  # never shown yet: use its preferred size
        size = widget.sizeHint().expandedTo(QSize(640, 400))
        widget.resize(size)
    return size


def _render(widget: QWidget, painter: QPainter) -> None:
    """Paint `widget` with its children (a plain widget's render needs an explicit offset when given a painter;
    a plot, a QGraphicsView, renders its scene)."""
    if isinstance(widget, QGraphicsView):
        widget.render(painter)
    else:
        QWidget.render(widget, painter, QPoint())


def export_png(widget: QWidget, path: str | Path, scale: float = 2.0) -> Path:
    """Render a widget into a PNG file at `scale` times its on-screen size; returns the path."""
    size = _size(widget)
    image = QImage(int(size.width() * scale), int(size.height() * scale), QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(scale)
    image.fill(widget.palette().color(widget.backgroundRole()))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        _render(widget, painter)
    finally:
        painter.end()
    with atomic_target(path, ".png") as tmp:
        if not image.save(str(tmp), "PNG"):
            raise ExportError(f"{path}: the PNG could not be written; check the folder and free space")
    return Path(path)


def export_svg(widget: QWidget, path: str | Path, title: str = "AccelStudio plot") -> Path:
    """Render a widget into an SVG file (vector, via QSvgGenerator); returns the path."""
    size = _size(widget)
    with atomic_target(path, ".svg") as tmp:
        generator = QSvgGenerator()
        generator.setFileName(str(tmp))
        generator.setSize(size)
        generator.setViewBox(QRect(0, 0, size.width(), size.height()))
        generator.setTitle(title)
        generator.setDescription("Exported from AccelStudio")
        painter = QPainter()
        if not painter.begin(generator):
            raise ExportError(f"{path}: the SVG could not be started; check the folder and free space")
        try:
            _render(widget, painter)
        finally:
            painter.end()
        if tmp.stat().st_size == 0:
            raise ExportError(f"{path}: the SVG came out empty; try PNG instead")
    return Path(path)


def copy_file_atomic(source: str | Path, target: str | Path) -> Path:
    """Copy `source` to `target` through a temporary file in the target folder; the source is only read."""
    src = Path(source)
    if not src.is_file():
        raise ExportError(f"{src}: the optimized model file is missing; run the recipe again to recreate it")
    with atomic_target(target, src.suffix) as tmp:
        try:
            shutil.copyfile(src, tmp)
        except OSError as exc:
            raise ExportError(f"{target}: copying {src.name} failed ({exc.strerror or exc}); "
                              "check the folder and free space") from None
    return Path(target)
