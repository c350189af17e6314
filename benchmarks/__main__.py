"""Run the benchmarks: `python -m benchmarks [NAME ...]`, NAME as in bench_NAME.py."""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path


def main(argv: list[str]) -> int:
    found = Path(__file__).parent.glob("bench_*.py")
    names = argv or sorted(path.stem.removeprefix("bench_") for path in found)
    for name in names:
        print(f"== {name} ==", flush=True)
        import_module(f"benchmarks.bench_{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
