"""A warning line under a control group: an icon and wrapped rich text, hidden when there is nothing to say."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStyle, QWidget


class WarningLabel(QWidget):
    """An icon and wrapped text under a group, hidden when there is nothing to say."""

    def __init__(self, parent=None, objectName: str = ""):  # noqa: N803 - Qt's keyword
        super().__init__(parent)
        self.setObjectName(objectName)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        self.icon = QLabel()
        self.icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(18, 18))
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.text = QLabel(wordWrap=True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        self.warnings: list = []
        self.setVisible(False)

    def set_warnings(self, warnings: list) -> None:
        """Show HardwareWarnings: the message in bold, the advice below it and in the tooltip."""
        self.warnings = list(warnings)
        self.setVisible(bool(warnings))
        self.text.setText("<br>".join(f"<b>{w.message}</b><br><i>{w.advice}</i>" for w in warnings))
        self.setToolTip("\n\n".join(f"{w.message}\n{w.advice}" for w in warnings))
