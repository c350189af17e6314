"""Import kfp's compiler side without its API client (kubernetes, google-auth: ~0.5 s).

kfp's `__init__` imports `kfp.client` unless `_KFP_RUNTIME=true` (how its own components
start). We import the package that way, then give it a module `__getattr__` so `kfp.Client`
still works on first use, for anyone in the same process.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

_LAZY = {"Client": ("kfp.client", "Client"), "components": ("kfp.components", None),
         "dsl": ("kfp.dsl", None), "compiler": ("kfp.compiler", None)}


def _lazy_attribute(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'kfp' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def import_kfp() -> ModuleType:
    """The `kfp` package, imported without its client when nothing imported it yet."""
    if "kfp" in sys.modules:
        return sys.modules["kfp"]
    previous = os.environ.get("_KFP_RUNTIME")
    os.environ["_KFP_RUNTIME"] = "true"
    try:
        import kfp
    finally:
        if previous is None:
            del os.environ["_KFP_RUNTIME"]
        else:
            os.environ["_KFP_RUNTIME"] = previous
    kfp.__dict__.setdefault("__getattr__", _lazy_attribute)
    return kfp


import_kfp()
from kfp import dsl  # noqa: E402 -- after import_kfp: kfp.dsl needs _KFP_RUNTIME unset

__all__ = ["dsl", "import_kfp"]
