"""Logging a Python object as an MLflow model: the one place that picks the flavor and format.

Cells (`%%mlops track --model`, through the tracking sender), local pipeline steps (`model:`,
through the same sender) and compiled KFP steps all call `log_model`, so a model is stored the
same way wherever it was trained. Only the standard library at module level: KFP components
ship the steps package into images that lack jupyter-mlops and log the step's model with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jupyter_mlops.steps.errors import ModelLoggingError
from jupyter_mlops.steps.mlflow_vocabulary import MODEL_ARTIFACT

# scikit-learn models are saved with cloudpickle, not MLflow's default skops (3.x): skops
# refuses every type it does not trust (each tree of a forest or a boosting model:
# sklearn.tree._tree.Tree) and cannot save classes or functions defined in a notebook, while
# trusting the types computed from the model itself protects nobody (the list travels in the
# model's own MLmodel file, and MLflow >= 3.17 gates loading every format behind
# MLFLOW_ALLOW_PICKLE_DESERIALIZATION anyway). cloudpickle is accepted by every mlflow the pin
# admits and is how the object already travels from the kernel to the sender.
SKLEARN_FORMAT = "cloudpickle"


def is_sklearn(model: Any) -> bool:
    """An estimator of scikit-learn's API, its own classes or a subclass (xgboost's, etc.)."""
    return any(c.__module__.startswith("sklearn.") for c in type(model).__mro__)


def log_model(client: Any, run_id: str, model: Any, *, name: str = MODEL_ARTIFACT,
              input_example: Any = None, register: str | None = None) -> Any:
    """Store `model` as MLflow model `name` of run `run_id`; returns MLflow's ModelInfo (its
    `model_id`, and `registered_model_version` when registered).

    scikit-learn estimators (pipelines, ensembles, trees) take the sklearn flavor; any other
    object is kept whole in a python_function model. Raises ModelLoggingError when the object
    itself cannot be saved; the store's own errors (unreachable, refused) pass through.
    """
    kind = type(model).__module__ + "." + type(model).__qualname__
    with _fluent_uri(client.tracking_uri), _thread_active_run(client.get_run(run_id)):
        try:
            info = _log(model, name, input_example, register)
        except Exception as error:
            if _from_store(error):
                raise
            raise ModelLoggingError(name, kind, f"{type(error).__name__}: {error}") from error
    return info


def model_entry(variable: str, register: str | None) -> dict[str, Any]:
    """What a step notebook's `metadata.mlops` says about the model its step produces."""
    return {"model": {"variable": variable, "register": register}}


def step_model(notebook: dict[str, Any]) -> tuple[str, str | None] | None:
    """(variable, registered name) of the model a step notebook saves with its values, if any.

    The local runner and KFP components read it from the executed notebook and log the value
    saved in the step's values folder on the step's run (the runner through the sender).
    """
    entry = notebook.get("metadata", {}).get("mlops", {}).get("model")
    return (entry["variable"], entry.get("register")) if entry else None


def _log(model: Any, name: str, example: Any, register: str | None) -> Any:
    """Log under the active run (`_thread_active_run`): pyfunc's log_model takes no run id."""
    # MLflow infers the signature from the example (a failure there is only a warning).
    # Explicit requirements: MLflow would otherwise load the model in a subprocess to infer them.
    if is_sklearn(model):
        import mlflow.sklearn

        return mlflow.sklearn.log_model(
            model, name=name, input_example=example, registered_model_name=register,
            serialization_format=SKLEARN_FORMAT,
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(
                include_cloudpickle=True))
    import mlflow.pyfunc
    from mlflow.pyfunc.model import get_default_pip_requirements

    return mlflow.pyfunc.log_model(
        name=name, python_model=_wrapped(model), input_example=example,
        registered_model_name=register, pip_requirements=get_default_pip_requirements())


def _wrapped(model: Any) -> Any:
    """`model` inside a PythonModel: predict calls its predict, or the object if callable.

    The class is made here, not at module level, so that cloudpickle saves it by value: the
    stored model loads where jupyter-mlops is not installed. The object stays reachable as
    `mlflow.pyfunc.load_model(uri).unwrap_python_model().model`.
    """
    from mlflow.pyfunc import PythonModel

    class ObjectModel(PythonModel):
        def __init__(self, model: Any) -> None:
            self.model = model

        # No type hints: MLflow would read them as a schema to check inputs against.
        def predict(self, context, model_input, params=None):
            if hasattr(self.model, "predict"):
                return self.model.predict(model_input)
            if callable(self.model):
                return self.model(model_input)
            raise TypeError(f"{type(self.model).__name__} has no predict method and is not "
                            "callable; unwrap_python_model().model gives the object")

    return ObjectModel(model)


def _from_store(error: BaseException) -> bool:
    """Errors of the store or the network, as opposed to errors of the object being saved."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException | ConnectionError | TimeoutError):
        return True
    try:
        import requests
    except ImportError:  # pragma: no cover - mlflow depends on requests
        return False
    return isinstance(error, requests.RequestException)


@contextmanager
def _fluent_uri(uri: str) -> Iterator[None]:
    """log_model finds the store (and the registry) through the fluent API's global URI.

    Point it at ours for the call, then put back what the user had: both the global and the
    MLFLOW_TRACKING_URI variable that set_tracking_uri also writes.
    """
    import mlflow
    from mlflow.tracking._tracking_service import utils

    previous, env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        # None is mlflow's own "not set" (its annotation omits it): the default store again.
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env


@contextmanager
def _thread_active_run(run: Any) -> Iterator[None]:
    """Make `run` this thread's active run for the duration, without start_run's side effects.

    Model.log files the LoggedModel under the active run's experiment and otherwise under
    the Default experiment. MLflow keeps the active-run stack per thread, so the user's own
    fluent state in the kernel's main thread is untouched.
    """
    import mlflow
    from mlflow.tracking import fluent

    stack = getattr(fluent, "_active_run_stack", None)
    if stack is None:
        yield
        return
    stack.get().append(mlflow.ActiveRun(run))
    try:
        yield
    finally:
        stack.get().pop()
