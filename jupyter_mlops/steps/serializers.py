"""Values on pipeline edges written to files by a serializer chosen by type.

`dump(value, directory, name)` writes `directory/<name>.<ext>` and `directory/<name>.json` (the
manifest: serializer, file, content hash); `load(directory, name)` reads it back. The same module
runs inside step kernels (locally and in KFP components), so it imports heavy libraries lazily and
only recognises a type when its library is already loaded (`sys.modules`): a value cannot be a
DataFrame unless pandas was imported.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_mlops.steps.datasets import facts
from jupyter_mlops.steps.errors import SerializationError

MANIFEST_VERSION = 1

# A data library a step imports -> the modules the built-in serializers need to write or read
# its values (a DataFrame is Parquet: pandas and pyarrow; an estimator is joblib). The KFP
# compiler installs them in the step's image.
SERIALIZER_MODULES: dict[str, tuple[str, ...]] = {
    "pandas": ("pandas", "pyarrow"),
    "numpy": ("numpy",),
    "sklearn": ("sklearn", "joblib"),
}


@dataclass(frozen=True)
class Serializer:
    """How one family of values is written: `accepts` picks it, `dump`/`load` do the I/O."""

    name: str
    ext: str
    accepts: Callable[[Any], bool]
    dump: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


_REGISTRY: list[Serializer] = []


def register(serializer: Serializer, *, first: bool = True) -> None:
    """Add a serializer; by default ahead of the built-ins, so it wins for the types it accepts."""
    _REGISTRY[:] = [s for s in _REGISTRY if s.name != serializer.name]
    _REGISTRY.insert(0 if first else len(_REGISTRY), serializer)


def serializers() -> list[Serializer]:
    return list(_REGISTRY)


def _check_name(name: str) -> None:
    # Names are variable names; checking keeps a crafted name from escaping the directory.
    if not isinstance(name, str) or not name.isidentifier():
        raise SerializationError(str(name), "str", "a value's name must be an identifier")


def dump(value: Any, directory: Path, name: str, *, step: str | None = None) -> Path:
    """Write `value` under `directory` with the first serializer that accepts it and succeeds."""
    _check_name(name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for serializer in _REGISTRY:
        if not _accepts(serializer, value):
            continue
        path = directory / f"{name}.{serializer.ext}"
        try:
            serializer.dump(value, path)
        except Exception as error:  # noqa: BLE001 - the next serializer may manage
            path.unlink(missing_ok=True)
            errors.append(f"{serializer.name}: {type(error).__name__}: {error}")
            continue
        _write_manifest(directory, name, serializer, path, value)
        return path
    raise SerializationError(name, _type_name(value), "; ".join(errors) or "no serializer", step)


def load(directory: Path, name: str) -> Any:
    """Read back a value `dump` wrote."""
    _check_name(name)
    manifest = read_manifest(directory, name)
    serializer = _by_name(manifest["serializer"], name)
    return serializer.load(Path(directory) / manifest["file"])


def load_file(serializer: str, path: Path) -> Any:
    """Read a value file `dump` wrote, given the serializer its manifest names."""
    return _by_name(serializer, Path(path).stem).load(Path(path))


def content_hash(directory: Path, name: str) -> str:
    """The sha256 of the value's file, as recorded when it was written."""
    _check_name(name)
    manifest = read_manifest(directory, name)
    if not isinstance(manifest.get("sha256"), str):
        raise SerializationError(name, "?", f"the manifest in {directory} records no sha256",
                                 action="read")
    return str(manifest["sha256"])


def read_manifest(directory: Path, name: str) -> dict[str, Any]:
    path = Path(directory) / f"{name}.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as error:
        raise SerializationError(name, "?", f"no readable value at {path}: {error}",
                                 action="read") from None


def write_metrics(path: str | Path, values: dict[str, Any]) -> dict[str, float]:
    """Write the numeric values among `values` as a JSON object; returns what was written."""
    numeric = {name: float(v) for name, v in values.items() if _is_number(v)}
    numeric = {name: v for name, v in numeric.items() if math.isfinite(v)}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(numeric, indent=1, sort_keys=True))
    return numeric


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str | bytes)


def _accepts(serializer: Serializer, value: Any) -> bool:
    try:
        return bool(serializer.accepts(value))
    except Exception:  # noqa: BLE001 - a faulty predicate must not hide the other serializers
        return False


def _by_name(name: str, value_name: str) -> Serializer:
    for serializer in _REGISTRY:
        if serializer.name == name:
            return serializer
    raise SerializationError(value_name, "?", f"no serializer named {name!r} is registered")


def _write_manifest(directory: Path, name: str, serializer: Serializer, path: Path,
                    value: Any) -> None:
    manifest = {"version": MANIFEST_VERSION, "name": name, "serializer": serializer.name,
                "file": path.name, "type": _type_name(value), "sha256": file_digest(path)}
    # What MLflow shows of a dataset (steps/datasets.py), taken from the value in hand: the
    # runner logs the step's values as dataset inputs from the manifest, without reading them.
    try:
        schema, profile = facts(value)
    except Exception:  # noqa: BLE001 - an odd frame: the value is written, not described
        schema, profile = None, None
    manifest.update({"schema": schema, "profile": profile} if profile else {})
    (directory / f"{name}.json").write_text(json.dumps(manifest, indent=1))


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (manifests and cache entries record it)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _type_name(value: Any) -> str:
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _loaded(module: str, attribute: str) -> Any:
    """`module.attribute` if the module is already imported, else None."""
    found = sys.modules.get(module)
    return getattr(found, attribute, None) if found is not None else None


# --- the built-in serializers, most specific first -------------------------------------------

def _is_dataframe(value: Any) -> bool:
    frame = _loaded("pandas", "DataFrame")
    return frame is not None and isinstance(value, frame)


def _dump_parquet(value: Any, path: Path) -> None:
    value.to_parquet(path)  # fails on non-string column names or mixed columns: pickle takes over


def _load_parquet(path: Path) -> Any:
    import pandas

    return pandas.read_parquet(path)


def _is_array(value: Any) -> bool:
    array = _loaded("numpy", "ndarray")
    return array is not None and type(value) is array and value.dtype != object


def _dump_npy(value: Any, path: Path) -> None:
    import numpy

    with path.open("wb") as stream:
        numpy.save(stream, value, allow_pickle=False)


def _load_npy(path: Path) -> Any:
    import numpy

    return numpy.load(path, allow_pickle=False)


def _is_estimator(value: Any) -> bool:
    base = _loaded("sklearn.base", "BaseEstimator")
    return base is not None and isinstance(value, base)


def _dump_joblib(value: Any, path: Path) -> None:
    import joblib

    joblib.dump(value, path)


def _load_joblib(path: Path) -> Any:
    import joblib

    return joblib.load(path)


def _dump_pickle(value: Any, path: Path) -> None:
    # cloudpickle (when present) also writes functions and classes defined in the notebook;
    # its output is read back by plain pickle.
    try:
        import cloudpickle as writer
    except ImportError:  # pragma: no cover - cloudpickle ships with mlflow
        writer = pickle
    with path.open("wb") as stream:
        writer.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)


def _load_pickle(path: Path) -> Any:
    with path.open("rb") as stream:
        return pickle.load(stream)


_REGISTRY.extend([
    Serializer("parquet", "parquet", _is_dataframe, _dump_parquet, _load_parquet),
    Serializer("npy", "npy", _is_array, _dump_npy, _load_npy),
    Serializer("joblib", "joblib", _is_estimator, _dump_joblib, _load_joblib),
    Serializer("pickle", "pkl", lambda value: True, _dump_pickle, _load_pickle),
])
