"""Speed and determinism of the synthetic galaxy writer at 256^2, on one core.

Writes the same small file twice with one seed (whole ``write_galaxy_file`` path: rendering, HDF5,
rename), reports galaxies per second and milliseconds per galaxy per class, and whether the two files
are byte-identical. Target: 20 ms per galaxy or less (50 galaxies/s), so the demo's 1-2k galaxies take
well under a minute.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from astroreason.data.classes import GALAXY10_DECALS
from astroreason.data.synthesis.galaxy import GalaxySynthConfig, render_galaxy, write_galaxy_file

N = 200
SIZE = 256
PER_CLASS = 10
TARGET_MS = 20.0


def _pin_one_core() -> set[int] | None:
    """Run on one CPU where the platform allows it (Linux); returns the previous CPU set."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(cores)})
    return cores


def main() -> None:
    """Print galaxies/s for two writes, per-class ms, and the determinism check."""
    cores = _pin_one_core()
    try:
        _run()
    finally:
        if cores is not None:  # run_all.py runs every benchmark in this process
            os.sched_setaffinity(0, cores)


def _run() -> None:
    cfg = GalaxySynthConfig(n=N, size=SIZE, seed=0)
    render_galaxy(0, np.random.default_rng(0), cfg)  # warm up GalSim's lookup tables
    with tempfile.TemporaryDirectory() as tmp:
        paths, times = [Path(tmp) / "a.h5", Path(tmp) / "b.h5"], []
        for p in paths:
            t0 = time.perf_counter()
            write_galaxy_file(p, cfg, progress=False)
            times.append(time.perf_counter() - t0)
        same = paths[0].read_bytes() == paths[1].read_bytes()
        mb = paths[0].stat().st_size / 1e6
    best = min(times)
    print(f"write_galaxy_file n={N} size={SIZE}: {mb:.1f} MB")
    for k, t in enumerate(times):
        print(f"  write {k + 1}: {t:6.2f} s  {N / t:6.1f} galaxies/s  {t / N * 1e3:6.1f} ms/galaxy")
    ok = "ok" if best / N * 1e3 <= TARGET_MS else "SLOW"
    print(f"  best {best / N * 1e3:.1f} ms/galaxy (target <= {TARGET_MS:.0f}): {ok}")
    print(f"  deterministic (two writes, same bytes): {'yes' if same else 'NO'}")
    print(f"render_galaxy by class ({PER_CLASS} each, {SIZE}^2):")
    for c, name in enumerate(GALAXY10_DECALS):
        t0 = time.perf_counter()
        for j in range(PER_CLASS):
            render_galaxy(c, np.random.default_rng([1, c, j]), cfg)
        dt = (time.perf_counter() - t0) / PER_CLASS * 1e3
        print(f"  {c} {name:<26} {dt:6.1f} ms")


if __name__ == "__main__":
    main()
