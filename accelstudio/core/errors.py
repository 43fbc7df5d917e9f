"""Typed errors the user can cause. Each message names the file (or field) and says what to do."""

from __future__ import annotations

from pathlib import Path


class AccelStudioError(Exception):
    """Base of every error the user can cause; the CLI prints its message without a traceback."""

    category = "error"


class ModelLoadError(AccelStudioError):
    """A model file could not be opened. Subclasses give the category."""

    category = "model error"

    def __init__(self, path: str | Path, detail: str):
        self.path = Path(path)
        self.detail = detail
        super().__init__(f"{self.path}: {self.category}: {detail}")


class NotAModelError(ModelLoadError):
    category = "not a model file"


class CorruptModelError(ModelLoadError):
    category = "corrupt or truncated"


class UnsupportedModelError(ModelLoadError):
    category = "unsupported format or opset"


class TrustRequiredError(ModelLoadError):
    category = "contains code, trust required"


class ModelTooLargeError(ModelLoadError):
    category = "too large"


class ExternalDataError(ModelLoadError):
    category = "external data missing or outside the model's folder"


class RecipeError(AccelStudioError):
    """A recipe field is invalid. The message names the field and the allowed values."""

    category = "invalid recipe"

    def __init__(self, field: str, detail: str):
        self.field = field
        super().__init__(f"recipe field '{field}': {detail}")


class CompressionError(AccelStudioError):
    """A recipe cannot be applied to this model (for example a layer that cannot be pruned structurally)."""

    category = "cannot apply recipe"


class DatasetError(AccelStudioError):
    """A data set cannot be read or does not fit the model."""

    category = "data set error"

    def __init__(self, path: str | Path | None, detail: str):
        self.path = Path(path) if path is not None else None
        prefix = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{prefix}{detail}")


class RuntimeUnavailableError(AccelStudioError):
    """The requested runtime or device does not exist on this machine."""

    category = "runtime unavailable"


class JobCancelled(AccelStudioError):
    """Raised inside a job when its cancel token is set; the run is recorded as cancelled."""

    category = "cancelled"
