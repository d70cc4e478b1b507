"""Synthetic Galaxy10 DECaLS: GalSim galaxies of all ten classes, small in a wide noisy field.

The project's embedded default data set, in the real file's HDF5 layout (``images``, ``ans``, ``ra``,
``dec``, ``redshift``, ``pxscale``) plus a ground-truth ``bbox`` column, so every reader, split and
audit runs on it unchanged. It is built so that looking again pays: each galaxy covers a small,
randomly placed part of the field (boxes of 30-70 px, 5th-95th percentile, in a 256 px field), so
the detail that separates classes (bar, arm pitch, double nucleus, bulge of an edge-on disk, knots)
blurs away when the whole field is downsampled to a 64 px view, and returns in a crop of the box.
``scripts/probe_overview_vs_crop.py`` measures it (a small CNN at 64 px: about 79% on the overview,
95% on the oracle crop). Coarse cues are blurred on purpose: every class has the same box-size
distribution (``_RADIUS_SCALE``), each galaxy gets a random colour tilt, disturbed galaxies often
carry a tidal plume (a tail alone is not a merger), and both edge-on classes have a redder inner disk.

Rendering, per galaxy: each component (Sersic bulges and ellipticals, exponential and inclined
exponential disks, n=0.5 Sersic bars) is drawn by GalSim without the PSF into a stamp, 2x
oversampled and binned; spiral arms multiply a disk by ``1 + A*max(0, cos(m*(theta -
ln(r/r_in)/tan p)))^k`` in the disk plane (pitch 9-15 deg tight, 25-36 loose, 12-30 barred, the
arms starting at the bar's ends); knots, tidal tails and dust lanes are drawn with numpy. Components
carry g/r/z colours (red bulges and bars, bluer disks, blue arms and knots); the bands are convolved
with one Moffat PSF by FFT (GalSim's own FFT of a concentrated Sersic is ~30 ms), placed in the field,
given sky, read and source shot noise, and mapped z/r/g -> RGB by the fixed asinh stretch of
:func:`astroreason.data.stretch.asinh_rgb` (the one real FITS cutouts get). Surface
brightness is in units of the background noise; the main component is ~1-1.6 sigma at the target
radius, and ``bbox`` is the extent of the noise-free model above ``bbox_threshold`` (0.5 sigma), the
union of both galaxies and the tails for mergers.

Leakage by construction: rows are shuffled (the real file is sorted by class), class counts are
balanced, and ra/dec, redshift and pixel scale are drawn independently of the class. Galaxy ``i`` uses
``np.random.default_rng([seed, i])`` and the file is written without timestamps, so a seed fixes the
file's bytes. Simplified: one achromatic PSF per galaxy, Gaussian noise, no stars or neighbours.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from astroreason.data.base import MAX_IMAGE_SIDE
from astroreason.data.classes import GALAXY10_DECALS
from astroreason.data.stretch import STRETCH_MAX, STRETCH_SOFTENING, asinh_rgb

if TYPE_CHECKING:  # imported where used: the CLI reads this module's config at start-up
    import galsim

from astroreason.errors import ConfigError, DataError

DISTURBED, MERGING, ROUND, IN_BETWEEN, CIGAR = 0, 1, 2, 3, 4
BARRED, TIGHT, LOOSE, EDGE_ON, EDGE_ON_BULGE = 5, 6, 7, 8, 9

# g, r, z flux ratios of the stellar populations (normalised to r).
RED = np.array([0.45, 1.0, 1.5])
MID = np.array([0.8, 1.0, 1.15])
BLUE = np.array([1.4, 1.0, 0.7])

_OVERSAMPLE = 2

# Per-class factor on the target radius, calibrated so that the measured boxes of every class have
# about the same size distribution (box size alone should not tell the class).
_RADIUS_SCALE = {
    DISTURBED: 0.9,
    MERGING: 1.18,
    ROUND: 0.97,
    IN_BETWEEN: 1.04,
    CIGAR: 1.0,
    BARRED: 0.92,
    TIGHT: 0.92,
    LOOSE: 0.9,
    EDGE_ON: 1.2,
    EDGE_ON_BULGE: 1.23,
}


@dataclass(frozen=True)
class GalaxySynthConfig:
    """Settings of the synthetic galaxy set.

    Surface brightness is in units of the background noise (sky + read noise) per pixel and band.
    """

    n: int = 1000
    """Number of galaxies; all ten classes, counts differing by at most one."""
    size: int = 256
    """Image side in pixels."""
    seed: int = 0
    """Random seed: galaxy ``i`` uses ``default_rng([seed, i])``; same seed, same file bytes."""
    extent: tuple[float, float] = (0.085, 0.2)
    """Range of the target galaxy diameter as a fraction of ``size`` (drawn uniformly, any class);
    the measured box's longer side is 30-70 px (5th-95th percentile, median 48) at 256."""
    iso: tuple[float, float] = (1.0, 1.6)
    """Surface brightness of the main component at the target radius, in noise sigmas."""
    psf_fwhm: tuple[float, float] = (1.5, 2.3)
    """Range of the Moffat PSF FWHM in pixels."""
    colour_tilt: float = 0.35
    """Per-galaxy colour change: g and z are scaled by ``exp(-t)`` and ``exp(t)``, ``|t|`` up to this."""
    psf_beta: float = 3.5
    """Moffat PSF slope."""
    sky_level: float = 400.0
    """Mean sky per pixel in counts (subtracted; its shot noise remains), varied by +-30% per galaxy."""
    read_noise: float = 8.0
    """Read noise per pixel in counts."""
    gain: float = 1.0
    """Electrons per count: the galaxy's own shot noise."""
    bbox_threshold: float = 0.5
    """The box encloses the noise-free model above this many noise sigmas (mean of the bands)."""
    stretch_softening: float = STRETCH_SOFTENING
    """Asinh softening in noise sigmas: linear below, logarithmic above."""
    stretch_max: float = STRETCH_MAX
    """Value in noise sigmas that maps to 255."""
    pxscale: float = 0.262
    """Pixel scale in arcsec stored in ``pxscale`` (constant, as in most of the real file)."""

    def __post_init__(self) -> None:
        checks = [
            (self.n >= 10, f"n must be at least 10 (one galaxy per class), got {self.n}"),
            (
                32 <= self.size <= MAX_IMAGE_SIDE,
                f"size must be 32..{MAX_IMAGE_SIDE} pixels, got {self.size}",
            ),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (
                _range_ok(self.extent, 0.02, 0.7),
                f"extent must be 0.02 <= lo <= hi <= 0.7, got {self.extent}",
            ),
            (_range_ok(self.iso, 0.1, 100), f"iso must be 0.1 <= lo <= hi <= 100, got {self.iso}"),
            (
                _range_ok(self.psf_fwhm, 0.5, 20),
                f"psf_fwhm must be 0.5 <= lo <= hi <= 20 px, got {self.psf_fwhm}",
            ),
            (self.psf_beta > 1.1, f"psf_beta must be > 1.1, got {self.psf_beta}"),
            (0 <= self.colour_tilt <= 2, f"colour_tilt must be in 0..2, got {self.colour_tilt}"),
            (
                self.sky_level >= 0
                and self.read_noise >= 0
                and self.sky_level + self.read_noise > 0,
                f"sky_level and read_noise must be >= 0, not both 0; got {self.sky_level}, "
                f"{self.read_noise}",
            ),
            (self.gain > 0, f"gain must be > 0, got {self.gain}"),
            (self.bbox_threshold > 0, f"bbox_threshold must be > 0, got {self.bbox_threshold}"),
            (
                self.stretch_softening > 0 and self.stretch_max > self.stretch_softening,
                f"need 0 < stretch_softening < stretch_max, got {self.stretch_softening}, "
                f"{self.stretch_max}",
            ),
            (self.pxscale > 0, f"pxscale must be > 0, got {self.pxscale}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"GalaxySynthConfig: {msg}")


def _range_ok(r: tuple[float, float], lo: float, hi: float) -> bool:
    return len(r) == 2 and lo <= r[0] <= r[1] <= hi


class _Stamp:
    """A square of the field in which one galaxy system is drawn, as layers of (image, g/r/z colour)."""

    def __init__(self, side: int, psf_fwhm: float, psf_beta: float):
        self.side = side
        self.psf = _psf_kernel(side, psf_fwhm, psf_beta)
        self.c = (side - 1) / 2.0
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
        self.xx, self.yy = xx, yy
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []

    def draw(self, prof: galsim.GSObject, x: float, y: float) -> np.ndarray:
        """Flux per pixel of ``prof`` centred at stamp pixel (x, y), sampled 2x finer and binned."""
        import galsim

        o = _OVERSAMPLE
        im = galsim.ImageD(self.side * o, self.side * o, scale=1.0 / o)
        prof.drawImage(image=im, method="no_pixel", offset=((x - self.c) * o, (y - self.c) * o))
        return im.array.reshape(self.side, o, self.side, o).sum(axis=(1, 3))

    def blur(self, img: np.ndarray) -> np.ndarray:
        """``img`` (or a stack of images) convolved with the PSF."""
        return np.fft.irfft2(np.fft.rfft2(img) * self.psf, s=img.shape[-2:])

    def norm_at(self, img: np.ndarray, x: float, y: float, target: float) -> np.ndarray:
        """Scale ``img`` so that, seen through the PSF, its value at (x, y) is ``target``."""
        v = _at(self.blur(img), x, y)
        return img * (target / v) if v > 0 else img

    def add(self, img: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> None:
        """Add a layer; its colour is jittered by a few per cent per band."""
        self.layers.append((img, colour * rng.normal(1.0, 0.04, 3)))

    def bands(self) -> np.ndarray:
        """The noise-free model, (3, side, side) in g, r, z."""
        out = np.zeros((3, self.side, self.side))
        for img, col in self.layers:
            out += col[:, None, None] * img
        return out


def _at(img: np.ndarray, x: float, y: float) -> float:
    """Bilinear value of ``img`` at (x, y), clamped inside."""
    h, w = img.shape
    x = min(max(x, 0.0), w - 1.001)
    y = min(max(y, 0.0), h - 1.001)
    ix, iy = int(x), int(y)
    fx, fy = x - ix, y - iy
    a = img[iy, ix] * (1 - fx) + img[iy, ix + 1] * fx
    b = img[iy + 1, ix] * (1 - fx) + img[iy + 1, ix + 1] * fx
    return float(a * (1 - fy) + b * fy)


def _disk_coords(st: _Stamp, x: float, y: float, q: float, phi: float):
    """Radius and azimuth in the plane of a disk centred at (x, y) drawn with ``shear(q, phi)``."""
    dx, dy = st.xx - x, st.yy - y
    c, s = math.cos(phi), math.sin(phi)
    u = (dx * c + dy * s) * math.sqrt(q)
    v = (-dx * s + dy * c) / math.sqrt(q)
    return np.hypot(u, v), np.arctan2(v, u) + phi


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _gauss_blob(st: _Stamp, img: np.ndarray, x: float, y: float, sigma: float, peak: float) -> None:
    """Add a round Gaussian of the given peak, evaluated in a local window."""
    r = int(math.ceil(4 * sigma))
    x0, x1 = max(int(x) - r, 0), min(int(x) + r + 2, st.side)
    y0, y1 = max(int(y) - r, 0), min(int(y) + r + 2, st.side)
    if x0 >= x1 or y0 >= y1:
        return
    gx = np.exp(-0.5 * ((np.arange(x0, x1) - x) / sigma) ** 2)
    gy = np.exp(-0.5 * ((np.arange(y0, y1) - y) / sigma) ** 2)
    img[y0:y1, x0:x1] += peak * gy[:, None] * gx[None, :]


# ----------------------------------------------------------------------------- components
def _smooth(st, rng, x, y, R, q, iso, colour=RED, n=None):
    """An elliptical: Sersic n 1.5-4 whose isophote at radius R (major axis) is ``iso``."""
    import galsim

    n = rng.uniform(1.5, 4.0) if n is None else n
    phi = rng.uniform(0, math.pi)
    re = R * rng.uniform(0.28, 0.42)
    img = st.draw(
        galsim.Sersic(n=n, half_light_radius=re).shear(q=q, beta=phi * galsim.radians), x, y
    )
    img = st.norm_at(img, x + R * math.cos(phi), y + R * math.sin(phi), iso)
    st.add(img, colour, rng)
    return {"sersic_n": n, "axis_ratio": q}


def _bulge(st, rng, x, y, re, q, flux_like, colour=RED, n=None):
    """A Sersic bulge with flux ``flux_like`` x the sum of the reference image."""
    import galsim

    n = rng.uniform(1.5, 3.5) if n is None else n
    prof = galsim.Sersic(n=n, half_light_radius=re).shear(
        q=q, beta=rng.uniform(0, math.pi) * galsim.radians
    )
    img = st.draw(prof, x, y)
    st.add(img * (flux_like / img.sum()), colour, rng)


def _spiral(st, rng, x, y, R, iso, pitch_deg, barred):
    """Bulge + exponential disk with logarithmic arms (and a bar whose ends start the arms)."""
    import galsim

    q = rng.uniform(0.5, 1.0)  # inclination up to 60 deg
    phi = rng.uniform(0, math.pi)
    h = R / rng.uniform(2.8, 3.5)
    disk = st.draw(galsim.Exponential(scale_radius=h).shear(q=q, beta=phi * galsim.radians), x, y)
    disk = st.norm_at(disk, x + R * math.cos(phi), y + R * math.sin(phi), iso)
    r, theta = _disk_coords(st, x, y, q, phi)
    m = 2 if rng.random() < 0.8 else 3
    amp, k = rng.uniform(1.2, 3.5), rng.uniform(1.5, 3.0)
    chir = rng.choice([-1.0, 1.0])
    tanp = math.tan(math.radians(pitch_deg))
    if barred:
        bar_len = R * rng.uniform(0.25, 0.4)  # half length
        r_in, theta0 = bar_len, rng.uniform(0, math.pi)
    else:
        r_in, theta0 = R * rng.uniform(0.12, 0.3), rng.uniform(0, 2 * math.pi)
    phase = m * (theta - theta0 - chir * np.log(np.maximum(r, 1e-3) / r_in) / tanp)
    arms = np.maximum(0.0, np.cos(phase)) ** k * _smoothstep((r - 0.7 * r_in) / (0.6 * r_in))
    base = rng.uniform(0.3, 0.55)
    st.add(disk * base, MID, rng)
    st.add(disk * amp * arms, BLUE, rng)
    total = float(disk.sum() * (base + amp * arms.mean()))
    # Star-forming knots along the arms.
    knots = np.zeros_like(disk)
    for _ in range(rng.integers(3, 9)):
        rr = r_in * math.exp(rng.uniform(0, math.log(max(1.05 * R / r_in, 1.1))))
        th = theta0 + chir * math.log(rr / r_in) / tanp + 2 * math.pi * rng.integers(m) / m
        ux, uy = rr * math.cos(th - phi) / math.sqrt(q), rr * math.sin(th - phi) * math.sqrt(q)
        kx = x + ux * math.cos(phi) - uy * math.sin(phi)
        ky = y + ux * math.sin(phi) + uy * math.cos(phi)
        _gauss_blob(
            st, knots, kx, ky, rng.uniform(0.7, 1.3), _at(disk, kx, ky) * rng.uniform(1.0, 3.0)
        )
    st.add(knots, BLUE, rng)
    if barred:
        bar = (
            galsim.Sersic(n=0.5, half_light_radius=0.55 * bar_len)
            .shear(q=rng.uniform(0.2, 0.3), beta=theta0 * galsim.radians)
            .shear(q=q, beta=phi * galsim.radians)
        )
        img = st.draw(bar, x, y)
        st.add(img * (rng.uniform(0.2, 0.4) * total / img.sum()), (2 * RED + MID) / 3, rng)
    _bulge(
        st,
        rng,
        x,
        y,
        R * rng.uniform(0.06, 0.11),
        rng.uniform(0.8, 1.0),
        rng.uniform(0.05, 0.3) * total,
    )
    return {"pitch_deg": pitch_deg, "arms": m, "axis_ratio": q, "barred": barred}


def _edge_on(st, rng, x, y, R, iso, with_bulge):
    """An inclined exponential disk seen (nearly) edge-on, optional bulge and dust lane."""
    import galsim

    phi = rng.uniform(0, math.pi)
    h = R / rng.uniform(2.6, 3.3)
    hz = rng.uniform(0.06, 0.12)
    prof = galsim.InclinedExponential(
        inclination=rng.uniform(84, 90) * galsim.degrees, scale_radius=h, scale_h_over_r=hz
    ).rotate(phi * galsim.radians)
    disk = st.draw(prof, x, y)
    disk = st.norm_at(disk, x + R * math.cos(phi), y + R * math.sin(phi), iso)
    # Both edge-on classes have a brighter, redder, still thin inner disk, so the central brightness
    # and colour alone do not tell the bulge: its vertical extent (a few pixels) does.
    u = (st.xx - x) * math.cos(phi) + (st.yy - y) * math.sin(phi)
    disk = disk * (1 + rng.uniform(0.0, 3.0) * np.exp(-np.abs(u) / (R * rng.uniform(0.08, 0.18))))
    inner = np.exp(-0.5 * (u / (R * rng.uniform(0.2, 0.35))) ** 2) * rng.uniform(0.3, 0.7)
    layers = [(disk * (1 - inner), MID), (disk * inner, RED)]
    if with_bulge:
        re = R * rng.uniform(0.08, 0.15)
        bulge = galsim.Sersic(n=rng.uniform(1.5, 3.0), half_light_radius=re)
        img = st.draw(bulge.shear(q=rng.uniform(0.8, 1.0), beta=phi * galsim.radians), x, y)
        layers.append((img * (rng.uniform(0.3, 0.7) * disk.sum() / img.sum()), RED))
    if rng.random() < 0.5:  # a dust lane along the midplane, slightly off centre
        v = -(st.xx - x) * math.sin(phi) + (st.yy - y) * math.cos(phi)
        w, v0 = rng.uniform(0.6, 1.1), rng.uniform(-0.6, 0.6)
        lane = 1 - rng.uniform(0.4, 0.8) * np.exp(-0.5 * ((v - v0) / w) ** 2)
        layers = [(img * lane, col) for img, col in layers]
    for img, col in layers:
        st.add(img, col, rng)
    return {"bulge": with_bulge}


def _disturbed(st, rng, x, y, R, iso):
    """A lopsided, patchy disk with an off-centre nucleus and bright blue knots."""
    import galsim

    q, phi = rng.uniform(0.5, 1.0), rng.uniform(0, math.pi)
    h = R / rng.uniform(2.5, 3.3)
    off = R * rng.uniform(0.1, 0.25)
    lop_dir = rng.uniform(0, 2 * math.pi)
    dx, dy = x + off * math.cos(lop_dir), y + off * math.sin(lop_dir)  # disk centre, shifted
    disk = st.draw(galsim.Exponential(scale_radius=h).shear(q=q, beta=phi * galsim.radians), dx, dy)
    disk = st.norm_at(disk, dx + R * math.cos(phi), dy + R * math.sin(phi), iso)
    r, theta = _disk_coords(st, dx, dy, q, phi)
    lop = 1 + rng.uniform(0.5, 0.9) * np.cos(theta - lop_dir) * np.minimum(1.0, r / h)
    field = rng.standard_normal((st.side // 3 + 2, st.side // 3 + 2))
    patch = np.kron(field, np.ones((3, 3)))[: st.side, : st.side]
    patch = _blur(patch, 1.5)
    patch = np.exp(rng.uniform(0.4, 0.7) * patch / (patch.std() + 1e-9))
    disk = disk * lop * patch
    st.add(disk, MID, rng)
    knots = np.zeros_like(disk)
    for _ in range(rng.integers(3, 8)):
        a = lop_dir + rng.normal(0, 1.0)
        rr = R * rng.uniform(0.2, 0.8)
        kx, ky = dx + rr * math.cos(a), dy + rr * math.sin(a)
        _gauss_blob(st, knots, kx, ky, rng.uniform(0.8, 1.8), iso * rng.uniform(8, 25))
    st.add(knots, BLUE, rng)
    plume = rng.random() < 0.6  # tidal debris without a companion: a tail alone is not a merger
    if plume:
        tail = np.zeros_like(disk)
        start = lop_dir + rng.uniform(-1.0, 1.0)
        turn = rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.6)
        _tail(st, tail, dx, dy, start, R * rng.uniform(0.9, 1.4), turn, iso, rng)
        st.add(tail, (MID + BLUE) / 2, rng)
    _bulge(
        st,
        rng,
        x,
        y,
        R * rng.uniform(0.05, 0.1),
        rng.uniform(0.6, 1.0),
        rng.uniform(0.05, 0.3) * disk.sum(),
        colour=(RED + MID) / 2,
    )
    return {"axis_ratio": q, "plume": plume}


def _merging(st, rng, x, y, R, iso):
    """Two overlapping galaxies and one or two curved, faint tidal tails."""
    import galsim

    r1, r2 = R * rng.uniform(0.45, 0.6), R * rng.uniform(0.35, 0.5)
    d = (r1 + r2) * rng.uniform(0.2, 0.45)  # nuclei a few PSF widths apart: merged in an overview
    a = rng.uniform(0, 2 * math.pi)
    centres = [
        (x + 0.5 * d * math.cos(a), y + 0.5 * d * math.sin(a)),
        (x - 0.5 * d * math.cos(a), y - 0.5 * d * math.sin(a)),
    ]
    for (gx, gy), rg in zip(centres, (r1, r2), strict=True):
        if rng.random() < 0.35:
            _smooth(st, rng, gx, gy, rg, rng.uniform(0.6, 1.0), iso * rng.uniform(1.0, 2.0))
        else:
            h = rg / 3.0
            phi = rng.uniform(0, math.pi)
            disk = st.draw(
                galsim.Exponential(scale_radius=h).shear(
                    q=rng.uniform(0.5, 1.0), beta=phi * galsim.radians
                ),
                gx,
                gy,
            )
            disk = st.norm_at(
                disk, gx + rg * math.cos(phi), gy + rg * math.sin(phi), iso * rng.uniform(1.0, 2.0)
            )
            st.add(disk, MID, rng)
            _bulge(
                st,
                rng,
                gx,
                gy,
                rg * 0.12,
                rng.uniform(0.7, 1.0),
                rng.uniform(0.1, 0.3) * disk.sum(),
            )
    tails = np.zeros((st.side, st.side))
    n_tails = 1 if rng.random() < 0.5 else 2
    turn = rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.6)  # both tails bend the same way
    for t_i in range(n_tails):
        start = a + (0 if t_i == 0 else math.pi) + rng.uniform(-0.6, 0.6)
        _tail(st, tails, *centres[t_i], start, R * rng.uniform(1.0, 1.5), turn, iso, rng)
    st.add(tails, (MID + BLUE) / 2, rng)
    return {"separation": d, "tails": n_tails}


def _tail(st, img, x, y, start, length, turn, iso, rng) -> None:
    """A faint curved tail from (x, y): Gaussians along a widening, fading arc, and up to 3 knots."""
    peak = iso * rng.uniform(1.0, 2.0)
    steps = 40

    def at(t: float) -> tuple[float, float]:
        ang = start + turn * t
        return x + length * t * math.cos(ang), y + length * t * math.sin(ang)

    for j in range(steps):
        t = (j + 1) / steps
        _gauss_blob(st, img, *at(t), 1.2 + 1.5 * t, peak * (1 - 0.6 * t))
    for _ in range(rng.integers(0, 4)):
        _gauss_blob(
            st, img, *at(rng.uniform(0.3, 0.9)), rng.uniform(0.7, 1.2), iso * rng.uniform(4, 10)
        )


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur by FFT (periodic edges)."""
    ky = np.fft.fftfreq(img.shape[0])[:, None]
    kx = np.fft.rfftfreq(img.shape[1])[None, :]
    g = np.exp(-2 * (math.pi * sigma) ** 2 * (kx**2 + ky**2))
    return np.fft.irfft2(np.fft.rfft2(img) * g, s=img.shape)


def _psf_kernel(side: int, fwhm: float, beta: float) -> np.ndarray:
    """rfft2 of a unit-flux Moffat PSF (pixel-integrated) centred at (0, 0) of a side x side array."""
    import galsim

    r = min(int(math.ceil(3 * fwhm)) + 2, side // 2 - 1)
    k = galsim.Moffat(beta=beta, fwhm=fwhm).drawImage(nx=2 * r + 1, ny=2 * r + 1, scale=1.0).array
    full = np.zeros((side, side))
    full[: 2 * r + 1, : 2 * r + 1] = k / k.sum()
    full = np.roll(full, (-r, -r), axis=(0, 1))
    return np.fft.rfft2(full)


# ----------------------------------------------------------------------------- one galaxy
def render_galaxy(
    class_id: int, rng: np.random.Generator, cfg: GalaxySynthConfig
) -> tuple[np.ndarray, dict]:
    """Render one galaxy of class ``class_id`` (index into ``GALAXY10_DECALS``) in a noisy field.

    Args:
        class_id: The class, 0-9.
        rng: Source of all randomness (pass ``default_rng([seed, i])`` for reproducible files).
        cfg: Sizes, PSF, noise and stretch.

    Returns:
        ``(image, meta)``: a ``(size, size, 3)`` uint8 RGB image (z, r, g bands), and the ground truth:
        ``bbox`` ``(x0, y0, x1, y1)`` in pixel edges (``x0 <= col < x1``) enclosing the noise-free model
        above ``cfg.bbox_threshold`` sigmas, ``centre`` (x, y) of the system, ``psf_fwhm`` and the
        class's own parameters (e.g. ``pitch_deg``, ``axis_ratio``).

    Raises:
        ConfigError: ``class_id`` is not a class index.
    """
    if not 0 <= int(class_id) < len(GALAXY10_DECALS):
        raise ConfigError(f"class_id must be 0..{len(GALAXY10_DECALS) - 1}, got {class_id}")
    size = cfg.size
    diameter = rng.uniform(*cfg.extent) * size
    R = diameter / 2 * _RADIUS_SCALE[class_id]
    iso = rng.uniform(*cfg.iso)
    fwhm = rng.uniform(*cfg.psf_fwhm)
    pad = int(math.ceil(2 * fwhm)) + 2
    side = 2 * int(math.ceil(R * (1.9 if class_id in (MERGING, DISTURBED) else 1.45))) + 2 * pad
    side += side % 2
    st = _Stamp(side, fwhm, cfg.psf_beta)
    x = st.c + rng.uniform(-0.5, 0.5)
    y = st.c + rng.uniform(-0.5, 0.5)
    if class_id == MERGING:
        info = _merging(st, rng, x, y, 0.85 * R, iso)
    elif class_id == DISTURBED:
        info = _disturbed(st, rng, x, y, R, iso)
    elif class_id in (ROUND, IN_BETWEEN, CIGAR):
        q = {ROUND: (0.85, 1.0), IN_BETWEEN: (0.55, 0.78), CIGAR: (0.18, 0.35)}[class_id]
        n = rng.uniform(1.0, 2.5) if class_id == CIGAR else None
        info = _smooth(st, rng, x, y, R, rng.uniform(*q), iso, n=n)
    elif class_id in (BARRED, TIGHT, LOOSE):
        pitch = {BARRED: (12, 30), TIGHT: (9, 15), LOOSE: (25, 36)}[class_id]
        info = _spiral(st, rng, x, y, R, iso, rng.uniform(*pitch), barred=class_id == BARRED)
    else:
        info = _edge_on(st, rng, x, y, R, iso, with_bulge=class_id == EDGE_ON_BULGE)

    # A per-galaxy colour tilt (as redshift and dust would give) keeps the colour contrast between
    # components but blurs the colour of the whole galaxy as a class cue.
    tilt = np.exp(rng.uniform(-cfg.colour_tilt, cfg.colour_tilt) * np.array([-1.0, 0.0, 1.0]))
    model = st.blur(st.bands() * tilt[:, None, None])
    mask = model.mean(axis=0) > cfg.bbox_threshold
    if not mask.any():
        mask[int(round(y)), int(round(x))] = True
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    bx0, bx1, by0, by1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1

    # Place the stamp so that the box lies inside the field (2 px margin when it fits).
    def offset(lo: int, hi: int) -> int:
        a, b = 2 - lo, size - 2 - hi
        return int(rng.integers(a, b + 1)) if a <= b else (size - lo - hi) // 2

    ox, oy = offset(bx0, bx1), offset(by0, by1)
    sky_sd = math.sqrt(cfg.sky_level * rng.uniform(0.7, 1.3) + cfg.read_noise**2)
    sigma0 = math.sqrt(cfg.sky_level + cfg.read_noise**2)  # the nominal noise: the unit of `model`
    # Float32 from here on (SIMD: several times faster than float64 on the whole field).
    noisy = rng.standard_normal((3, size, size), dtype=np.float32)
    noisy *= np.float32(sky_sd / sigma0)
    fx0, fy0 = max(ox, 0), max(oy, 0)
    fx1, fy1 = min(ox + side, size), min(oy + side, size)
    m = model[:, fy0 - oy : fy1 - oy, fx0 - ox : fx1 - ox]
    # Inside the stamp the galaxy adds its signal and its shot noise (variance counts / gain).
    sd = np.sqrt(sky_sd**2 + np.maximum(m * sigma0, 0.0) / cfg.gain) / sky_sd
    noisy[:, fy0:fy1, fx0:fx1] = m + noisy[:, fy0:fy1, fx0:fx1] * sd
    image = asinh_rgb(noisy, cfg.stretch_softening, cfg.stretch_max)  # z, r, g -> R, G, B
    bbox = (
        float(max(bx0 + ox, 0)),
        float(max(by0 + oy, 0)),
        float(min(bx1 + ox, size)),
        float(min(by1 + oy, size)),
    )
    meta = {"bbox": bbox, "centre": (x + ox, y + oy), "psf_fwhm": fwhm, "class_id": int(class_id)}
    meta.update(info)
    return image, meta


# ----------------------------------------------------------------------------- the file
def class_sequence(cfg: GalaxySynthConfig) -> np.ndarray:
    """The label of every row: balanced counts (differing by at most one), seeded shuffle."""
    k = len(GALAXY10_DECALS)
    labels = np.arange(cfg.n) % k
    return np.random.default_rng([cfg.seed, 2**31]).permutation(labels).astype(np.uint8)


def write_galaxy_file(
    path: str | os.PathLike, cfg: GalaxySynthConfig, progress: bool = True
) -> Path:
    """Write ``cfg.n`` synthetic galaxies as a Galaxy10 DECaLS-format HDF5 file.

    Datasets: ``images`` (N, size, size, 3) uint8 stored one image per chunk, uncompressed; ``ans``
    uint8; ``ra``, ``dec`` float64 (a 10 x 10 deg patch); ``redshift`` float32; ``pxscale`` float32;
    ``bbox`` float32 (N, 4) ground truth. Metadata is independent of the class. The file is written
    to a temporary name beside ``path`` and renamed at the end, so an interrupted run leaves no file.

    Args:
        path: Output ``.h5`` file (overwritten).
        cfg: What to render.
        progress: Show a rich progress bar.

    Returns:
        The path written.

    Raises:
        ConfigError: The output folder does not exist.
        DataError: ``path`` is a folder, or the file cannot be written there.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "is a folder, expected the path of the .h5 file to write")
    if not path.parent.is_dir():
        raise ConfigError(f"--out: folder {path.parent} does not exist")
    n, size = cfg.n, cfg.size
    labels = class_sequence(cfg)
    meta_rng = np.random.default_rng([cfg.seed, 2**31 + 1])
    ra = meta_rng.uniform(150.0, 160.0, n)
    dec = np.degrees(np.arcsin(meta_rng.uniform(math.sin(0.0), math.sin(math.radians(10.0)), n)))
    redshift = meta_rng.gamma(4.0, 0.02, n).astype(np.float32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w", libver="earliest") as f:
            f.attrs["generator"] = "astroreason.data.synth_galaxy"
            f.attrs["config"] = json.dumps(asdict(cfg), sort_keys=True)
            f.attrs["class_names"] = json.dumps(list(GALAXY10_DECALS))
            opts = {"track_times": False}
            images = f.create_dataset(
                "images",
                shape=(n, size, size, 3),
                dtype=np.uint8,
                chunks=(1, size, size, 3),
                **opts,
            )
            bbox = np.zeros((n, 4), np.float32)
            for i in _progress(range(n), progress, f"rendering {n} galaxies"):
                img, meta = render_galaxy(int(labels[i]), np.random.default_rng([cfg.seed, i]), cfg)
                images[i] = img
                bbox[i] = meta["bbox"]
            f.create_dataset("ans", data=labels, **opts)
            f.create_dataset("ra", data=ra.astype(np.float64), **opts)
            f.create_dataset("dec", data=dec.astype(np.float64), **opts)
            f.create_dataset("redshift", data=redshift, **opts)
            f.create_dataset("pxscale", data=np.full(n, cfg.pxscale, np.float32), **opts)
            f.create_dataset("bbox", data=bbox, **opts)
        os.replace(tmp, path)
    except OSError as err:
        raise DataError(path, f"cannot write: {err.strerror or err}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _progress(it, show: bool, label: str):
    if not show:
        yield from it
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cols = (
        "{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*cols, transient=False) as bar:
        yield from bar.track(it, description=label)
