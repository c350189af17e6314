"""A small real registry, as a data scientist's would look: two versions of `Churn_Classifier`
trained in-process (a RandomForest, then a GradientBoosting), each logged on its own run of
notebook Churn_Training.ipynb with params and metrics: v1 registered through
models/registry.py and holding @champion, v2 registered by a pipeline's release (@challenger,
its gates' verdicts recorded: RELEASE_GATES; its run also holds the runner's bookkeeping
metrics, STEP_METRICS, as a pipeline step's does). Each run holds its training data's reference
profile, as a tracked cell stores it, so drift reports can be logged against either version
(`log_drift`). Shared by the server tests and the browser test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyter_mlops.steps import mlflow_vocabulary as vocab

MODEL = "Churn_Classifier"
EXPERIMENT = "Churn_Training"
NOTEBOOK = "Churn_Training.ipynb"
COMMIT = "3f2a9c1d4e5b6a7980c1d2e3f4a5b6c7d8e9f0a1"
RELEASE_GATES = ("accuracy>=0.5", "f1>=champion+0.5")  # v2's: the second fails
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "age", "discount", "usage_gb"]


def make_registry(folder: Path) -> dict[str, Any]:
    """mlflow.db in `folder` with the two versions; returns the URI and each version's metrics."""
    import pandas as pd
    from mlflow.entities import Metric, Param
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split

    from jupyter_mlops.models import registry, release
    from jupyter_mlops.monitoring.reference import capture
    from jupyter_mlops.steps.model_logging import log_model
    from jupyter_mlops.tracking.destination import artifact_root, open_client

    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = open_client(uri)
    experiment_id = vocab.get_or_create_experiment(client, EXPERIMENT, artifact_root(uri))
    X, y = make_classification(n_samples=300, n_features=6, flip_y=0.1, class_sep=1.0,
                               random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(pd.DataFrame(X, columns=FEATURES), y,
                                                        random_state=0)
    candidates = [("Random_Forest", RandomForestClassifier(n_estimators=5, max_depth=1,
                                                           random_state=0), "champion"),
                  ("Gradient_Boosting", GradientBoostingClassifier(n_estimators=30,
                                                                   random_state=0),
                   "challenger")]
    metrics = {}
    for run_name, estimator, alias in candidates:
        estimator.fit(X_train, y_train)
        scores = {"accuracy": estimator.score(X_test, y_test),
                  "f1": f1_score(y_test, estimator.predict(X_test))}
        run = client.create_run(experiment_id, run_name=run_name, tags={
            vocab.NOTEBOOK_TAG: str(folder / NOTEBOOK), vocab.GIT_COMMIT_TAG: COMMIT,
            vocab.KIND_TAG: vocab.KIND_CELL})
        rid = run.info.run_id
        bookkeeping = {vocab.DURATION_METRIC: 1.5, vocab.CACHE_HIT_METRIC: 0.0} \
            if alias == "challenger" else {}
        client.log_batch(rid, metrics=[Metric(k, v, 0, 0)
                                       for k, v in (scores | bookkeeping).items()],
                         params=[Param(k, str(v)) for k, v in estimator.get_params().items()
                                 if k in ("n_estimators", "max_depth")])
        log_model(client, rid, estimator)
        client.log_text(rid, capture(estimator, {"X_train": X_train}),
                        vocab.REFERENCE_PROFILE_ARTIFACT)
        client.set_terminated(rid, "FINISHED")
        if alias == "champion":
            number = registry.register(rid, MODEL, alias=alias, store=client).version
        else:  # as `register:` with `promote:champion` in a pipeline: judged, not promoted
            plan = release.ReleasePlan(RELEASE_GATES, (release.Registration(
                "train", "model", MODEL, "champion"),))
            done = release.release(plan, scores, client,
                                   lambda _, rid=rid: release.ModelSource(f"runs:/{rid}/model"))
            number = done.registered[MODEL]
        metrics[number] = scores
    return {"uri": uri, "metrics": metrics, "training": X_train.reset_index(drop=True)}


def log_drift(store: dict[str, Any], version: int, shift: float) -> str:
    """A later batch (the training rows again, `shift` standard deviations off) compared with
    the version's profile and logged as its monitor run, as `jupyter_mlops.drift` does; the
    run id."""
    from jupyter_mlops.widgets.drift_view import drift

    rows = store["training"]
    batch = rows + shift * rows.std()
    result = drift(batch, f"{MODEL}/{version}", store=store["uri"])
    assert result.run_id is not None
    return result.run_id
