"""The help window: the guide and the glossary (markdown) in two tabs; `show_term` scrolls the glossary to a
term's heading."""

from __future__ import annotations

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTabWidget, QTextBrowser, QVBoxLayout, QWidget

GUIDE, GLOSSARY = 0, 1


def headings(browser: QTextBrowser) -> list[str]:
    """The heading texts of a browser's document, in order."""
    found, block = [], browser.document().begin()
    while block.isValid():
        if block.blockFormat().headingLevel() > 0:
            found.append(block.text().strip())
        block = block.next()
    return found


class HelpDialog(QDialog):
    """Guide and glossary; not modal, so it can stay open beside the window."""

    def __init__(self, guide_markdown: str, glossary_markdown: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("helpDialog")
        self.setWindowTitle("AccelStudio help")
        self.tabs = QTabWidget()
        self.guide = self._browser(guide_markdown, "guideBrowser")
        self.glossary = self._browser(glossary_markdown, "glossaryBrowser")
        self.tabs.addTab(self.guide, "Guide")
        self.tabs.addTab(self.glossary, "Glossary")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
        self.resize(640, 560)

    @staticmethod
    def _browser(markdown: str, name: str) -> QTextBrowser:
        browser = QTextBrowser(objectName=name)
        browser.setOpenExternalLinks(True)
        browser.setMarkdown(markdown)
        return browser

    def show_page(self, page: int) -> None:
        self.tabs.setCurrentIndex(page)

    def show_term(self, term: str) -> bool:
        """The glossary, scrolled so `term`'s heading is at the top; False when no heading matches."""
        self.tabs.setCurrentIndex(GLOSSARY)
        browser = self.glossary
        block = browser.document().begin()
        while block.isValid():
            if block.blockFormat().headingLevel() > 0 and block.text().strip().lower() == term.strip().lower():
                cursor = QTextCursor(block)
                cursor.select(QTextCursor.SelectionType.BlockUnderCursor)
                bar = browser.verticalScrollBar()
                bar.setValue(bar.maximum())  # then back up: the heading ends at the top of the view
                browser.setTextCursor(cursor)
                browser.ensureCursorVisible()
                return True
            block = block.next()
        return False

    def current_heading(self) -> str:
        """The glossary heading at the cursor (what show_term found)."""
        return self.glossary.textCursor().block().text().strip()
