"""Child-process entry of a local run started from JupyterLab: `python -m ... NOTEBOOK PARAMS`.

Runs the pipeline with the runner module, which prints one progress line per step; the panel
polls this process's output. The exit code is the runner's: 0 ok, 1 a step failed, 130 killed.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    notebook, parameters = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    print(f"local run of {notebook.rsplit('/', 1)[-1]} started", flush=True)
    from jupyter_mlops.errors import MlopsError
    from jupyter_mlops.runner import RunOptions, run_pipeline

    try:
        result = run_pipeline(notebook, RunOptions(parameters=parameters, stream=sys.stdout))
    except MlopsError as error:
        print(f"error: {error}", flush=True)
        return 1
    print(f"local run finished: {result.status}", flush=True)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
