"""Errors of the notebook views, each saying what to change."""

from __future__ import annotations

from jupyter_mlops.errors import MlopsError


class WidgetError(MlopsError):
    """A view cannot be built from what it was given."""


class SweepError(WidgetError, ValueError):
    """A sweep's notebook, grid or options cannot be used: names the fault."""
