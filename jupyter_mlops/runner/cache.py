"""Step cache keys, the on-disk cache of step results, and the plan: which steps a run
executes and how (from the cache when it can, always, or only from it).

A key covers what can change a step's result: its generated notebook code (setup cells included),
the parameters it reads, the content hashes of its inputs, the Python version, the versions of the
distributions providing the modules it imports and, for modules that no distribution provides
(the project's own `.py` files next to the notebook), the hash of their source.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from importlib.machinery import PathFinder
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops._version import __version__
from jupyter_mlops.errors import RunnerError, did_you_mean
from jupyter_mlops.steps.serializers import file_digest

if TYPE_CHECKING:
    from jupyter_mlops.notebook import StepGraph

ENTRY_FILE = "entry.json"
INDEX_FILE = "distributions.json"  # module -> distributions, see Versions
QUARANTINE = "quarantine"  # damaged entries, moved aside by StepCache.quarantine


@dataclass(frozen=True)
class Environment:
    """What the key takes from the environment."""

    python: str
    modules: Mapping[str, str]  # top-level module -> "dist==version" or "file:<sha256>"


class Versions:
    """Installed distributions, read once per run: an upgrade between two runs is seen.

    Mapping modules to distributions reads every installed package's file list (about half a
    second), so the map is kept in `index_file`, stamped with the modification times of the
    folders on `sys.path`: installing, upgrading or removing a package renames a `.dist-info`
    folder, which changes its parent's time and so the stamp.
    """

    def __init__(self, index_file: Path | None = None) -> None:
        self.index_file = index_file
        self._distributions: dict[str, list[str]] | None = None
        self._versions: dict[str, str] = {}

    def distributions(self, module: str) -> list[str]:
        """The distributions providing top-level `module` (none for the project's own files)."""
        if self._distributions is None:
            self._distributions = self._load_index()
        return sorted(set(self._distributions.get(module, ())))

    def _load_index(self) -> dict[str, list[str]]:
        stamp = _path_stamp()
        if self.index_file is not None:
            try:
                saved = json.loads(self.index_file.read_text())
                if saved.get("stamp") == stamp:
                    return dict(saved["distributions"])
            except (OSError, ValueError, KeyError):
                pass
        found = {module: list(dists) for module, dists in metadata.packages_distributions().items()}
        if self.index_file is not None:
            self.index_file.parent.mkdir(parents=True, exist_ok=True)
            # A staging file of its own per writer: runs in other processes or threads of
            # this one may write the same index at the same time.
            with tempfile.NamedTemporaryFile("w", dir=self.index_file.parent, suffix=".tmp",
                                             prefix="distributions.", delete=False) as staging:
                json.dump({"stamp": stamp, "distributions": found}, staging)
            os.replace(staging.name, self.index_file)
        return found

    def version(self, distribution: str) -> str:
        if distribution not in self._versions:
            try:
                self._versions[distribution] = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                self._versions[distribution] = "?"
        return self._versions[distribution]


def _path_stamp() -> list[list[Any]]:
    stamp: list[list[Any]] = []
    for entry in sys.path:
        try:
            stamp.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            stamp.append([entry, None])
    return stamp


def environment(imports: list[str], search_path: list[str],
                versions: Versions | None = None) -> Environment:
    """The versions behind `imports`: a distribution's version, else a local module's hash."""
    versions = versions or Versions()
    modules: dict[str, str] = {}
    for module in sorted(set(imports)):
        if module in sys.stdlib_module_names or module in sys.builtin_module_names:
            continue  # covered by the Python version
        dists = versions.distributions(module)
        if dists:
            modules[module] = ",".join(f"{d}=={versions.version(d)}" for d in dists)
        else:
            modules[module] = _local_module_hash(module, search_path)
    return Environment(f"{sys.implementation.name}-{sys.version.split()[0]}", modules)


def step_key(code: list[str], parameters: Mapping[str, Any], inputs: Mapping[str, str],
             env: Environment) -> str:
    """The cache key of one step: a sha256 over everything its result depends on."""
    document = {
        "runner": __version__,
        "code": code,
        "parameters": {name: _canonical(v) for name, v in sorted(parameters.items())},
        "inputs": dict(sorted(inputs.items())),
        "python": env.python,
        "modules": dict(sorted(env.modules.items())),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    # 1 and 1.0 are equal in JSON but not as parameter values; keep the type in the key.
    return [type(value).__name__, value]


def _local_module_hash(module: str, search_path: list[str]) -> str:
    """A hash of a module's source found on `search_path` without importing it, or "missing"."""
    spec = PathFinder.find_spec(module, search_path)
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return "missing"
    origin = Path(spec.origin)
    files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(origin.parent)).encode())
        digest.update(file.read_bytes())
    return f"file:{digest.hexdigest()}"


class StepCache:
    """Results of successful steps under `root/<key>/`: data/, metrics.json, step.ipynb.

    Entries are copies (never hard links to a run folder's files, which a user may edit), made
    read-only, and `entry.json` records the sha256 of every file: a reuse copies the files out
    and checks the copies, so an entry changed or damaged on disk is found, never served.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def lookup(self, key: str) -> Path | None:
        """The entry for `key` if a complete one exists."""
        entry = self.root / key
        return entry if (entry / ENTRY_FILE).is_file() else None

    def store(self, key: str, data_dir: Path, metrics: Path, notebook: Path,
              info: Mapping[str, Any]) -> Path:
        """Copy a step's results in, replacing an older entry (`--no-cache` rewrites entries);
        written aside and renamed, so readers never see half."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / key
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=self.root))
        try:
            copy_tree(data_dir, staging / "data")
            copy_file(metrics, staging / "metrics.json")
            copy_file(notebook, staging / "step.ipynb")
            files = {path: file_digest(staging / path) for path in _files(staging)}
            for path in files:
                (staging / path).chmod(0o444)
            (staging / ENTRY_FILE).write_text(json.dumps(dict(info) | {"files": files},
                                                         indent=1, default=str))
            self._discard(final)
            os.rename(staging, final)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another run stored it meanwhile: fine
        return final

    def restore(self, entry: Path, data_dir: Path, metrics: Path, notebook: Path) -> str | None:
        """Copy an entry's files out; None if every copy matches its recorded digest, else
        what is wrong (the copies are then removed)."""
        try:
            files = json.loads((entry / ENTRY_FILE).read_text())["files"]
            copy_tree(entry / "data", data_dir)
            copy_file(entry / "metrics.json", metrics)
            copy_file(entry / "step.ipynb", notebook)
        except (OSError, ValueError, KeyError, TypeError) as error:
            problem: str | None = f"unreadable ({type(error).__name__}: {error})"
        else:
            problem = _mismatch(files, data_dir, metrics, notebook)
        if problem is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
            metrics.unlink(missing_ok=True)
            notebook.unlink(missing_ok=True)
        return problem

    def quarantine(self, entry: Path) -> Path:
        """Move a damaged entry aside (kept for a look, never reused); returns where."""
        target = self.root / QUARANTINE / f"{entry.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(entry, target)
        except OSError:
            self._discard(entry)
        return target

    def _discard(self, entry: Path) -> None:
        if entry.exists():
            trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=self.root))
            try:
                os.rename(entry, trash / "entry")
            except OSError:
                pass  # another run moved it first
            shutil.rmtree(trash, ignore_errors=True)


def _files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def _mismatch(recorded: Mapping[str, str], data_dir: Path, metrics: Path,
              notebook: Path) -> str | None:
    """The first copied file that differs from its digest, or that is extra or missing."""
    extra = {f"data/{path}" for path in _files(data_dir)} - set(recorded)
    if extra:
        return f"{sorted(extra)[0]} was added"
    named = {"metrics.json": metrics, "step.ipynb": notebook}
    for path, expected in recorded.items():
        copy = named.get(path) or data_dir.joinpath(*Path(path).parts[1:])
        if not copy.is_file():
            return f"{path} is missing"
        if file_digest(copy) != expected:
            return f"{path} was changed or damaged"
    return None


def copy_file(source: Path, target: Path) -> None:
    """Copy `source`'s bytes to a new, writable `target` (never a link: they must not share)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    shutil.copyfile(source, target)


def copy_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return
    for item in source.iterdir():
        if item.is_dir():
            copy_tree(item, target / item.name)
        else:
            copy_file(item, target / item.name)


# --- the plan ------------------------------------------------------------------------------

CACHE = "cache"  # reuse a cached result when the key matches, else run
FORCE = "force"  # run whatever the cache holds
REUSE = "reuse"  # must come from the cache (upstream of --only)


def make_plan(graph: StepGraph, cache: bool = True, from_step: str | None = None,
              only: str | None = None) -> dict[str, str]:
    """Step name -> mode, in topological order; steps left out do not run."""
    if from_step and only:
        raise RunnerError("--from and --only cannot be combined")
    for name in (from_step, only):
        if name is not None and name not in {s.name for s in graph.steps}:
            names = [s.name for s in graph.steps]
            hint = did_you_mean(name, names)
            raise RunnerError(f"no step named {name!r} (steps: {', '.join(names)})"
                              + (f"; {hint}" if hint else ""))

    def normal(name: str) -> str:
        return CACHE if cache and graph.step(name).options.cache else FORCE

    if only:
        wanted = {only: FORCE} | {name: REUSE for name in graph.upstream_of(only)}
    elif from_step:
        forced = {from_step} | graph.downstream(from_step)
        needed = set(forced)
        for name in forced:
            needed |= graph.upstream_of(name)
        wanted = {name: FORCE if name in forced else normal(name) for name in needed}
    else:
        wanted = {step.name: normal(step.name) for step in graph.steps}
    return {step.name: wanted[step.name] for step in graph.order() if step.name in wanted}
