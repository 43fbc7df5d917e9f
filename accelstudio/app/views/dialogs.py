"""Dialogs: errors (a plain message, the technical details one click away), the trust question, confirmations,
About.

Each dialog is built by a function and shown through `exec_dialog`, the one place tests replace to answer
dialogs automatically.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from accelstudio.core.errors import AccelStudioError, ModelLoadError

TRUST_REASONS = {
    ".pt": "TorchScript archives and pickled PyTorch files can run Python code while they load.",
    ".pth": "Pickled PyTorch files can run Python code while they load.",
    ".ts": "TorchScript archives can run code while they load.",
    ".pt2": "torch.export archives can run code while they load.",
}


YES = QMessageBox.StandardButton.Yes


def exec_dialog(box: QMessageBox) -> int:
    """Show a modal dialog and return the button role code; tests monkeypatch this."""
    return box.exec()


def error_box(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """A warning box with a plain message and expandable details (Show Details...)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(message)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setObjectName("errorDialog")
    return box


def confirm_box(parent: QWidget | None, title: str, question: str, detail: str = "") -> QMessageBox:
    """A Yes/No question, No by default (for actions that delete files)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(title)
    box.setText(question)
    if detail:
        box.setInformativeText(detail)
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    box.setObjectName("confirmDialog")
    return box


def show_error(parent: QWidget | None, title: str, exc: BaseException, trace: str = "") -> None:
    """Explain `exc` in plain words; the traceback (if any) goes into the details."""
    message, hint = plain_message(exc)
    text = message + (f"\n\n{hint}" if hint else "")
    details = f"{type(exc).__name__}: {exc}" + (f"\n\n{trace}" if trace else "")
    exec_dialog(error_box(parent, title, text, details))


def plain_message(exc: BaseException) -> tuple[str, str]:
    """(what happened, what to do) for an exception, in words for people who did not write the code."""
    if isinstance(exc, ModelLoadError):
        return (f"Could not open {exc.path.name}: {exc.category}.",
                f"{exc.detail}\n\nThe app is unchanged; the previous model stays open.")
    if isinstance(exc, AccelStudioError):
        return str(exc), ""
    if isinstance(exc, MemoryError):
        return "The model does not fit in memory.", "Close other programs or try a smaller model."
    return (f"Something went wrong: {type(exc).__name__}.",
            "The details below show where; the app is unchanged.")


def trust_box(parent: QWidget | None, path: Path, detail: str = "") -> QMessageBox:
    """Ask whether to trust a file whose format can execute code when loaded."""
    reason = TRUST_REASONS.get(path.suffix.lower(), "This file format can run code while it loads.")
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Trust this file?")
    box.setText(f"Open {path.name} and let it run code?")
    box.setInformativeText(
        f"{reason} A file from someone you do not know could harm your computer.\n\n"
        "Open it only if you made it yourself or trust where it came from. "
        "Safer formats: .onnx or .safetensors weights.")
    if detail:
        box.setDetailedText(detail)
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    box.button(QMessageBox.StandardButton.Yes).setText("Trust and open")
    box.setObjectName("trustDialog")
    return box


def ask_trust(parent: QWidget | None, path: Path, detail: str = "") -> bool:
    """True when the user agrees to load `path` with code execution allowed."""
    return exec_dialog(trust_box(parent, path, detail)) == QMessageBox.StandardButton.Yes


def show_about(parent: QWidget | None, version: str) -> None:
    """Help > About."""
    QMessageBox.about(
        parent, "About AccelStudio",
        f"<h3>AccelStudio {version}</h3>"
        "<p>Prune and quantize neural networks and measure, on this computer, what it does to "
        "latency, size and accuracy.</p>"
        "<p>Every run executes in a separate worker process; the same pipeline runs from the "
        "command line (<code>accelstudio run</code>).</p>")
