"""A model's reference: captured from its training data when the model is logged, read back
when new data is compared with it.

Capture: a tracked cell's model (`%%mlops track --model VAR`) gets the `Profile` of its
training frame, `--reference VARIABLE` or else the first of `X_train`, `X` in the namespace,
with the model's predictions on it, on a seeded sample of `PREDICT_ROWS` rows of a larger frame
(a forest predicting on millions of rows would hold the cell up far longer than the profile;
the profile says how many rows they come from). The JSON travels to the store with the cell's
other records, as the run's `REFERENCE_PROFILE_ARTIFACT`; the columns it leaves out (dtypes
drift is not measured on) are said in the cell, a `mlops:` line on stderr as the cell's others.

Resolution: a drift report's reference is a frame, a `Profile`, a run id (the profile its run
holds) or a registered version, `MODEL@ALIAS` or `MODEL/N` (the profile of the run that logged
it, found through models/registry.py).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jupyter_mlops.errors import MlopsError
from jupyter_mlops.monitoring.profile import (
    SEED,
    DriftInputError,
    Profile,
    build_profile,
    sample_rows,
)
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking.destination import masked

REFERENCE_NAMES = ("X_train", "X")  # the training frame when `--reference` is not given
PREDICT_ROWS = 50_000  # above this many rows the model predicts on a seeded sample of them
_RUN_ID = re.compile(r"[0-9a-f]{32}")


class NoReferenceProfile(MlopsError):
    """A model version or run stored without a reference profile (or a run id the store does
    not hold): drift cannot be measured against it until the model is logged again with its
    training data."""


@dataclass(frozen=True)
class Reference:
    """What new data is compared with, and where it came from (for the monitor run's tags)."""

    data: Profile | pd.DataFrame
    label: str  # as the user named it: MODEL@ALIAS, a run id, "a DataFrame"
    run_id: str | None = None  # the run holding the profile
    model: str | None = None  # the registered model and version, when named by one
    version: int | None = None
    experiment_id: str | None = None  # the run's experiment: where monitor runs go


# --- capture -------------------------------------------------------------------------------
def as_frame(value: Any, side: str) -> pd.DataFrame:
    """A DataFrame, or a 2-D array as one (its columns named 0, 1, ...)."""
    if isinstance(value, pd.DataFrame):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 2:
        return pd.DataFrame(value)
    raise DriftInputError(f"the {side} data is a {type(value).__name__}, not a DataFrame or a "
                          "2-D array")


def training_frame(namespace: dict[str, Any], variable: str | None = None) -> Any | None:
    """The model's training data: `variable`, else the first of REFERENCE_NAMES defined."""
    if variable is not None:
        if variable not in namespace:
            raise DriftInputError(f"--reference {variable}: no such variable")
        return namespace[variable]
    return next((namespace[n] for n in REFERENCE_NAMES if namespace.get(n) is not None), None)


def model_scores(model: Any, data: Any) -> Any | None:
    """The model's predictions on `data`: the positive class's probability of a binary
    classifier, else `predict`; None when the model cannot predict on it."""
    try:
        if hasattr(model, "predict_proba"):
            scores = np.asarray(model.predict_proba(data))
            if scores.ndim == 2 and scores.shape[1] <= 2:
                return scores[:, -1]
        return model.predict(data) if hasattr(model, "predict") else None
    except Exception:  # an unfitted model, a frame it was not trained on: no predictions
        return None


def capture(model: Any, namespace: dict[str, Any], variable: str | None = None) -> str | None:
    """The reference profile's JSON of `model`'s training data, or None when the namespace
    has none (no `--reference` and neither X_train nor X)."""
    data = training_frame(namespace, variable)
    if data is None:
        return None
    frame = as_frame(data, f"reference ({variable or 'training'})")
    rows = sample_rows(len(frame), PREDICT_ROWS, SEED)
    # the model predicts on this thread while the profile's columns are taken on the others
    profile = build_profile(frame, predict=lambda: _beside_profile(
        model, data if rows is None else _rows(data, rows)), predicted_rows=rows)
    for said in profile.warnings:
        print(f"mlops: {said}", file=sys.stderr)
    return profile.to_json()


def _beside_profile(model: Any, data: Any) -> Any | None:
    """The model's scores, its BLAS on this thread alone: the profile has the other cores
    meanwhile, and BLAS's own threads, which spin for their next task long after (about 0.1 s
    of a core), would take one from it and from the rest of the cell."""
    with _blas_threads().limit(limits=1, user_api="blas"):
        return model_scores(model, data)


@lru_cache(maxsize=1)
def _blas_threads() -> Any:
    """threadpoolctl's view of the BLAS libraries loaded (scikit-learn's dependency), made
    once: it looks through every loaded library (2 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _rows(data: Any, rows: np.ndarray) -> Any:
    """The rows at positions `rows` of a frame or an array, of the same type."""
    return data.iloc[rows] if isinstance(data, pd.DataFrame) else data[rows]


# --- resolution ----------------------------------------------------------------------------
def resolve(reference: Any, store: Any = None) -> Reference:
    """The reference `reference` names: a DataFrame (or 2-D array), a Profile, a run id, or
    `MODEL@ALIAS` / `MODEL/N` of the registry."""
    if isinstance(reference, Profile):
        return Reference(reference, "a profile")
    if not isinstance(reference, str):
        return Reference(as_frame(reference, "reference"), "a DataFrame")
    from jupyter_mlops.models import registry

    client = registry.client_for(store)
    text = reference.strip()
    if _RUN_ID.fullmatch(text):
        run = _run(client, text)
        return Reference(_stored_profile(client, text, f"run {text}"), text, text,
                         experiment_id=run.info.experiment_id)
    version = registry.resolve(text, store=client)
    if not version.run_id:
        raise NoReferenceProfile(f"{version.label} has no source run, so no reference profile")
    run = client.get_run(version.run_id)
    return Reference(_stored_profile(client, version.run_id, version.label), text,
                     version.run_id, version.model, version.version, run.info.experiment_id)


def _run(client: Any, run_id: str) -> Any:
    """The run a reference names by id; a run the store does not hold is said in one line."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise NoReferenceProfile(f"reference {run_id}: no such run in "
                                 f"{masked(client.tracking_uri)}; a reference is MODEL@ALIAS, "
                                 "MODEL/N, a run id or a DataFrame") from None


def _stored_profile(client: Any, run_id: str, what: str) -> Profile:
    names = {a.path for a in client.list_artifacts(run_id)}
    if vocab.REFERENCE_PROFILE_ARTIFACT not in names:
        raise NoReferenceProfile(
            f"{what} has no reference profile (run {run_id} holds no "
            f"{vocab.REFERENCE_PROFILE_ARTIFACT}): it was logged without its training data at "
            "hand. Log the model again with `%%mlops track --model VAR --reference FRAME` (or "
            "with X_train or X defined), or compare with a DataFrame: drift(current, "
            "reference=train_frame)")
    with tempfile.TemporaryDirectory() as folder, _no_progress_bar():
        path = client.download_artifacts(run_id, vocab.REFERENCE_PROFILE_ARTIFACT, folder)
        return Profile.from_json(Path(path).read_bytes())


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """One small file: no download bar in the cell's output."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR as BAR

    saved = os.environ.get(BAR.name)
    os.environ[BAR.name] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(BAR.name, None)
        else:
            os.environ[BAR.name] = saved
