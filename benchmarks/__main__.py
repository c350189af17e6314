"""Run the benchmarks: `python -m benchmarks [NAME ...]`, NAME as in bench_NAME.py."""

from __future__ import annotations

import compileall
import sys
from importlib import import_module
from pathlib import Path

import jupyter_mlops


def main(argv: list[str]) -> int:
    # Measured as a wheel install leaves the package, byte-compiled: the editable install
    # leaves that to the first import, which never writes it under PYTHONDONTWRITEBYTECODE.
    compileall.compile_dir(Path(jupyter_mlops.__file__).parent, quiet=1)
    found = Path(__file__).parent.glob("bench_*.py")
    names = argv or sorted(path.stem.removeprefix("bench_") for path in found)
    for name in names:
        print(f"== {name} ==", flush=True)
        import_module(f"benchmarks.bench_{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
