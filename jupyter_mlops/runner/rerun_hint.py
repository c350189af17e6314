"""Recognise an unchanged re-run before the notebook is even read.

The runner boots its first kernel at once, while it loads and reads the notebook, because a cold
run waits for that kernel. A re-run whose every step comes from the cache needs no kernel, and
booting one would only slow it. A re-run is recognised by its inputs as given: the notebook
file's bytes, the parameters, the params file's bytes, the step selection and the Python
version. After a run whose steps all ended ok and were all cached for later, those inputs are
remembered under `<out>/cache/reruns/`.

It is a hint, never a decision: a helper module or a package that changed under unchanged
inputs makes a step run anyway (its kernel then starts when it is needed, as it always may),
and a new input only costs a kernel started for nothing.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from jupyter_mlops.runner.options import RunOptions

FOLDER = "reruns"
MAX_BYTES = 64 * 2**20  # inputs are hashed only up to this size: a hint is not worth more


def fingerprint(notebook: str | Path, options: RunOptions) -> str | None:
    """A digest of the run's inputs as given; None when a file cannot be read."""
    digest = hashlib.sha256()
    try:
        for path in (notebook, options.params_file):
            if path and not _small_file(Path(path)):
                return None  # a FIFO, a device, a huge file: the run itself refuses it
            digest.update(Path(path).read_bytes() if path else b"-")
    except OSError:
        return None  # the run itself reports it
    given = sorted(options.parameters.items())
    digest.update(repr((given, list(options.cli_parameters), options.from_step, options.only,
                        sys.version)).encode())
    return digest.hexdigest()


def _small_file(path: Path) -> bool:
    return path.is_file() and path.stat().st_size <= MAX_BYTES


def seen(cache_root: Path, key: str | None) -> bool:
    return key is not None and (cache_root / FOLDER / key).is_file()


def remember(cache_root: Path, key: str | None) -> None:
    if key is None:
        return
    folder = cache_root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / key).touch()
