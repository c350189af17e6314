"""Errors of the tracking layer; each says what to do about it."""

from __future__ import annotations

from jupyter_mlops.errors import MlopsError


class TrackingError(MlopsError):
    """A tracking operation cannot be done as asked."""


class NoActiveRunError(TrackingError):
    """A logging call came with no run to log into."""

    def __init__(self) -> None:
        super().__init__("no active run: run `%mlops start` or use `%%mlops track` first")


class StoreError(TrackingError):
    """A SQLite store that cannot be opened as it is: not SQLite, half made, or not creatable."""
