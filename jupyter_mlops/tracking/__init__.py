"""Cell tracking: log notebook cells and script blocks as MLflow runs (`track()`, and the
`%mlops` magics above this package in jupyter_mlops/magics.py).

Importing this package is cheap and never imports mlflow: records are appended to an on-disk
spool in the caller's thread, and a sender process (tracking/sender.py) sends them to MLflow.
"""

from __future__ import annotations

from jupyter_mlops.errors import TrackingError
from jupyter_mlops.tracking.limits import LimitWarning
from jupyter_mlops.tracking.script import RunHandle, track

__all__ = ["LimitWarning", "RunHandle", "TrackingError", "track"]
