"""Options of a compilation: what the command line and `compile_notebook` accept."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupyter_mlops.runner.grid import Grid

# The image a step runs in when neither the notebook nor the caller names one: the Python
# minor version the packages were resolved and pinned in.
DEFAULT_IMAGE = f"python:{sys.version_info.major}.{sys.version_info.minor}"
# The default accelerator for `resources:gpu=N`.
DEFAULT_ACCELERATOR = "nvidia.com/gpu"


@dataclass(frozen=True)
class CompileOptions:
    """How to compile a notebook. Every field has a default that suits a cluster."""

    name: str | None = None  # pipeline name; the notebook's DNS-safe name by default
    image: str | None = None  # base image; else the notebook's (Kale's docker_image), else DEFAULT
    packages: tuple[str, ...] = ()  # extra pip requirements for every step
    install_packages: bool = True  # False: components pip-install nothing (kfp.local, baked images)
    accelerator: str = DEFAULT_ACCELERATOR
    pip_index_urls: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # environment variables for every step
    sweep: Grid | None = None  # fan the grid out with dsl.ParallelFor (kfp/sweep.py)
    parallelism: int | None = None  # combinations running at once; None: as many as KFP allows
