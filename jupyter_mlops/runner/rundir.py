"""Where a pipeline run writes: `<out>/runs/<run-id>/` with the executed step notebooks.

Layout of one run (`out` defaults to `.mlops`)::

    <out>/runs/<run-id>/<step>.ipynb       the executed step notebook
    <out>/runs/<run-id>/data/<step>/       the step's output values (serializers)
    <out>/runs/<run-id>/metrics/<step>.json
    <out>/runs/<run-id>/logs/              kernel stderr, one file per kernel
    <out>/runs/<run-id>/run.json           parameters, step states, cache keys
    <out>/cache/<key>/                     results reused by later runs
    <out>/cache/reruns/<digest>            inputs of runs a re-run takes all from the cache

Paths come from the run id and step names (DNS-safe by the tag grammar), never from parameter
values. A run id is fresh per run, so two runs at once never share files.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_OUT = ".mlops"


def new_run_id() -> str:
    """Sortable by start time, unique thanks to the random suffix."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def cache_root(out: str | Path | None = None) -> Path:
    """Where the results that runs under `out` may reuse are kept."""
    return Path(out or DEFAULT_OUT).resolve() / "cache"


@dataclass(frozen=True)
class RunFolder:
    root: Path
    run_id: str

    @classmethod
    def create(cls, out: str | Path | None = None) -> RunFolder:
        base = Path(out or DEFAULT_OUT).resolve()
        run_id = new_run_id()
        root = base / "runs" / run_id
        root.mkdir(parents=True, exist_ok=False)  # a clash means a second run: refuse
        for sub in ("data", "metrics", "logs"):
            (root / sub).mkdir()
        return cls(root, run_id)

    @property
    def cache_root(self) -> Path:
        return self.root.parent.parent / "cache"

    def notebook(self, step: str) -> Path:
        return self.root / f"{step}.ipynb"

    def data(self, step: str) -> Path:
        return self.root / "data" / step

    def metrics(self, step: str) -> Path:
        return self.root / "metrics" / f"{step}.json"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def write_summary(self, summary: dict[str, Any]) -> Path:
        path = self.root / "run.json"
        staging = path.with_suffix(".json.tmp")
        staging.write_text(json.dumps(summary, indent=1, default=str))
        os.replace(staging, path)
        return path
