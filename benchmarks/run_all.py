"""Run every ``benchmarks/bench_*.py`` (each defines ``main()``) and print their tables; `make bench`."""

import importlib.util
import sys
from pathlib import Path

here = Path(__file__).parent
only = sys.argv[1:]
for path in sorted(here.glob("bench_*.py")):
    if only and not any(o in path.stem for o in only):
        continue
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    print(f"\n=== {path.stem} ===", flush=True)
    mod.main()
