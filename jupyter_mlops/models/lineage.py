"""Where a registered model version came from: its run, notebook, git commit, params and data.

MLflow holds every part of the answer: the version names its run; the run has the params, the
notebook and git tags (or its session's or pipeline's run has them: registry.py walks up), and
its dataset inputs, each with a digest, schema and profile (steps/datasets.py wrote them: a
tracked cell's `--inputs`, a pipeline step's values read and written). This module only reads
them, for the run card, the panel's run details and Models view, and the CLI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.steps.datasets import DatasetDescription


@dataclass(frozen=True)
class Lineage:
    """A model version's origin, as MLflow records it."""

    model: str
    version: int
    run_id: str | None
    run_name: str = ""
    notebook: str | None = None
    git_commit: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    datasets: list[DatasetDescription] = field(default_factory=list)
    step: str | None = None  # the pipeline step whose run logged the model
    parent_run_id: str | None = None  # its session's or pipeline's run

    @property
    def digests(self) -> dict[str, str]:
        """Each dataset's digest by name (a step's outputs under `output:NAME`)."""
        return {dataset_label(d): d.digest for d in self.datasets}

    def to_dict(self) -> dict[str, Any]:
        """JSON for the server and the panel: datasets with their row counts."""
        out = asdict(self)
        out["datasets"] = [dataset_dict(d) for d in self.datasets]
        return out


def lineage(client: Any, name: str, version: int | str | None = None, *,
            alias: str | None = None) -> Lineage:
    """The lineage of version `version` (or the one holding `alias`, else the newest) of
    registered model `name`; registry.RegistryError names what is missing."""
    from mlflow.exceptions import MlflowException

    from jupyter_mlops.models.registry import describe

    found = describe(name, version=version, alias=alias, store=client)
    if not found.run_id:  # registered from a path, not a run: only the version's own tags
        return Lineage(found.model, found.version, None, notebook=found.notebook,
                       git_commit=found.git_commit)
    try:
        run = client.get_run(found.run_id)
    except MlflowException:  # the run was deleted; the version still says where it was
        return Lineage(found.model, found.version, found.run_id, notebook=found.notebook,
                       git_commit=found.git_commit)
    tags, params = run.data.tags, dict(run.data.params)
    pipeline = vocab.pipeline_of_step(tags)
    if pipeline:  # a step's run: the pipeline's parameters too (those the step read win)
        try:
            params = dict(client.get_run(pipeline).data.params) | params
        except MlflowException:
            pass
    return Lineage(found.model, found.version, found.run_id, run.info.run_name or "",
                   found.notebook, found.git_commit, params, run_datasets(run),
                   tags.get(vocab.STEP_TAG), tags.get(vocab.PARENT_RUN_TAG))


def run_datasets(run: Any) -> list[DatasetDescription]:
    """The dataset inputs of an `mlflow.entities.Run`, with the context each was used in."""
    inputs = getattr(run, "inputs", None)
    found = []
    for item in getattr(inputs, "dataset_inputs", None) or []:
        tags = {t.key: t.value for t in item.tags or []}
        data = item.dataset
        found.append(DatasetDescription(
            data.name, data.digest, data.source_type, data.source, data.schema, data.profile,
            tags.pop(vocab.DATASET_CONTEXT_TAG, ""), tags))
    return found


def dataset_label(described: DatasetDescription) -> str:
    """The dataset's name, `output:NAME` for a value a step wrote."""
    output = described.context == vocab.CONTEXT_OUTPUT
    return f"output:{described.name}" if output else described.name


def dataset_dict(described: DatasetDescription) -> dict[str, Any]:
    """A dataset for the panel: name, context, digest, rows, and the full sha256 if known."""
    return {"name": described.name, "context": described.context, "digest": described.digest,
            "rows": described.rows, "sha256": described.tags.get(vocab.DATASET_SHA256_TAG),
            "schema": described.schema}
