"""Run every ``bench/bench_*.py`` module's ``run()`` and print its tables (see ``bench``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench
from bench.common import as_tables, format_table


def main(words: list[str]) -> int:
    names = sorted(
        info.name
        for info in pkgutil.iter_modules(bench.__path__)
        if info.name.startswith("bench_") and (not words or any(w in info.name for w in words))
    )
    if not names:
        print(f"no benchmark matches {words}", file=sys.stderr)
        return 2
    for name in names:
        started = time.perf_counter()
        result = importlib.import_module(f"bench.{name}").run()
        for table in as_tables(name, result):
            print(format_table(table), end="\n\n")
        print(f"[{name}: {time.perf_counter() - started:.1f} s wall]", end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
