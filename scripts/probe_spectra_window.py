"""Probe: can star-forming galaxies be told from AGN in the overview, or only in a window?

Writes a synthetic spectra set (or reads one), keeps the GALAXY STARFORMING and GALAXY AGN spectra and
cross-validates a logistic regression on

(a) the whole spectrum binned to ``--bins`` equal-width pixels (what a whole-range plot can show);
(a') the same, but binned in the rest frame with the true redshift (an upper bound: no plot offers this);
(b) a +-40 A window around H-alpha/[N II] at full resolution (what ``spectrum_window`` shows).

Design goal of the synthetic data: (a) weak, (b) near-perfect.

Usage:
    .venv/bin/python scripts/probe_spectra_window.py --n 800 --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from astroreason.data import open_source
from astroreason.data.synthesis.spectra import H_ALPHA, SpectraSynthConfig, write_spectra_dir

FAMILIES = ("GALAXY STARFORMING", "GALAXY AGN")


def clean(sp) -> np.ndarray:
    """Flux with bad pixels replaced by linear interpolation over good ones."""
    good = ~sp.mask
    return np.interp(sp.wavelength, sp.wavelength[good], sp.flux[good])


def binned(wl: np.ndarray, flux: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """Mean flux in ``bins`` equal-width bins over [lo, hi], normalised by the median."""
    edges = np.linspace(lo, hi, bins + 1)
    idx = np.clip(np.searchsorted(edges, wl) - 1, 0, bins - 1)
    inside = (wl >= lo) & (wl <= hi)
    sums = np.bincount(idx[inside], flux[inside], minlength=bins)
    counts = np.bincount(idx[inside], minlength=bins)
    out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    out = np.where(np.isfinite(out), out, np.nanmedian(out))
    return out / max(np.median(out), 1e-6)


def window(wl: np.ndarray, flux: np.ndarray, z: float, half: float = 40.0) -> np.ndarray:
    """Full-resolution window around H-alpha (rest frame, 1 A steps), continuum removed, scaled."""
    grid = np.arange(H_ALPHA - half, H_ALPHA + half + 0.5, 1.0)
    f = np.interp(grid, wl / (1 + z), flux)
    f = f - np.median(f)
    return f / max(np.percentile(f, 99), 1e-6)


def main() -> None:
    """Run the probe and print the three cross-validated accuracies."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, help="existing spec-*.fits folder (default: write one)")
    ap.add_argument("--n", type=int, default=800, help="spectra to write (half are galaxies)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bins", type=int, default=400)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--oiii-hb-agn",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="override the AGN [O III]/H-beta range (e.g. the star-forming range, 0.3 0.9)",
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "spec"
            t0 = time.perf_counter()
            cfg = SpectraSynthConfig(n=args.n, seed=args.seed)
            if args.oiii_hb_agn:
                cfg = dataclasses.replace(cfg, oiii_hb_agn=tuple(args.oiii_hb_agn))
            write_spectra_dir(data, cfg, progress=False)
            dt = time.perf_counter() - t0
            print(f"wrote {args.n} spectra in {dt:.1f} s ({args.n / dt:.0f}/s)")
        src = open_source(data, task="subclass")
        keep = [i for i, y in enumerate(src.labels()) if src.class_names[y] in FAMILIES]
        overview, rest, win, y = [], [], [], []
        for i in keep:
            s = src[i]
            sp = s.spectrum
            flux = clean(sp)
            z = float(s.meta["z"])
            overview.append(binned(sp.wavelength, flux, 3800.0, 9200.0, args.bins))
            rest.append(binned(sp.wavelength / (1 + z), flux, 3400.0, 7300.0, args.bins))
            win.append(window(sp.wavelength, flux, z))
            y.append(int(src.class_names[s.label] == "GALAXY AGN"))
    y_arr = np.array(y)
    print(f"{len(y_arr)} galaxies: {int((y_arr == 0).sum())} star-forming, {int(y_arr.sum())} AGN")
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    for name, x in (
        (f"(a)  whole spectrum, {args.bins} px, observed frame", overview),
        (f"(a') whole spectrum, {args.bins} px, rest frame (true z)", rest),
        ("(b)  +-40 A window at H-alpha, full resolution", win),
    ):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
        acc = cross_val_score(clf, np.array(x), y_arr, cv=cv)
        print(f"{name}: accuracy {acc.mean():.3f} +- {acc.std():.3f}")


if __name__ == "__main__":
    main()
