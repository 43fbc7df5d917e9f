"""`accelstudio --smoke PNG --lesson NAME --presenter --size WxH`: a screenshot of that state."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from accelstudio.cli import build_parser, main


def test_size_and_presenter_options_parse():
    args = build_parser().parse_args(["--presenter", "--size", "1366x768", "--reopen-last"])
    assert args.presenter and args.size == (1366, 768) and args.reopen_last
    for bad in ("1280", "x720", "10x10", "big"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--size", bad])


def test_smoke_renders_a_lesson_in_presenter_mode_at_a_small_size(tmp_path, capsys, qapp):
    png = tmp_path / "presenter.png"
    app = QApplication.instance()
    font = app.font().pointSizeF()
    code = main(["--smoke", str(png), "--lesson", "pruning", "--presenter", "--size", "1280x720"])
    out = capsys.readouterr()
    assert code == 0, out.err
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1280, 720)
    assert app.font().pointSizeF() == pytest.approx(font)  # back to normal once the window closed
    from accelstudio.app.main_window import default_settings

    assert str(default_settings().value("ui/presenter", "false")).lower() == "false"  # a one-off
