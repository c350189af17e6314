"""Kubeflow Kale's notebook metadata (`kubeflow_notebook`), checked field by field.

The metadata is hand-editable JSON: a field of the wrong type is the notebook's fault, said as
one line naming the field, not an AttributeError from deep inside the graph builder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyter_mlops.errors import NotebookError

KEY = "kubeflow_notebook"
_TEXT_FIELDS = ("pipeline_name", "pipeline_description", "docker_image", "base_image",
                "experiment_name")


@dataclass(frozen=True)
class KaleMetadata:
    """The fields of Kale's metadata the graph uses; `present` when the notebook has any."""

    present: bool = False
    pipeline_name: str | None = None
    description: str | None = None
    image: str | None = None
    experiment: str | None = None


def kale_metadata(notebook: Any, path: str) -> KaleMetadata:
    """The notebook's Kale metadata, or NotebookError naming the field of the wrong type."""
    meta = notebook.metadata.get(KEY)
    if meta is None:
        return KaleMetadata()
    if not isinstance(meta, dict):
        raise NotebookError(path, f"metadata {KEY!r} must be an object of Kale's settings, "
                                  f"not {json_kind(meta)}")
    for name in _TEXT_FIELDS:
        _check_text(path, f"{KEY}.{name}", meta.get(name))
    experiment = meta.get("experiment")
    if experiment is not None and not isinstance(experiment, dict):
        raise NotebookError(path, f"metadata '{KEY}.experiment' must be an object "
                                  f"({{\"name\": ...}}), not {json_kind(experiment)}")
    experiment_name = (experiment or {}).get("name")
    _check_text(path, f"{KEY}.experiment.name", experiment_name)
    return KaleMetadata(
        present=bool(meta),
        pipeline_name=meta.get("pipeline_name") or None,
        description=meta.get("pipeline_description") or None,
        image=meta.get("base_image") or meta.get("docker_image") or None,
        experiment=experiment_name or meta.get("experiment_name") or None,
    )


def _check_text(path: str, field: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise NotebookError(path, f"metadata {field!r} must be a string, not {json_kind(value)}")


def json_kind(value: Any) -> str:
    """A JSON value's kind as a notebook's author knows it: "a list [...]", "the number 5"."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"[:60]
    kinds: dict[type, str] = {str: "a string", list: "a list", dict: "an object"}
    return kinds.get(type(value), type(value).__name__)
