"""The pip requirements of each step, resolved from the installed environment.

A module maps to the distributions that ship it (`importlib.metadata.packages_distributions`),
pinned to the installed versions. Names are never guessed: a module no installed distribution
provides is local code (or the standard library) and is not pip-installed.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path

from jupyter_mlops.notebook import Step, StepGraph
from jupyter_mlops.steps.serializers import SERIALIZER_MODULES

# What every step needs to execute its notebook and render it for the KFP UI.
RUNTIME_DISTRIBUTIONS = ("papermill", "ipykernel", "nbconvert")
# What a step that passes values needs whatever their type: the serializers pickle with
# cloudpickle where it is installed (functions and classes defined in the notebook), and
# reading such a pickle needs it too. Only installed here -> only pinned here.
VALUE_MODULES = ("cloudpickle",)


# A top-level module in a RECORD line: a package folder, a module, or an extension module.
_RECORD_TOP_LEVEL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:/|\.py,|\.[^,/]*\.(?:so|pyd),)",
                               re.MULTILINE)


@lru_cache(maxsize=1)
def _module_index() -> Mapping[str, tuple[metadata.Distribution, ...]]:
    """Top-level module -> installed distributions that ship it.

    What `metadata.packages_distributions()` answers, about ten times faster: RECORD files
    are searched as text rather than parsed into paths (a quarter of a second per command
    here). tests/kfp/test_packages.py checks both agree.
    """
    index: dict[str, list[metadata.Distribution]] = {}
    for dist in metadata.distributions():
        declared = dist.read_text("top_level.txt")
        modules = (declared.split() if declared
                   else _RECORD_TOP_LEVEL.findall(dist.read_text("RECORD") or ""))
        for module in (set(modules) | set(_editable_modules(dist))) - {"__pycache__"}:
            index.setdefault(module, []).append(dist)
    return {module: tuple(dists) for module, dists in index.items()}


def _editable_modules(dist: metadata.Distribution) -> list[str]:
    """The top-level modules of an editable install (`pip install -e`), whose RECORD lists
    no module, only a .pth naming the source folder (hatchling, pdm, flit) or a setuptools
    finder mapping each module to its folder. Others' (direct_url.json not editable): none."""
    try:
        editable = json.loads(dist.read_text("direct_url.json") or "{}")["dir_info"]["editable"]
    except (ValueError, KeyError, TypeError):
        editable = False
    if editable is not True:
        return []
    modules: list[str] = []
    for file in dist.files or []:
        if file.suffix == ".pth" or _FINDER.fullmatch(file.name):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            modules += _finder_modules(text) if file.suffix == ".py" else _pth_modules(text)
    return modules


_FINDER = re.compile(r"__editable___.+_finder\.py")  # setuptools' editable finder module
_MAPPING = re.compile(r"^MAPPING\b[^=]*=\s*(\{.*?\})\s*$", re.MULTILINE | re.DOTALL)


def _finder_modules(text: str) -> list[str]:
    found = _MAPPING.search(text)
    try:
        return list(ast.literal_eval(found[1])) if found else []
    except (ValueError, SyntaxError):
        return []


def _pth_modules(text: str) -> list[str]:
    """Packages and modules in the folders a .pth puts on sys.path (its import lines run code,
    not paths)."""
    folders = [Path(line.strip()) for line in text.splitlines()
               if line.strip() and not line.startswith(("#", "import ", "import\t"))]
    return [entry.name if entry.is_dir() else entry.stem
            for folder in folders if folder.is_dir() for entry in folder.iterdir()
            if (entry.stem if entry.suffix == ".py" else entry.name).isidentifier()
            and ((entry / "__init__.py").is_file() or entry.suffix == ".py")]


@cache
def module_distributions(module: str) -> tuple[str, ...]:
    """The names of the installed distributions that provide top-level `module`."""
    return tuple(sorted({dist.metadata["Name"] for dist in _module_index().get(module, ())}))


@cache
def pinned(distribution: str) -> str:
    """`name==installed version`, or the bare name when it is not installed here."""
    try:
        return f"{distribution}=={metadata.version(distribution)}"
    except metadata.PackageNotFoundError:
        return distribution


@cache
def mlflow_requirement() -> str:
    """What a step pip-installs to log to MLflow when its image lacks mlflow: the client-only
    distribution, at the version installed here."""
    for name in ("mlflow-skinny", "mlflow"):
        try:
            return f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return "mlflow-skinny"


def distributions_for(modules: Iterable[str]) -> list[str]:
    """The distributions providing `modules`; standard-library and local modules give none."""
    found: set[str] = set()
    for module in modules:
        if module not in sys.stdlib_module_names:
            found.update(module_distributions(module))
    return sorted(found, key=str.lower)


def local_modules(modules: Iterable[str]) -> list[str]:
    """Imported modules that neither the standard library nor an installed distribution provides."""
    return sorted(m for m in set(modules)
                  if m not in sys.stdlib_module_names and m not in _module_index())


def step_modules(graph: StepGraph, step: Step) -> list[str]:
    """The modules a step's container needs: what its own cells (and setup) import, plus what
    the serializers need for the values it writes, and for those it reads from upstream steps
    (a DataFrame from `load` needs pandas and pyarrow in `train` even if `train` never imports
    pandas itself)."""
    modules = list(step.imports)
    if step.outputs or step.inputs:
        modules += list(VALUE_MODULES)
    if step.outputs:
        modules += _serializer_needs(step.imports)
    for producer in sorted(set(step.inputs.values())):
        modules += _serializer_needs(graph.step(producer).imports)
    return list(dict.fromkeys(modules))


def _serializer_needs(imports: Iterable[str]) -> list[str]:
    return [needed for module in imports for needed in SERIALIZER_MODULES.get(module, ())]


def step_requirements(graph: StepGraph, step: Step, extra: Iterable[str] = ()) -> list[str]:
    """Pinned requirements for one step: the runtime, its modules (step_modules), and `extra`."""
    modules = step_modules(graph, step)
    names = set(RUNTIME_DISTRIBUTIONS) | set(distributions_for(modules))
    requirements = {pinned(name) for name in names} | set(extra)
    return sorted(requirements, key=str.lower)
