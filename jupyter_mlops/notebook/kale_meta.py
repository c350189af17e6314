"""Kubeflow Kale's notebook metadata (`kubeflow_notebook`), checked field by field.

The metadata is hand-editable JSON: a field of the wrong type is the notebook's fault, said as
one line naming the field, not an AttributeError from deep inside the graph builder.

Besides names and the image, Kale's metadata sets what every step gets (kale/pipeline.py
PipelineConfig, kale/processors/nbprocessor.py NotebookConfig): `volumes` (existing claims
mounted at `mount_point`, with `KALE_VOLUME_<NAME>` set to it when `expose_as_env_var`),
`steps_defaults` (step tags such as label:, annotation:, limit:, image:, cache:, secret:) and
`enable_caching`. They are read as step tags the notebook's every step carries before its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jupyter_mlops.errors import NotebookError
from jupyter_mlops.notebook.model import VolumeMount
from jupyter_mlops.notebook.tags import CellTags, TagValueError, parse_tags

KEY = "kubeflow_notebook"
_TEXT_FIELDS = ("pipeline_name", "pipeline_description", "docker_image", "base_image",
                "experiment_name")
# The step tags Kale takes in steps_defaults; the others place cells, not configure steps.
_DEFAULT_TAGS = ("label:", "annotation:", "limit:", "image:", "cache:", "secret:")
# Kale's dict form of steps_defaults: the key -> the tag each entry becomes.
_DEFAULT_MAPPINGS = {"labels": "label", "annotations": "annotation", "limits": "limit"}


@dataclass(frozen=True)
class KaleMetadata:
    """The fields of Kale's metadata the graph uses; `present` when the notebook has any.

    `step_defaults` holds what every step gets from the metadata, as parsed step tags."""

    present: bool = False
    pipeline_name: str | None = None
    description: str | None = None
    image: str | None = None
    experiment: str | None = None
    step_defaults: CellTags = field(default_factory=CellTags)


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
        step_defaults=step_defaults(meta, path),
    )


def step_defaults(meta: dict[str, Any], path: str) -> CellTags:
    """What Kale's metadata gives every step, as the tags that would say it on a cell."""
    tags: list[tuple[str, str]] = []  # (field that says it, tag)
    tags += _volume_tags(meta.get("volumes"), path)
    tags += _default_tags(meta.get("steps_defaults"), path)
    caching = meta.get("enable_caching", True)
    if not isinstance(caching, bool):
        raise NotebookError(path, f"metadata '{KEY}.enable_caching' must be true or false, not "
                                  f"{json_kind(caching)}")
    if not caching and not any(tag.startswith("cache:") for _, tag in tags):
        tags.append((f"{KEY}.enable_caching", "cache:disabled"))
    found = CellTags()
    for where, tag in tags:
        try:
            parsed = parse_tags([tag])
        except TagValueError as error:
            raise NotebookError(path, f"metadata {where!r}: {error}") from None
        _merge(found, parsed, where, path)
    env = _volume_env(meta.get("volumes") or [], path)
    if env:
        found.mappings["env"] = env
    return found


def _volume_tags(volumes: Any, path: str) -> list[tuple[str, str]]:
    """Kale mounts each volume of type `pvc`, an existing claim, in every step."""
    if volumes is None:
        return []
    if not isinstance(volumes, list):
        raise NotebookError(path, f"metadata '{KEY}.volumes' must be a list of volumes, not "
                                  f"{json_kind(volumes)}")
    tags = []
    for number, volume in enumerate(volumes):
        where = f"{KEY}.volumes[{number}]"
        if not isinstance(volume, dict):
            raise NotebookError(path, f"metadata {where!r} must be an object, not "
                                      f"{json_kind(volume)}")
        for name in ("name", "mount_point", "type"):
            if not isinstance(volume.get(name), str):
                raise NotebookError(path, f"metadata '{where}.{name}' must be a string, not "
                                          f"{json_kind(volume.get(name))}")
        if volume["type"] != "pvc":
            raise NotebookError(path, f"metadata {where!r}: a volume of type "
                                      f"{volume['type']!r} is one Kale creates for the run; "
                                      "jupyter-mlops mounts existing claims: create the claim "
                                      "and give the volume type 'pvc'")
        tags.append((where, f"volume:{volume['name']}:{volume['mount_point']}"))
    return tags


def _volume_env(volumes: list[dict[str, Any]], path: str) -> dict[str, str]:
    """KALE_VOLUME_<NAME> set to the mount point of each volume with `expose_as_env_var`;
    Kale refuses two volumes whose names give one variable (kale/compiler.py
    to_kale_env_var_name, _check_unique_volume_env_vars)."""
    env: dict[str, str] = {}
    owner: dict[str, str] = {}
    for number, volume in enumerate(volumes):
        if not volume.get("expose_as_env_var"):
            continue
        name = volume_env_name(volume["name"])
        if name in owner:
            raise NotebookError(path, f"metadata '{KEY}.volumes[{number}]': volumes "
                                      f"{owner[name]!r} and {volume['name']!r} would both set "
                                      f"{name}; rename one claim")
        owner[name], env[name] = volume["name"], volume["mount_point"]
    return env


def volume_env_name(claim: str) -> str:
    """The environment variable Kale sets to a volume's mount point: KALE_VOLUME_RAW_DATA."""
    return "KALE_VOLUME_" + re.sub("[^A-Za-z0-9]", "_", claim).upper()


def _default_tags(defaults: Any, path: str) -> list[tuple[str, str]]:
    """Kale's steps_defaults: a list of step tags, or {"labels": {..}, "annotations": {..},
    "limits": {..}}."""
    where = f"{KEY}.steps_defaults"
    if defaults is None:
        return []
    if isinstance(defaults, dict):
        return [(f"{where}.{key}", f"{_DEFAULT_MAPPINGS[key]}:{name}:{value}")
                for key, mapping in _mappings(defaults, where, path).items()
                for name, value in mapping.items()]
    if not isinstance(defaults, list) or not all(isinstance(t, str) for t in defaults):
        raise NotebookError(path, f"metadata {where!r} must be a list of step tags such as "
                                  f"\"label:team:ml\", not {json_kind(defaults)}")
    for number, tag in enumerate(defaults):
        if not tag.startswith(_DEFAULT_TAGS):
            raise NotebookError(path, f"metadata '{where}[{number}]': {tag[:60]!r} is not a "
                                      f"step setting; Kale takes {', '.join(_DEFAULT_TAGS)}")
    return [(f"{where}[{number}]", tag) for number, tag in enumerate(defaults)]


def _mappings(defaults: dict[str, Any], where: str, path: str) -> dict[str, dict[str, Any]]:
    for key, mapping in defaults.items():
        if key not in _DEFAULT_MAPPINGS or not isinstance(mapping, dict):
            raise NotebookError(path, f"metadata '{where}.{key}' is not one of Kale's "
                                      f"{', '.join(_DEFAULT_MAPPINGS)} objects")
    return defaults


def _merge(found: CellTags, parsed: CellTags, where: str, path: str) -> None:
    """Add one entry's settings; two volumes at one path, or two secrets for one variable,
    would clash in the pod."""
    for key, value in parsed.options.items():
        present = found.options.get(key)
        if isinstance(value, tuple) and isinstance(present, tuple):
            slots = {_slot(item) for item in present}
            clash = next((_slot(item) for item in value if _slot(item) in slots), None)
            if clash:
                raise NotebookError(path, f"metadata {where!r}: {clash} is already set")
            value = (*present, *value)
        found.options[key] = value
    for key, mapping in parsed.mappings.items():
        found.mappings.setdefault(key, {}).update(mapping)


def _slot(item: Any) -> str:
    """Where a volume or secret lands in the pod."""
    if isinstance(item, VolumeMount):
        return f"mount path {item.path!r}"
    return f"environment variable {item.env!r}"


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
