"""Latency of the tools: zoom/crop views and spectrum windows, against targets and matplotlib.

Run alone with ``.venv/bin/python benchmarks/bench_tools.py`` or through ``make bench ONLY=tools``.
Each figure is the median (p50) of repeated calls after a warm-up, on random data (noise is the
worst case for resampling). The spectrum baseline draws the same window with matplotlib's Agg
backend into an array, a fresh figure per call as a tool would (``mpl reused figure`` updates one
figure's data instead: the fastest matplotlib can be made to go, for reference).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from astroreason.tools import Footprint, crop, overview, spectrum_window, zoom

VIEW = 256
SPEC_W, SPEC_H = 512, 256


def p50_ms(fn: Callable[[], object], reps: int, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _spectrum(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    wl = 10 ** (3.5793 + 1e-4 * np.arange(3900))
    flux = 10 + 3 * np.exp(-((wl - 5000) ** 2) / 2e6) + rng.normal(0, 0.5, wl.size)
    flux += 30 * np.exp(-0.5 * ((wl - 6564.6 * 1.05) / 1.2) ** 2)
    mask = np.zeros(wl.size, bool)
    mask[2000:2030] = True
    return wl, flux, mask


def _matplotlib_window(fig_cache: dict | None = None):
    """A function drawing the window with matplotlib (Agg) into an RGB array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def draw(wl, flux, mask, lo, hi):
        i0, i1 = np.searchsorted(wl, [lo, hi])
        w, f = wl[i0 - 1 : i1 + 1], np.where(mask, np.nan, flux)[i0 - 1 : i1 + 1]
        if fig_cache is not None and "fig" in fig_cache:
            fig, canvas, line = fig_cache["fig"], fig_cache["canvas"], fig_cache["line"]
            line.set_data(w, f)
        else:
            fig = Figure(figsize=(SPEC_W / 100, SPEC_H / 100), dpi=100)
            canvas = FigureCanvasAgg(fig)
            ax = fig.add_axes((0.01, 0.1, 0.98, 0.88))
            (line,) = ax.plot(w, f, lw=1, color="k")
            ax.set_yticks([])
            if fig_cache is not None:
                fig_cache.update(fig=fig, canvas=canvas, line=line)
        ax = fig.axes[0]
        ax.set_xlim(lo, hi)
        good = f[np.isfinite(f)]
        ax.set_ylim(np.percentile(good, 0.5), np.percentile(good, 99.5) * 1.08)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()

    return draw


def main() -> None:
    """Measure and print the table."""
    rng = np.random.default_rng(0)
    rows = []  # (metric, value, unit, target, kind) kind: "max" (latency) or "min" (speedup)

    for side, target in ((256, 0.5), (2048, 3.0)):
        src = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        fp0 = Footprint.full(side, side)
        rows.append(
            (
                f"zoom x2 of the overview, {side}^2 source -> {VIEW}^2",
                p50_ms(lambda src=src, fp0=fp0: zoom(src, fp0, [420, 610], 2, VIEW), 200),
                "ms",
                target,
                "max",
            )
        )
        rows.append(
            (
                f"crop 400-unit box, {side}^2 source -> {VIEW}^2",
                p50_ms(lambda src=src, fp0=fp0: crop(src, fp0, [100, 300, 500, 700], VIEW), 200),
                "ms",
                target,
                "max",
            )
        )
        rows.append(
            (
                f"overview, {side}^2 source -> {VIEW}^2 (once per episode)",
                p50_ms(lambda src=src: overview(src, VIEW), 30),
                "ms",
                None,
                "max",
            )
        )

    wl, flux, mask = _spectrum(rng)
    lo, hi = 6830.0, 6950.0
    ours = p50_ms(lambda: spectrum_window(wl, flux, mask, lo, hi, SPEC_W, SPEC_H), 300)
    mpl_fresh = p50_ms(lambda: _matplotlib_window()(wl, flux, mask, lo, hi), 30)
    cache: dict = {}
    mpl_reused_fn = _matplotlib_window(cache)
    mpl_reused = p50_ms(lambda: mpl_reused_fn(wl, flux, mask, lo, hi), 30)
    rows.append((f"spectrum_window {SPEC_W}x{SPEC_H} (ours)", ours, "ms", None, "max"))
    rows.append(("same plot, matplotlib Agg, fresh figure", mpl_fresh, "ms", None, "max"))
    rows.append(("same plot, matplotlib Agg, reused figure", mpl_reused, "ms", None, "max"))
    rows.append(("speed-up vs matplotlib (fresh figure)", mpl_fresh / ours, "x", 20.0, "min"))
    rows.append(("speed-up vs matplotlib (reused figure)", mpl_reused / ours, "x", None, "min"))

    print(f"{'metric':<58} {'value':>10} {'target':>9} {'ratio':>6}")
    print("ratio: how far past the target (>= 1 meets it)")
    for metric, value, unit, target, kind in rows:
        if target is None:
            tgt, ratio = "-", "-"
        elif kind == "max":
            tgt, ratio = f"< {target:g} {unit}", f"{target / value:.2f}"
        else:
            tgt, ratio = f">= {target:g}{unit}", f"{value / target:.2f}"
        val = f"{value:.3f} {unit}" if unit == "ms" else f"{value:.1f}{unit}"
        print(f"{metric:<58} {val:>10} {tgt:>9} {ratio:>6}")


if __name__ == "__main__":
    main()
