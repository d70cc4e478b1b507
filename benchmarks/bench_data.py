"""Random access and memory of :class:`Galaxy10Source` on a 4,000-image 256^2 Galaxy10-format file.

Three layouts: one image per chunk (as our synthetic writer stores them), h5py's default contiguous
layout, and gzip with h5py's automatic chunks (250 rows x 16x32 pixels), which a compressed real file
may have: there a random read decompresses ~50 MB whatever the reader does, and ``galaxy10.repack``
(timed here too) is the cure. Files are written to a temporary folder, so the OS page cache is warm:
the timings are the reader's own cost, not the disk's. Memory is the growth of resident memory (RSS)
while iterating all images, which must stay flat for a lazy reader.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
import warnings
from pathlib import Path

import h5py
import numpy as np

from astroreason.data.readers.galaxy10 import Galaxy10Source, repack

N = 4000
SIDE = 256
N_RANDOM = 500
TARGET_P50_MS = 2.0
TARGET_RSS_MB = 200.0


def rss_mb() -> float:
    """Resident memory of this process in MB (psutil if present, else /proc/self/status)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 1e6
    except ImportError:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("cannot read resident memory")


LAYOUTS = {
    "chunked": {"chunks": (1, SIDE, SIDE, 3)},
    "contiguous": {},
    "gzip-auto": {"chunks": True, "compression": "gzip"},
}


def write_file(path: Path, layout: str, seed: int = 0) -> None:
    """Write N random-ish images (a noise field plus a per-image offset) in Galaxy10 DECaLS format."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (SIDE, SIDE, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        images = f.create_dataset(
            "images",
            shape=(N, SIDE, SIDE, 3),
            dtype=np.uint8,
            **LAYOUTS[layout],
        )
        block = 200
        for start in range(0, N, block):
            k = min(block, N - start)
            offs = rng.integers(0, 56, (k, 1, 1, 1), dtype=np.uint8)
            images[start : start + k] = np.roll(base, start, axis=0)[None] + offs
        f.create_dataset("ans", data=(np.arange(N) * 10 // N).astype(np.uint8))
        f.create_dataset("ra", data=rng.uniform(0, 360, N))
        f.create_dataset("dec", data=rng.uniform(-20, 30, N))
        f.create_dataset("redshift", data=rng.uniform(0, 0.2, N))
        f.create_dataset("pxscale", data=np.full(N, 0.262))


def measure(path: Path, n_random: int = N_RANDOM) -> dict[str, float]:
    """p50/p95 of one random ``src[i]`` in ms, and RSS growth over a full pass in MB."""
    gc.collect()
    rss0 = rss_mb()
    with Galaxy10Source(path) as src:
        src[0]  # open the handle
        order = np.random.default_rng(1).integers(0, len(src), n_random)
        times = []
        for i in order:
            t0 = time.perf_counter()
            src[int(i)]
            times.append((time.perf_counter() - t0) * 1e3)
        peak = rss_mb()
        t0 = time.perf_counter()
        for k, s in enumerate(src):
            assert s.image.shape == (SIDE, SIDE, 3)
            if k % 100 == 0:
                peak = max(peak, rss_mb())
        full_pass_s = time.perf_counter() - t0
        peak = max(peak, rss_mb())
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "rss_growth_mb": peak - rss0,
        "pass_s": full_pass_s,
    }


def main() -> None:
    """Write both layouts, measure them, print one table."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        for layout in LAYOUTS:
            path = Path(tmp) / f"galaxy10_{layout}.h5"
            write_file(path, layout)
            size_mb = os.path.getsize(path) / 1e6
            slow = layout == "gzip-auto"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the layout warning for gzip-auto
                m = measure(path, n_random=20 if slow else N_RANDOM)
            if slow:
                t0 = time.perf_counter()
                repack(path, Path(tmp) / "repacked.h5")
                rows.append(
                    ("gzip-auto: repack to 1 image/chunk (s)", time.perf_counter() - t0, None)
                )
                (Path(tmp) / "repacked.h5").unlink()
            path.unlink()
            rows += [
                (f"{layout}: random src[i] p50 (ms)", m["p50_ms"], TARGET_P50_MS),
                (f"{layout}: random src[i] p95 (ms)", m["p95_ms"], None),
                (f"{layout}: RSS growth, {N} samples (MB)", m["rss_growth_mb"], TARGET_RSS_MB),
                (f"{layout}: full pass (s), file {size_mb:.0f} MB", m["pass_s"], None),
            ]
    print(f"{'metric':<44} {'value':>9} {'target':>8} {'ratio':>7}")
    for name, value, target in rows:
        t = f"{target:8.1f}" if target else f"{'-':>8}"
        r = f"{value / target:7.2f}" if target else f"{'-':>7}"
        print(f"{name:<44} {value:9.2f} {t} {r}")


if __name__ == "__main__":
    main()
