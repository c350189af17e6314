"""Errors of the step contract: a value on an edge, or a step's model, that cannot be stored.

They derive from jupyter-mlops' one root, MlopsError. In a KFP image without jupyter-mlops only
this package is present (the compiler ships it alone); there a stand-in root takes its place,
as nothing there catches jupyter-mlops' errors by their root.
"""

from __future__ import annotations

try:
    from jupyter_mlops.errors import MlopsError
except ImportError:  # shipped alone into a KFP image

    class MlopsError(Exception):  # type: ignore[no-redef]
        """Stands in for jupyter_mlops.errors.MlopsError where only the steps package is."""


class SerializationError(MlopsError, TypeError):
    """A value on an edge cannot be written or read: names the step, the variable and its type."""

    def __init__(self, name: str, type_name: str, reason: str, step: str | None = None,
                 action: str = "save") -> None:
        self.name = name
        self.type_name = type_name
        self.step = step
        self.reason = reason
        where = f"step {step!r}: " if step else ""
        what = f"variable {name!r}" + (f" of type {type_name}" if type_name != "?" else "")
        super().__init__(f"{where}cannot {action} {what}: {reason}")


class ModelLoggingError(MlopsError):
    """The object could not be stored as an MLflow model; retrying the same object cannot help."""

    def __init__(self, name: str, kind: str, reason: str) -> None:
        self.name, self.kind, self.reason = name, kind, reason
        super().__init__(f"model {name!r} ({kind}) was not stored: {reason}")
