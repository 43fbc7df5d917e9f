"""Render resources/icons/accelstudio.svg to the PNG sizes desktops ask for (64, 128, 256 px).

Run after editing the SVG: `python installer/make_icons.py`. The PNGs are checked in, so building the bundle
never needs this script.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SOURCE = ICONS / "accelstudio.svg"
SIZES = (64, 128, 256)


def render(size: int, renderer) -> "QImage":
    """The SVG drawn into a transparent square image of `size` pixels."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter

    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    """Write accelstudio-<size>.png next to the SVG for every size; exit code 1 if the SVG does not parse."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (keeps Qt's fonts alive)
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        print(f"error: {SOURCE} is not a valid SVG", file=sys.stderr)
        return 1
    for size in SIZES:
        target = ICONS / f"accelstudio-{size}.png"
        tmp = target.with_suffix(".png.tmp")
        if not render(size, renderer).save(str(tmp), "PNG"):
            print(f"error: could not write {target}", file=sys.stderr)
            return 1
        os.replace(tmp, target)
        print(f"{target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
