"""Errors of the KFP compiler and submission, under the project's one root, MlopsError."""

from __future__ import annotations

from jupyter_mlops.errors import MlopsError


class KfpCompileError(MlopsError, ValueError):
    """The notebook cannot become a KFP pipeline: names the notebook and, where known, the step."""

    def __init__(self, path: str, reason: str, step: str | None = None) -> None:
        self.path = str(path)
        self.step = step
        self.reason = reason
        where = f"{self.path}: step {step!r}" if step else self.path
        super().__init__(f"{where}: {reason}")


class KfpSubmitError(MlopsError, RuntimeError):
    """The KFP API did not take the pipeline: unreachable, refused or rejected, said plainly."""
