"""The one g/r/z -> RGB mapping of the project: an asinh stretch of bands in sky-noise units.

The synthetic galaxies (:mod:`~astroreason.data.synthesis.galaxy`) are rendered in units of the background
noise and mapped by :func:`asinh_rgb`; real FITS cutouts (:mod:`~astroreason.data.readers.fits_folder`) are
first put in the same units by :func:`to_noise_units` (sky median subtracted, divided by a robust sky
sigma), then mapped by the same function, so both look alike to a model.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

STRETCH_SOFTENING = 1.5
"""Asinh softening in noise sigmas: linear below, logarithmic above."""
STRETCH_MAX = 800.0
"""Value in noise sigmas that maps to 255."""


def asinh_rgb(
    bands: np.ndarray, softening: float = STRETCH_SOFTENING, maximum: float = STRETCH_MAX
) -> np.ndarray:
    """Map (3, H, W) g, r, z bands in noise sigmas to HxWx3 uint8 RGB (z, r, g -> R, G, B).

    ``arcsinh(x / softening) * 255 / asinh(maximum / softening)``, rounded and clipped to 0..255,
    computed in float32.
    """
    x = np.asarray(bands, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"asinh_rgb: expected (3, H, W) g/r/z bands, got shape {x.shape}")
    s = softening
    img = np.arcsinh(x[::-1] * np.float32(1 / s))  # z, r, g -> R, G, B
    img *= np.float32(255.0 / math.asinh(maximum / s))
    img += np.float32(0.5)
    np.clip(img, 0, 255, out=img)
    return np.ascontiguousarray(img.astype(np.uint8).transpose(1, 2, 0))


def sky_stats(band: np.ndarray) -> tuple[float, float]:
    """Robust sky level and noise of one band: (median, sigma) after 3-sigma clipping.

    ``astropy.stats.sigma_clipped_stats`` with a median centre and the MAD-based standard deviation,
    so sources and bad pixels barely move either; NaN and infinite pixels are ignored. Returns NaN
    for both when no pixel is finite.
    """
    from astropy.stats import sigma_clipped_stats

    x = np.asarray(band, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns about masked/invalid values
        _, median, sigma = sigma_clipped_stats(
            x[finite], sigma=3.0, maxiters=10, cenfunc="median", stdfunc="mad_std"
        )
    return float(median), float(sigma)


def to_noise_units(band: np.ndarray, median: float, sigma: float) -> np.ndarray:
    """``(band - median) / sigma`` as float64, non-finite pixels set to 0."""
    x = (np.asarray(band, dtype=np.float64) - median) / sigma
    x[~np.isfinite(x)] = 0.0
    return x
