"""Values as MLflow datasets: their digest, schema and profile, and the dataset inputs they become.

A tracked cell's `--inputs` and a pipeline step's input and output values are logged as dataset
inputs of their run (MLflow's lineage: the run page's "Datasets used", `run.inputs`). What
describes a value is computed where the value is, cheaply and without importing mlflow (seconds
in a kernel): MLflow's own digest of a DataFrame or an array (mlflow.data.digest_utils, whose
string-column scan is kept to the columns that can hold strings), its schema in MLflow's
colspec/tensorspec JSON (mlflow.types' type names) and its profile, as `from_pandas` and
`from_numpy` record them. A step's values keep their digest from the manifest the serializer
wrote (its sha256), not hashed again. Only `log_datasets`, in the sender or a KFP step, imports
mlflow. The standard library at module level: this package ships whole to KFP containers.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from jupyter_mlops.steps import mlflow_vocabulary as vocab

MAX_ROWS = 10000  # rows (or array items) MLflow's digest hashes: digest_utils.MAX_ROWS
DIGEST_CHARS = 32  # MLflow keeps a dataset's digest in 36 characters: a sha256 is cut
SOURCE_CODE, SOURCE_LOCAL = "code", "local"  # MLflow's CodeDatasetSource, local file source


class UnsupportedValue(TypeError):
    """A value MLflow has no dataset for here (not a DataFrame, Series or numpy array)."""


@dataclass(frozen=True)
class DatasetDescription:
    """One value as MLflow's `Dataset` entity holds it, and the context it was used in
    (`vocab.CONTEXT_*`). `schema` and `profile` are JSON text, as MLflow stores them."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None
    context: str = vocab.CONTEXT_TRAINING
    tags: dict[str, str] = field(default_factory=dict)  # more input tags (a step value's sha256)

    @property
    def rows(self) -> int | None:
        """The row count the profile records (a DataFrame's rows, an array's first axis)."""
        return rows(self.profile)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> DatasetDescription:
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__ if k in obj})


def rows(profile: str | dict[str, Any] | None) -> int | None:
    """Rows from an MLflow dataset profile: `num_rows` (pandas), `features_shape[0]` (numpy)."""
    try:
        found = json.loads(profile) if isinstance(profile, str) else profile or {}
        if "num_rows" in found:
            return int(found["num_rows"])
        shape = found.get("features_shape")
        return int(shape[0]) if shape else None
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return None


# --- a value in memory (a tracked cell's kernel) ---------------------------------------------

def describe(name: str, value: Any, notebook: str | None = None,
             context: str = vocab.CONTEXT_TRAINING) -> DatasetDescription:
    """`value` as the dataset `mlflow.data.from_pandas`/`from_numpy` would log, its source the
    notebook's code. UnsupportedValue for any other type."""
    value = _as_frame(value)
    if _is_frame(value):
        digest = pandas_digest(value)
    elif _is_array(value):
        digest = numpy_digest(value)
    else:
        raise UnsupportedValue(f"{name!r} is a {_type_name(value)}, not a pandas DataFrame or "
                               "Series or a numpy array")
    schema, profile = facts(value)
    tags = {vocab.SOURCE_NAME_TAG: notebook or "", vocab.SOURCE_TYPE_TAG: "NOTEBOOK"}
    return DatasetDescription(name, digest, SOURCE_CODE, json.dumps({"tags": tags}), schema,
                              profile, context)


def facts(value: Any) -> tuple[str | None, str | None]:
    """(schema, profile) JSON of a DataFrame, Series or array; (None, None) for other values."""
    value = _as_frame(value)
    profile: dict[str, Any]
    if _is_frame(value):
        profile = {"num_rows": len(value), "num_elements": int(value.size)}
        return _frame_schema(value), json.dumps(profile)
    if _is_array(value):
        profile = {"features_shape": list(value.shape), "features_size": int(value.size),
                   "features_nbytes": int(value.nbytes)}
        return _array_schema(value), json.dumps(profile)
    return None, None


def pandas_digest(frame: Any) -> str:
    """mlflow.data.digest_utils.compute_pandas_digest's digest: the first MAX_ROWS rows of the
    string and numeric columns, the row count and the column names. MLflow finds the string
    columns by mapping `type` over every cell (about a second at 100,000 x 50); only object
    and string columns can hold strings, so only those are looked at."""
    import numpy as np
    import pandas as pd

    head = frame.head(MAX_ROWS)
    textual = {c for c, dtype in frame.dtypes.items() if dtype.kind == "O"}  # str dtype too
    strings = head.columns[[c in textual and bool(frame[c].map(type).eq(str).all())
                            for c in frame.columns]]
    wanted = strings.union(head.select_dtypes(include=[np.number]).columns)
    return _md5([pd.util.hash_pandas_object(head[wanted]).values, np.int64(len(frame))]
                + [str(c).encode() for c in frame.columns])


def numpy_digest(array: Any) -> str:
    """mlflow.data.digest_utils.compute_numpy_digest's digest of a features array: the same
    first items of the flattened array, from the first rows only (flattening the whole array
    copies it: 40 MB for 100,000 x 50)."""
    import math

    import numpy as np
    import pandas as pd

    per_row = math.prod(array.shape[1:]) or 1
    items = array[: -(-MAX_ROWS // per_row)].ravel()[:MAX_ROWS]
    try:
        elements: list[Any] = [pd.util.hash_array(items)]
    except TypeError:
        elements = [np.int64(items.size)]
    return _md5(elements + [np.int64(n) for n in array.shape])


def _md5(elements: list[Any]) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    for element in elements:
        md5.update(element)
    return md5.hexdigest()[:8]


# --- a value in a file (a pipeline step's manifest) ------------------------------------------

def from_manifest(manifest: dict[str, Any], path: str, context: str) -> DatasetDescription:
    """A step's value, as its manifest (steps/serializers.py) records it: the digest is the
    file's sha256 the runner keys its cache on, cut to MLflow's length; the full one is a tag."""
    sha = str(manifest.get("sha256") or "")
    return DatasetDescription(str(manifest.get("name") or ""), sha[:DIGEST_CHARS] or "unknown",
                              SOURCE_LOCAL, json.dumps({"uri": path}), manifest.get("schema"),
                              manifest.get("profile"), context,
                              {vocab.DATASET_SHA256_TAG: sha} if sha else {})


def step_values(values: dict[str, Any], context: str) -> list[DatasetDescription]:
    """Values of a step, `{name: the folder holding it}` (its producer's values folder), as
    their manifests describe them; a value without a readable manifest is left out."""
    from jupyter_mlops.steps.errors import SerializationError
    from jupyter_mlops.steps.serializers import read_manifest

    found = []
    for name, folder in sorted(values.items()):
        try:
            manifest = read_manifest(folder, name)
        except SerializationError:  # the step failed before writing it
            continue
        path = os.path.join(str(folder), str(manifest.get("file") or name))
        found.append(from_manifest(manifest | {"name": name}, os.path.abspath(path), context))
    return found


def folder_values(folder: Any) -> dict[str, Any]:
    """The values a step wrote to its values folder, `{name: folder}`, found by manifests."""
    if not os.path.isdir(folder):
        return {}
    names = [entry[:-5] for entry in os.listdir(folder) if entry.endswith(".json")]
    return {name: folder for name in names if name.isidentifier()}


# --- MLflow (the sender, a KFP step) ---------------------------------------------------------

def log_datasets(client: Any, run_id: str, described: list[DatasetDescription]) -> None:
    """Log the descriptions as dataset inputs of the run; resending is harmless (MLflow keeps
    one dataset per name and digest, and one input of it per run)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    client.log_inputs(run_id, datasets=[
        DatasetInput(Dataset(d.name, d.digest, d.source_type, d.source, d.schema, d.profile),
                     [InputTag(vocab.DATASET_CONTEXT_TAG, d.context)]
                     + [InputTag(k, v) for k, v in sorted(d.tags.items())])
        for d in described])


# --- schemas in MLflow's JSON -----------------------------------------------------------------

def _frame_schema(frame: Any) -> str | None:
    """{"mlflow_colspec": [...]}, as PandasDataset.to_dict writes it; None when a column has a
    type MLflow cannot name (MLflow then logs no schema either)."""
    columns = []
    for name, dtype in frame.dtypes.items():
        kind = _dtype_name(dtype) if dtype.kind != "O" else _object_name(frame[name])
        if kind is None:
            return None
        columns.append({"type": kind, "name": str(name), "required": True})
    return json.dumps({"mlflow_colspec": columns})


def _array_schema(array: Any) -> str | None:
    """{"mlflow_tensorspec": {"features": ..., "targets": null}}, as NumpyDataset writes it."""
    if array.dtype.kind == "O":
        return None
    spec = [{"type": "tensor",
             "tensor-spec": {"dtype": str(array.dtype), "shape": [-1, *array.shape[1:]]}}]
    return json.dumps({"mlflow_tensorspec": {"features": json.dumps(spec), "targets": None}})


def _dtype_name(dtype: Any) -> str | None:
    """mlflow.types.utils._infer_numpy_dtype's type name (pandas' string dtype: "string")."""
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "integer" if size < 4 or (kind == "i" and size == 4) else "long"
    if kind == "f":
        return "float" if size <= 4 else "double"
    if kind == "M":
        return "datetime"
    if kind == "S":
        return "binary"
    return "string" if kind == "U" or "str" in str(dtype).lower() else None


def _object_name(column: Any) -> str | None:
    """An object column's type from its first value, as MLflow infers it from the values."""
    index = column.first_valid_index()
    first = column[index] if index is not None else None
    for kind, name in ((bool, "boolean"), (int, "long"), (float, "double"), (str, "string"),
                       (bytes, "binary")):
        if isinstance(first, kind):
            return name
    return None


def _as_frame(value: Any) -> Any:
    """A Series as the one-column frame MLflow's from_pandas takes."""
    series = _loaded("pandas", "Series")
    return value.to_frame() if series is not None and isinstance(value, series) else value


def _is_frame(value: Any) -> bool:
    frame = _loaded("pandas", "DataFrame")
    return frame is not None and isinstance(value, frame)


def _is_array(value: Any) -> bool:
    array = _loaded("numpy", "ndarray")
    return array is not None and isinstance(value, array) and value.ndim > 0


def _loaded(module: str, attribute: str) -> Any:
    found = sys.modules.get(module)
    return getattr(found, attribute, None) if found is not None else None


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else \
        f"{kind.__module__}.{kind.__qualname__}"
