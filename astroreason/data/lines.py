"""Where to look in a spectrum: the diagnostic window an oracle teacher opens with ``spectrum_window``.

Pure functions over numpy arrays (no I/O, no tools, no environment). The teacher may read ground truth
(the pipeline redshift, CLASS and SUBCLASS); the model never does, and nothing here is shown to it: the
environment puts the window into ``info["ground_truth"]`` only.

:func:`teacher_window` picks, in order:

1. ``file``: the window a file stores (``key_window`` or ``key_wmin``/``key_wmax`` in the sample's
   meta: the synthetic spectra), unchanged;
2. ``redshift``: with a finite pipeline redshift ``z`` and a known CLASS, the first feature of that
   class's ordered table (:data:`GALAXY_FEATURES`, :data:`QSO_FEATURES`, :func:`star_features`) whose
   observed-frame range ``(rest_min, rest_max) * (1 + z)`` lies inside the data with at most half of
   its pixels masked;
3. ``emission``: otherwise the strongest emission line of the continuum-subtracted flux
   (:func:`strongest_line`; a running median of the unmasked pixels is the continuum, and a box
   matched filter of three widths, weighted by ``ivar``, finds the line), or, when no emission line
   reaches ``min_snr``, ``absorption``: the strongest absorption line found the same way.

Wavelengths are vacuum Angstrom (SDSS, DESI and LAMOST all use vacuum); the rest wavelengths are those
of the project's domain notes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

C_KMS = 299792.458

# Vacuum rest wavelengths (Angstrom).
LY_ALPHA, N_V, C_IV, C_III, MG_II = 1215.67, 1240.14, 1549.06, 1908.73, 2798.75
O_II = (3727.09, 3729.88)
CA_K, CA_H = 3934.78, 3969.59
H_DELTA, H_GAMMA, H_BETA, H_ALPHA = 4102.89, 4341.69, 4862.68, 6564.61
O_III = (4960.30, 5008.24)
MG_B = (5167.32, 5172.68, 5183.60)
NA_D = (5891.58, 5897.56)
N_II = (6549.86, 6585.27)
CA_TRIPLET = (8500.36, 8544.44, 8664.52)
TIO_7054 = 7054.0

MIN_WIDTH_A = 10.0
"""The narrowest window returned (observed Angstrom); the tool accepts 5 A and more."""

MAX_MASKED_FRACTION = 0.5
"""A feature whose observed range has more masked pixels than this is skipped for the next one."""


@dataclass(frozen=True)
class Feature:
    """A spectral feature and the rest-frame range a window on it shows.

    Attributes:
        name: Human-readable name (for traces and reports; never shown to a model).
        rest_min: Left edge of the window, rest frame, vacuum Angstrom.
        rest_max: Right edge of the window, rest frame, vacuum Angstrom.
    """

    name: str
    rest_min: float
    rest_max: float

    def observed(self, z: float) -> tuple[float, float]:
        """The window in the observed frame: ``(rest_min, rest_max) * (1 + z)``."""
        return self.rest_min * (1 + z), self.rest_max * (1 + z)


def _around(name: str, lines: Sequence[float], pad: float) -> Feature:
    return Feature(name, min(lines) - pad, max(lines) + pad)


def _broad(name: str, line: float, kms: float = 3600.0, minimum: float = 15.0) -> Feature:
    """A broad quasar line: +-``kms`` (about 2.5 sigma of a 3500 km/s FWHM line), at least +-minimum A."""
    return _around(name, (line,), max(line * kms / C_KMS, minimum))


GALAXY_FEATURES: tuple[Feature, ...] = (
    _around("H-alpha + [N II]", (N_II[0], H_ALPHA, N_II[1]), 30.0),
    _around("H-beta + [O III]", (H_BETA, *O_III), 20.0),
    _around("[O II]", O_II, 25.0),
    _around("Ca II K and H", (CA_K, CA_H), 25.0),
)
"""Galaxies: the BPT lines first ([N II]/H-alpha and [O III]/H-beta separate star formation from AGN),
then [O II], then the Ca II break region."""

QSO_FEATURES: tuple[Feature, ...] = (
    _broad("Ly-alpha", LY_ALPHA),
    _broad("H-alpha", H_ALPHA),
    _broad("C IV", C_IV),
    _broad("Mg II", MG_II),
    _broad("H-beta", H_BETA),
    _broad("C III]", C_III),
)
"""Quasars: broad lines, roughly from the strongest (in flux, for a typical blue power law) down."""

_STAR_BY_TYPE: dict[str, Feature] = {
    "O": _around("H-beta", (H_BETA,), 45.0),
    "B": _around("H-beta", (H_BETA,), 45.0),
    "A": _around("H-beta", (H_BETA,), 45.0),
    "W": _around("H-beta", (H_BETA,), 45.0),  # white dwarfs (WD, DA): broad Balmer lines
    "D": _around("H-beta", (H_BETA,), 45.0),
    "F": _around("Ca II K and H", (CA_K, CA_H), 20.0),
    "G": _around("Mg b", MG_B, 25.0),
    "K": _around("Na D", NA_D, 30.0),
    "M": Feature("TiO 7054", TIO_7054 - 54.0, TIO_7054 + 196.0),
}
_STAR_DEFAULT: tuple[Feature, ...] = (
    _around("H-alpha", (H_ALPHA,), 40.0),
    _around("H-beta", (H_BETA,), 45.0),
    _around("Ca II K and H", (CA_K, CA_H), 20.0),
    _around("Mg b", MG_B, 25.0),
    _around("Na D", NA_D, 30.0),
    _around("Ca II triplet", CA_TRIPLET, 20.0),
)
_STAR_TYPE = re.compile(r"^\s*(?:sd|d|g)?([OBAFGKMW])", re.IGNORECASE)


def star_features(subclass: str = "") -> tuple[Feature, ...]:
    """Stars: the feature that tells the spectral type apart, then H-alpha, Balmer, Ca, Mg b, Na D.

    The type is the first letter of ``subclass`` (SDSS ``K5 (...)``, ``A0``, ``WD``; LAMOST ``G3``,
    ``dM0``, ``gK``): O/B/A and white dwarfs -> H-beta, F -> Ca II K and H, G -> Mg b, K -> Na D,
    M -> the TiO band head at 7054 A. Other subclasses (CV, Carbon, L, T, none) start at H-alpha.
    """
    m = _STAR_TYPE.match(subclass or "")
    first = _STAR_BY_TYPE.get(m.group(1).upper()) if m else None
    return ((first,) if first else ()) + tuple(f for f in _STAR_DEFAULT if f != first)


def features_for(cls: str, subclass: str = "") -> tuple[Feature, ...]:
    """The ordered feature table of a CLASS (STAR, GALAXY, QSO; case-insensitive), else empty."""
    c = (cls or "").strip().upper()
    if c == "GALAXY":
        return GALAXY_FEATURES
    if c == "QSO":
        return QSO_FEATURES
    if c == "STAR":
        return star_features(subclass)
    return ()


@dataclass(frozen=True)
class KeyWindow:
    """A window for the teacher: observed-frame vacuum Angstrom, and how it was found.

    Attributes:
        lambda_min: Left edge.
        lambda_max: Right edge.
        source: ``file``, ``redshift``, ``emission`` or ``absorption``.
        feature: The feature's name (``redshift``), ``line at 6563.2 A`` (``emission``/``absorption``),
            or ``stored`` (``file``).
    """

    lambda_min: float
    lambda_max: float
    source: str
    feature: str

    def as_list(self) -> list[float]:
        """``[lambda_min, lambda_max]`` as plain floats."""
        return [float(self.lambda_min), float(self.lambda_max)]


def _arrays(wavelength, flux, mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    wl = np.asarray(wavelength, dtype=np.float64)
    fl = np.asarray(flux, dtype=np.float64)
    if wl.ndim != 1 or fl.shape != wl.shape or wl.size < 2:
        raise ValueError(
            f"wavelength and flux must be 1-D of one length >= 2; got {wl.shape}, {fl.shape}"
        )
    good = np.isfinite(fl) & np.isfinite(wl)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != wl.shape:
            raise ValueError(f"mask must have the shape of wavelength {wl.shape}; got {m.shape}")
        good &= ~m.astype(bool)
    return wl, fl, good


def masked_fraction(wavelength, good: np.ndarray, lo: float, hi: float) -> float:
    """Fraction of the pixels between ``lo`` and ``hi`` that are not good (1.0 when there are none)."""
    wl = np.asarray(wavelength, dtype=np.float64)
    i0, i1 = np.searchsorted(wl, [lo, hi], side="left")
    n = int(i1 - i0)
    return 1.0 if n <= 0 else float(1.0 - np.count_nonzero(good[i0:i1]) / n)


def redshift_window(
    wavelength, mask, z: float, cls: str, subclass: str = "", flux=None, ivar=None
) -> KeyWindow | None:
    """The feature of the class's table to look at, at redshift ``z``.

    A feature qualifies when its whole observed range is inside ``[wavelength[0], wavelength[-1]]``
    and at most :data:`MAX_MASKED_FRACTION` of its pixels are masked. Galaxies and stars take the first
    qualifying feature of their table (the diagnostic order). Quasars, when ``flux`` is given, take the
    qualifying broad line that is strongest in this spectrum (largest broad matched-filter
    signal-to-noise near its centre; ties and no flux: table order). None when ``z`` is not finite (or
    <= -0.5), the class is unknown, or no feature qualifies.
    """
    if z is None or not math.isfinite(float(z)) or float(z) <= -0.5:
        return None
    wl = np.asarray(wavelength, dtype=np.float64)
    good = np.ones(wl.size, bool) if mask is None else ~np.asarray(mask).astype(bool)
    d0, d1 = float(wl[0]), float(wl[-1])
    found: list[KeyWindow] = []
    for feature in features_for(cls, subclass):
        lo, hi = feature.observed(float(z))
        if lo < d0 or hi > d1:
            continue
        if masked_fraction(wl, good, lo, hi) > MAX_MASKED_FRACTION:
            continue
        found.append(KeyWindow(lo, hi, "redshift", feature.name))
    if not found:
        return None
    if len(found) == 1 or flux is None or cls.strip().upper() != "QSO":
        return found[0]
    curves = _snr_curves(wl, flux, mask, ivar, (27,), 201)
    if curves is None:
        return found[0]
    snr = curves[1][27]

    def strength(k: KeyWindow) -> float:
        mid, quarter = (k.lambda_min + k.lambda_max) / 2, (k.lambda_max - k.lambda_min) / 4
        i0, i1 = np.searchsorted(wl, [mid - quarter, mid + quarter])
        return float(np.max(snr[i0:i1])) if i1 > i0 else -math.inf

    return max(found, key=strength)  # max keeps the first of equals: table order


def running_median(flux, good, size: int = 201) -> np.ndarray:
    """A robust continuum: the median of the good pixels in a ``size``-pixel running window.

    The window runs over the good pixels only (masked ones are skipped, not counted), its result is
    interpolated back onto every pixel, and the ends repeat the edge values. All pixels bad: zeros.
    """
    fl = np.asarray(flux, dtype=np.float64)
    g = np.asarray(good, dtype=bool)
    idx = np.flatnonzero(g)
    if idx.size == 0:
        return np.zeros_like(fl)
    vals = fl[idx]
    k = max(1, min(int(size), vals.size))
    k -= 1 - k % 2  # odd
    half = k // 2
    padded = np.pad(vals, half, mode="edge")
    med = np.median(np.lib.stride_tricks.sliding_window_view(padded, k), axis=1)
    return np.interp(np.arange(fl.size), idx, med)


@dataclass(frozen=True)
class LineHit:
    """A line found by :func:`strongest_line`.

    Attributes:
        wavelength: Centre of the best box, Angstrom.
        snr: Matched-filter signal-to-noise (positive: emission, negative: absorption).
        width_a: Width of the best box, Angstrom.
    """

    wavelength: float
    snr: float
    width_a: float


def _snr_curves(
    wavelength, flux, mask, ivar, widths: Sequence[int], continuum_size: int
) -> tuple[np.ndarray, dict[int, np.ndarray]] | None:
    """Matched-filter signal-to-noise per pixel for each box width (see :func:`strongest_line`)."""
    wl, fl, good = _arrays(wavelength, flux, mask)
    if ivar is None:
        w = np.ones(wl.size)
    else:
        iv = np.asarray(ivar, dtype=np.float64)
        if iv.shape != wl.shape:
            raise ValueError(f"ivar must have the shape of wavelength {wl.shape}; got {iv.shape}")
        w = np.where(np.isfinite(iv) & (iv > 0), iv, 0.0)
    good &= w > 0
    if not good.any():
        return None
    cont = running_median(fl, good, continuum_size)
    resid = np.where(good, fl - cont, 0.0)
    if ivar is None:
        mad = float(np.median(np.abs(resid[good]))) * 1.4826
        w = np.full(wl.size, 1.0 / max(mad, 1e-30) ** 2)
    w = np.where(good, w, 0.0)
    curves = {}
    for width in widths:
        k = np.ones(int(width))
        num = np.convolve(resid * w, k, mode="same")
        den = np.sqrt(np.convolve(w, k, mode="same"))
        curves[int(width)] = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return wl, curves


def strongest_line(
    wavelength,
    flux,
    mask=None,
    ivar=None,
    *,
    sign: int = 1,
    widths: Sequence[int] = (3, 9, 27),
    continuum_size: int = 201,
    edge_pixels: int = 20,
) -> LineHit | None:
    """The strongest emission (``sign=1``) or absorption (``sign=-1``) line in the spectrum.

    The continuum is :func:`running_median` of the good pixels; the residual is filtered by boxes of
    ``widths`` pixels, each weighted by ``ivar`` (a box's signal-to-noise is
    ``sum(r * ivar) / sqrt(sum(ivar))``), and the box with the largest ``sign * snr`` wins. Masked
    pixels weigh nothing. Without ``ivar`` the noise is the residual's median absolute deviation.
    ``edge_pixels`` at each end are skipped (the continuum is poorest there). None when no pixel is good.
    """
    found = _snr_curves(wavelength, flux, mask, ivar, widths, continuum_size)
    if found is None:
        return None
    wl, curves = found
    return _best(wl, curves, sign, edge_pixels)


def _best(wl: np.ndarray, curves: dict[int, np.ndarray], sign: int, edge: int) -> LineHit:
    lo_i, hi_i = edge, wl.size - edge
    if hi_i <= lo_i:
        lo_i, hi_i = 0, wl.size
    best: LineHit | None = None
    for width, snr in curves.items():
        j = int(np.argmax(sign * snr[lo_i:hi_i])) + lo_i
        if best is None or sign * snr[j] > sign * best.snr:
            step = float(np.median(np.diff(wl[max(j - 5, 0) : j + 6])))
            best = LineHit(float(wl[j]), float(snr[j]), float(width) * step)
    assert best is not None
    return best


# Lines that identify a redshift from the strongest emission line (rest, vacuum Angstrom).
_ID_LINES: dict[str, tuple[float, ...]] = {
    "GALAXY": (H_ALPHA, N_II[1], H_BETA, O_III[1], O_III[0], sum(O_II) / 2),
    "QSO": (LY_ALPHA, C_IV, C_III, MG_II, H_BETA, H_ALPHA),
}


def identify_redshift(
    hit: LineHit, wl: np.ndarray, curves: dict[int, np.ndarray], min_snr: float = 4.0
) -> tuple[str, float, int] | None:
    """Guess a redshift by reading the strongest emission line as each line of a known set.

    Each line of :data:`_ID_LINES` is tried in turn; the reading that most other lines confirm
    (signal-to-noise >= ``min_snr`` within 0.15% of where they fall) wins.

    Returns ``(class, z, confirmations)`` for the best reading with at least two confirmations, else
    None. A teacher's guess for files without a pipeline redshift, not a redshift measurement.
    """
    snr = np.max(np.stack(list(curves.values())), axis=0)
    d0, d1 = float(wl[0]), float(wl[-1])
    best: tuple[str, float, int] | None = None
    for cls, lines in _ID_LINES.items():
        for line in lines:
            z = hit.wavelength / line - 1
            if z < -0.005:
                continue
            conf = 0
            for other in lines:
                if other == line:
                    continue
                obs = other * (1 + z)
                tol = 0.0015 * obs
                if obs - tol < d0 or obs + tol > d1:
                    continue
                i0, i1 = np.searchsorted(wl, [obs - tol, obs + tol])
                if i1 > i0 and float(np.max(snr[i0:i1])) >= min_snr:
                    conf += 1
            if conf >= 2 and (best is None or conf > best[2]):
                best = (cls, float(z), conf)
    return best


def line_window(
    wavelength,
    flux,
    mask=None,
    ivar=None,
    *,
    half_width: float = 50.0,
    min_snr: float = 6.0,
) -> KeyWindow | None:
    """A window found from the flux alone: on an identified line set, else the strongest line.

    The strongest emission line is found (:func:`strongest_line`); when other lines confirm a reading
    of it (:func:`identify_redshift`), the window is that redshift's first feature
    (:func:`redshift_window`: e.g. H-alpha + [N II] even when [O II] is the strongest line). Otherwise
    the window is centred on the line, ``max(half_width, 1.5 * box width)`` Angstrom on each side,
    clipped to the data. Emission needs ``min_snr``; without it the strongest absorption line with
    ``min_snr`` is used the same way (no identification); else None.
    """
    found = _snr_curves(wavelength, flux, mask, ivar, (3, 9, 27), 201)
    if found is None:
        return None
    wl, curves = found
    for sign, source in ((1, "emission"), (-1, "absorption")):
        hit = _best(wl, curves, sign, 20)
        if sign * hit.snr < min_snr:
            continue
        if sign > 0 and (guess := identify_redshift(hit, wl, curves)) is not None:
            by_z = redshift_window(wl, mask, guess[1], guess[0], flux=flux, ivar=ivar)
            if by_z is not None:
                return KeyWindow(
                    by_z.lambda_min,
                    by_z.lambda_max,
                    source,
                    f"{by_z.feature} (lines read as {guess[0]})",
                )
        half = max(half_width, 1.5 * hit.width_a)
        lo, hi = _clip(hit.wavelength - half, hit.wavelength + half, float(wl[0]), float(wl[-1]))
        return KeyWindow(lo, hi, source, f"line at {hit.wavelength:.1f} A")
    return None


def _clip(lo: float, hi: float, d0: float, d1: float) -> tuple[float, float]:
    """``lo``-``hi`` inside ``d0``-``d1``, shifted rather than shrunk below :data:`MIN_WIDTH_A`."""
    width = max(hi - lo, MIN_WIDTH_A)
    lo, hi = max(lo, d0), min(hi, d1)
    if hi - lo < MIN_WIDTH_A:
        if lo <= d0:
            hi = min(d0 + width, d1)
        else:
            lo = max(d1 - width, d0)
    return float(lo), float(hi)


def stored_window(meta: Mapping[str, Any]) -> tuple[float, float] | None:
    """``meta["key_window"]`` or ``(meta["key_wmin"], meta["key_wmax"])`` when finite, else None."""
    window = meta.get("key_window")
    if window is None and "key_wmin" in meta and "key_wmax" in meta:
        window = (meta["key_wmin"], meta["key_wmax"])
    if window is None:
        return None
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        return None
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def teacher_window(
    wavelength, flux, mask=None, ivar=None, meta: Mapping[str, Any] | None = None
) -> KeyWindow | None:
    """The window the oracle teacher opens: stored, else by redshift, else the strongest line.

    Args:
        wavelength: Observed vacuum wavelengths (Angstrom), increasing.
        flux: Flux per pixel.
        mask: True where a pixel is bad (``ivar == 0``, a nonzero ``and_mask``, ...); None: all good.
        ivar: Inverse variance per pixel (weights for the line search); None: from the residual.
        meta: The sample's meta (``key_window``/``key_wmin``/``key_wmax``, ``z``, ``class``,
            ``subclass``); ground truth, read by the teacher only.

    Returns:
        The window (see the module docstring for the order), or None if nothing was found.
    """
    meta = meta or {}
    stored = stored_window(meta)
    if stored is not None:
        return KeyWindow(stored[0], stored[1], "file", "stored")
    try:
        z = float(meta.get("z", math.nan))
    except (TypeError, ValueError):
        z = math.nan
    by_z = redshift_window(
        wavelength,
        mask,
        z,
        str(meta.get("class", "")),
        str(meta.get("subclass", "")),
        flux=flux,
        ivar=ivar,
    )
    if by_z is not None:
        return by_z
    return line_window(wavelength, flux, mask, ivar)


def overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when two ``(lo, hi)`` ranges share more than a point."""
    return min(float(a[1]), float(b[1])) > max(float(a[0]), float(b[0]))
