"""MLflow's size and character limits, applied before a value is queued.

MLflow truncates long values silently and rejects bad keys with an exception at write time,
long after the cell ran. Here every adjustment happens in the cell, with a warning that names
the key and says what was done; nothing is cut silently and nothing raises.
"""

from __future__ import annotations

import hashlib
import numbers
import posixpath
import re
import warnings
from dataclasses import dataclass, field

from jupyter_mlops.steps.mlflow_vocabulary import overflow_artifact

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000

_BAD_CHARS = re.compile(r"[^/\w.\- :]")


class LimitWarning(UserWarning):
    """A key or value was changed to fit MLflow's limits."""


def _warn(message: str) -> None:
    warnings.warn(f"jupyter-mlops: {message}", LimitWarning, stacklevel=4)


def clean_key(key: object, kind: str) -> str | None:
    """A key MLflow accepts, or None (with a warning) when none can be made from it."""
    text = str(key)
    fixed = _BAD_CHARS.sub("_", text).strip()
    fixed = posixpath.normpath(fixed).lstrip("/") if fixed else ""
    if fixed in ("", ".") or fixed.startswith(".."):
        _warn(f"{kind} key {text!r} is not a valid MLflow key; not logged")
        return None
    if fixed != text:
        _warn(f"{kind} key {text!r} has characters MLflow rejects; logged as {fixed!r}")
    if len(fixed) > MAX_KEY:
        digest = hashlib.sha1(fixed.encode()).hexdigest()[:8]
        short = f"{fixed[: MAX_KEY - 9]}~{digest}"
        _warn(f"{kind} key {text[:40]!r}... is {len(fixed)} characters (MLflow allows {MAX_KEY});"
              f" logged as {short!r}")
        fixed = short
    return fixed


@dataclass
class Cleaned:
    """Values ready for MLflow, plus full values that went to artifacts instead."""

    values: dict[str, str] = field(default_factory=dict)
    overflow: dict[str, str] = field(default_factory=dict)  # artifact path -> full text


def clean_strings(items: dict[str, object], kind: str, limit: int) -> Cleaned:
    """Params or tags: long values keep a marked prefix; the full text becomes an artifact."""
    out = Cleaned()
    for raw_key, raw_value in items.items():
        key = clean_key(raw_key, kind)
        if key is None:
            continue
        value = str(raw_value)
        if len(value) > limit:
            artifact = overflow_artifact(kind, key)
            marker = f" ...[cut by jupyter-mlops: {len(value)} chars, full value in {artifact}]"
            out.overflow[artifact] = value
            _warn(f"{kind} {key!r} value is {len(value)} characters (MLflow allows {limit});"
                  f" logged the first {limit - len(marker)} with a marker, full value as"
                  f" artifact {artifact!r}")
            value = value[: limit - len(marker)] + marker
        out.values[key] = value
    return out


def as_metric(value: object) -> float | None:
    """A float for MLflow (NaN and inf kept as they are), or None for a non-number."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(value, "ndim", 1) == 0 and getattr(value, "size", 1) == 1:
        try:
            number = item()
        except (TypeError, ValueError):
            return None
        return float(number) if isinstance(number, numbers.Real) else None
    return None


def clean_metrics(items: dict[str, object]) -> dict[str, float]:
    out: dict[str, float] = {}
    for raw_key, raw_value in items.items():
        key = clean_key(raw_key, "metric")
        if key is None:
            continue
        number = as_metric(raw_value)
        if number is None:
            _warn(f"metric {key!r} is not a number ({type(raw_value).__name__}); not logged")
            continue
        out[key] = number
    return out


def is_scalar_number(value: object) -> bool:
    """Numeric scalars a cell binds (bools excluded: flags, not measurements)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return False
    return as_metric(value) is not None
