"""Options of a local pipeline run: what `jupyter-mlops run` and `run_pipeline` accept."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class RunOptions:
    """How to run a notebook as a pipeline. Every field has a default that suits a first run.

    `parameters` are typed values, `cli_parameters` (NAME, TEXT) pairs as `-p` gives them; both
    override `params_file`.
    """

    parameters: Mapping[str, Any] = field(default_factory=dict)  # typed parameter values
    params_file: str | Path | None = None  # a YAML file of name: value parameters
    cli_parameters: tuple[tuple[str, str], ...] = ()  # (NAME, TEXT) pairs read by declared type
    jobs: int | None = None  # steps running at the same time; None: the CPU count
    cache: bool = True  # False: run every step, even when a cached result matches
    from_step: str | None = None  # run this step and everything after it, upstream from cache
    only: str | None = None  # run only this step, its inputs from cache
    out: str | Path | None = None  # folder for runs/ and cache/; None: ./.mlops
    track: bool = True  # log the pipeline and its steps as MLflow runs
    tracking_uri: str | None = None  # the MLflow store; None: the configured one
    quiet: bool = False  # print no progress lines
    stream: IO[str] | None = None  # where progress lines go; None: stderr
    listeners: tuple[Any, ...] = ()  # told of each step as it starts and settles (a Listener)
    fresh_kernels: bool = False  # a new kernel per step instead of a reset, reused one
    wait_for_store: bool = True  # False: return at once, a sender process delivers the records
    report: str | Path | None = None  # write a Markdown summary here (runner/report.py), for CI

    @property
    def workers(self) -> int:
        """How many steps may run at once."""
        return self.jobs or os.cpu_count() or 1
