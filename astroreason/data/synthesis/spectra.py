"""Synthetic SDSS-format spectra: stars, star-forming and AGN galaxies, broad-line quasars.

Each spectrum is written as an SDSS ``spec-PLATE-MJD-FIBER.fits`` file that
:class:`~astroreason.data.readers.sdss.SDSSSpectraSource` (and any SDSS tool) reads: a primary HDU,
HDU1 ``COADD`` (``flux``, ``loglam``, ``ivar``, ``and_mask``, ``model``) and HDU2 ``SPALL``
(``CLASS``, ``SUBCLASS``, ``Z``, ``ZWARNING``, ``PLATE``, ``MJD``, ``FIBERID``, plus the hidden
ground truth ``KEY_WMIN`` and ``KEY_WMAX``: the observed-frame window that decides the class, never
shown to a model).

The four families are balanced:

* ``STAR`` (``SUBCLASS`` A0, F5, G2, K5, M2): a black body with Balmer, Ca II, G-band, Mg b, Na D and
  Ca-triplet absorption whose strengths follow the type, TiO band steps for K5 (weak) and M2 (strong),
  radial velocities of +-150 km/s. Key window: the type's strongest feature.
* ``GALAXY`` ``STARFORMING`` and ``AGN``: an old (4000 A break, metal absorption) plus young (blue, Balmer
  absorption) continuum at z 0.02-0.25 with narrow emission lines (1-3 A). Both classes draw the
  continuum, redshift, velocity dispersion and *total* narrow-line flux from the same distributions;
  only the BPT ratios differ ([N II]6585/H-alpha 0.3-0.4 vs 1-2, [O III]5008/H-beta < 1 vs 3-10). H-alpha
  and [N II] are 21 A apart, which a whole-spectrum plot of a few hundred pixels cannot resolve. Key
  window: H-alpha + [N II] +-30 A.
* ``QSO`` ``BROADLINE``: a power law with broad (FWHM 2000-6000 km/s) Ly-alpha, C IV, C III], Mg II,
  H-gamma, H-beta and H-alpha at z 0.3-2.5 and a Ly-alpha forest. Key window: the strongest broad line
  inside the wavelength range.

Everything is built in the rest frame on the pixel grid divided by (1+z) (lines are integrated over each
pixel), on ``loglam = 3.5793 + 1e-4 * i`` (3796-9200 A), with Gaussian noise from a per-pixel sigma (sky
lines, blue and red throughput loss) stored as ``ivar``, and a few bad pixels (``ivar = 0``, flux 0,
``and_mask`` FULLREJECT). Plate, MJD and fiber are random, so files sorted by name are not sorted by
class. Sample ``i`` draws from ``numpy.random.default_rng([seed, i])``: the same config gives the same
bytes.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: the CLI reads this module's config at start-up
    from astropy.io import fits

from astroreason.errors import ConfigError, DataError

C_KMS = 299792.458
HC_K = 1.4387769e8  # h c / k in Angstrom Kelvin
FULLREJECT = 1 << 18  # SDSS SPPIXMASK bit for a pixel rejected in every exposure

FAMILIES = ("STAR", "GALAXY STARFORMING", "GALAXY AGN", "QSO BROADLINE")
STAR_TYPES = ("A0", "F5", "G2", "K5", "M2")

# Vacuum rest wavelengths (Angstrom).
LYA, NV, CIV, CIII, MGII = 1215.67, 1240.14, 1549.06, 1908.73, 2798.75
OII = (3727.09, 3729.88)
CA_K, CA_H = 3934.78, 3969.59
H_EPS, H_DELTA, H_GAMMA, H_BETA, H_ALPHA = 3971.20, 4102.89, 4341.69, 4862.68, 6564.61
H8 = 3890.16
G_BAND = 4305.6
OIII = (4960.30, 5008.24)
MG_B = (5167.32, 5172.68, 5183.60)
NA_D = (5891.58, 5897.56)
NII = (6549.86, 6585.27)
SII = (6718.29, 6732.67)
CA_TRIPLET = (8500.36, 8544.44, 8664.52)
TIO_HEADS = (4954.0, 5167.0, 5448.0, 6159.0, 7054.0, 7589.0, 8432.0)
BALMER = (H8, H_EPS, H_DELTA, H_GAMMA, H_BETA, H_ALPHA)
# Bright night-sky emission lines (vacuum Angstrom): extra noise, never signal.
SKY_LINES = (
    5578.9, 5891.6, 5897.6, 6302.0, 6365.5, 6865.0, 7246.0, 7318.2, 7342.0, 7752.0, 7794.1,
    7823.8, 7915.1, 7966.9, 7995.6, 8346.9, 8401.6, 8432.4, 8467.7, 8507.9, 8829.8, 8888.3,
    8922.2, 8945.9, 8960.0, 8990.0, 9004.1, 9041.1,
)  # fmt: skip

# Per stellar type: temperature (K), Balmer depth and width (A), Ca H/K depth, G band, Mg b, Na D,
# Ca triplet depths, TiO depth.
_STARS: dict[str, dict[str, float]] = {
    "A0": dict(T=9600, balmer=0.55, bw=14.0, cahk=0.15, gband=0.0, mgb=0.05, nad=0.04, cat=0.10, tio=0.0),
    "F5": dict(T=6500, balmer=0.40, bw=5.0, cahk=0.50, gband=0.15, mgb=0.15, nad=0.12, cat=0.20, tio=0.0),
    "G2": dict(T=5800, balmer=0.28, bw=2.5, cahk=0.70, gband=0.30, mgb=0.30, nad=0.25, cat=0.30, tio=0.0),
    "K5": dict(T=4400, balmer=0.12, bw=1.8, cahk=0.80, gband=0.35, mgb=0.50, nad=0.50, cat=0.35, tio=0.06),
    "M2": dict(T=3600, balmer=0.05, bw=1.5, cahk=0.65, gband=0.20, mgb=0.40, nad=0.60, cat=0.30, tio=0.45),
}  # fmt: skip
# Key window per stellar type, rest frame (Angstrom).
_STAR_KEY = {
    "A0": (H_BETA - 45.0, H_BETA + 45.0),  # broad Balmer absorption
    "F5": (3915.0, 3995.0),  # Ca II K and H + H-epsilon
    "G2": (5140.0, 5215.0),  # Mg b triplet
    "K5": (5860.0, 5930.0),  # Na D
    "M2": (7000.0, 7250.0),  # TiO band head at 7054
}
# Broad QSO lines: rest wavelength and rest equivalent width range (Angstrom).
_QSO_LINES = (
    ("Ly-alpha", LYA, (60.0, 110.0)),
    ("N V", NV, (8.0, 15.0)),
    ("C IV", CIV, (25.0, 45.0)),
    ("C III]", CIII, (15.0, 25.0)),
    ("Mg II", MGII, (25.0, 45.0)),
    ("H-gamma", H_GAMMA, (10.0, 18.0)),
    ("H-beta", H_BETA, (50.0, 90.0)),
    ("H-alpha", H_ALPHA, (200.0, 400.0)),
)
_KEY_LINES = ("Ly-alpha", "C IV", "C III]", "Mg II", "H-beta", "H-alpha")


@dataclass(frozen=True)
class SpectraSynthConfig:
    """Settings of the synthetic spectra (defaults give SDSS-like spectra).

    Attributes:
        n: Number of spectra; the four families (STAR, GALAXY STARFORMING, GALAXY AGN, QSO BROADLINE)
            take turns, so each has n/4 (+-1).
        seed: Random seed; sample ``i`` draws from ``numpy.random.default_rng([seed, i])``.
        loglam0: log10 of the first pixel's wavelength (SDSS: 3.5793, 3796 A).
        n_pixels: Pixels on the ``loglam0 + 1e-4 * i`` grid (3846 reaches 9200 A).
        z_galaxy: Redshift range of galaxies (both galaxy classes, uniform).
        z_qso: Redshift range of quasars (uniform).
        snr: Range of the continuum signal-to-noise per pixel (log-uniform, median over the grid).
        line_ew: Range of the total rest equivalent width (Angstrom, relative to the continuum at
            H-alpha) of all narrow galaxy lines together; the same for both galaxy classes.
        sigma_v: Range of the narrow-line velocity dispersion (km/s), before the 70 km/s instrument.
        nii_ha_sf: [N II]6585/H-alpha range of star-forming galaxies.
        nii_ha_agn: [N II]6585/H-alpha range of AGN.
        oiii_hb_sf: [O III]5008/H-beta range of star-forming galaxies. By default the same as
            ``oiii_hb_agn``, so that only [N II]/H-alpha (21 A from H-alpha) decides the family.
        oiii_hb_agn: [O III]5008/H-beta range of AGN.
        balmer_decrement: H-alpha/H-beta range (dust), the same for both galaxy classes.
        qso_fwhm: Broad-line FWHM range (km/s).
        bad_pixels: Range (inclusive) of isolated bad pixels per spectrum; a run of 3-20 is added to
            a third of the spectra.
        key_pad: Half-width padding (Angstrom, observed frame) of the galaxy key window around
            [N II]6550 - [N II]6585, and the minimum half-width of a QSO key window.
    """

    n: int = 400
    seed: int = 0
    loglam0: float = 3.5793
    n_pixels: int = 3846
    z_galaxy: tuple[float, float] = (0.02, 0.25)
    z_qso: tuple[float, float] = (0.3, 2.5)
    snr: tuple[float, float] = (6.0, 25.0)
    line_ew: tuple[float, float] = (25.0, 70.0)
    sigma_v: tuple[float, float] = (50.0, 120.0)
    nii_ha_sf: tuple[float, float] = (0.3, 0.4)
    nii_ha_agn: tuple[float, float] = (1.0, 2.0)
    oiii_hb_sf: tuple[float, float] = (0.5, 5.0)
    oiii_hb_agn: tuple[float, float] = (0.5, 5.0)
    balmer_decrement: tuple[float, float] = (3.5, 6.0)
    qso_fwhm: tuple[float, float] = (2000.0, 6000.0)
    bad_pixels: tuple[int, int] = (2, 12)
    key_pad: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise ConfigError(f"n must be a positive integer, got {self.n!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.n_pixels, int) or self.n_pixels < 100:
            raise ConfigError(f"n_pixels must be an integer >= 100, got {self.n_pixels!r}")
        if not (math.isfinite(self.loglam0) and 3.0 < self.loglam0 < 4.5):
            raise ConfigError(f"loglam0 must be log10 of an optical wavelength, got {self.loglam0}")
        if not (math.isfinite(self.key_pad) and self.key_pad > 0):
            raise ConfigError(f"key_pad must be positive, got {self.key_pad}")
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, tuple):
                continue
            if len(value) != 2 or not all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in value
            ):
                raise ConfigError(f"{f.name} must be a (low, high) pair of numbers, got {value!r}")
            lo, hi = value
            if lo > hi or lo < 0:
                raise ConfigError(f"{f.name} must satisfy 0 <= low <= high, got {value!r}")
        if self.snr[0] <= 0 or self.sigma_v[0] <= 0 or self.qso_fwhm[0] <= 0:
            raise ConfigError("snr, sigma_v and qso_fwhm must be positive")
        if self.balmer_decrement[0] <= 0:
            raise ConfigError("balmer_decrement must be positive")
        if not all(isinstance(v, int) for v in self.bad_pixels):
            raise ConfigError(f"bad_pixels must be two integers, got {self.bad_pixels!r}")
        wmax = 10 ** (self.loglam0 + 1e-4 * (self.n_pixels - 1))
        if (1 + self.z_galaxy[1]) * NII[1] + self.key_pad >= wmax:
            raise ConfigError(
                f"z_galaxy up to {self.z_galaxy[1]} puts [N II] beyond the grid end ({wmax:.0f} A)"
            )


@dataclass(frozen=True)
class SynthSpectrum:
    """One synthetic spectrum and its labels (what a file holds).

    Attributes:
        family: One of :data:`FAMILIES`.
        cls: SDSS ``CLASS`` (STAR, GALAXY, QSO).
        subclass: SDSS ``SUBCLASS`` (a star type, STARFORMING, AGN, BROADLINE).
        z: Redshift.
        loglam: log10 wavelength (float32, as SDSS stores it).
        flux: Observed flux, 1e-17 erg/s/cm^2/A (float32; 0 at bad pixels).
        ivar: Inverse variance (float32; 0 at bad pixels).
        model: The noiseless spectrum (float32).
        and_mask: SDSS pixel mask bits (int32).
        key_window: Observed-frame (wmin, wmax) in Angstrom that decides the class.
        plate: Plate number (random).
        mjd: Modified Julian date (random).
        fiber: Fiber number (random).
    """

    family: str
    cls: str
    subclass: str
    z: float
    loglam: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    model: np.ndarray
    and_mask: np.ndarray
    key_window: tuple[float, float]
    plate: int
    mjd: int
    fiber: int

    @property
    def file_name(self) -> str:
        """``spec-PPPP-MMMMM-FFFF.fits``."""
        return spec_file_name(self.plate, self.mjd, self.fiber)


def spec_file_name(plate: int, mjd: int, fiber: int) -> str:
    """The SDSS file name ``spec-PPPP-MMMMM-FFFF.fits``."""
    return f"spec-{plate:04d}-{mjd:05d}-{fiber:04d}.fits"


def family_of(i: int, cfg: SpectraSynthConfig) -> tuple[str, str | None]:
    """Family (and star type for stars) of sample ``i``: a seeded shuffle of a balanced sequence."""
    order = np.random.default_rng([cfg.seed, 2**32 - 1]).permutation(cfg.n)
    k = int(order[i])
    family = FAMILIES[k % len(FAMILIES)]
    star = STAR_TYPES[(k // len(FAMILIES)) % len(STAR_TYPES)] if family == "STAR" else None
    return family, star


def make_spectrum(i: int, cfg: SpectraSynthConfig) -> SynthSpectrum:
    """Build sample ``i`` of the set described by ``cfg`` (deterministic)."""
    rng = np.random.default_rng([cfg.seed, i])
    plate = int(rng.integers(266, 12000))
    mjd = int(rng.integers(51578, 59500))
    fiber = int(rng.integers(1, 1001))
    family, star = family_of(i, cfg)
    loglam = (cfg.loglam0 + 1e-4 * np.arange(cfg.n_pixels)).astype(np.float32)
    grid = _Grid(cfg.loglam0, cfg.n_pixels)
    if family == "STAR":
        model, z, key, cls, sub = _star(rng, grid, star or "G2")
    elif family == "QSO BROADLINE":
        model, z, key, cls, sub = _qso(rng, grid, cfg)
    else:
        model, z, key, cls, sub = _galaxy(rng, grid, cfg, agn=family == "GALAXY AGN")
    flux, ivar, and_mask = _observe(rng, grid, model, cfg)
    return SynthSpectrum(
        family=family,
        cls=cls,
        subclass=sub,
        z=float(z),
        loglam=loglam,
        flux=flux,
        ivar=ivar,
        model=model.astype(np.float32),
        and_mask=and_mask,
        key_window=(float(key[0]), float(key[1])),
        plate=plate,
        mjd=mjd,
        fiber=fiber,
    )


def spectrum_hdulist(s: SynthSpectrum) -> fits.HDUList:
    """The SDSS-format FITS layout of one spectrum (no timestamps: same input, same bytes)."""
    from astropy.io import fits

    primary = fits.PrimaryHDU(header=_primary_header(s))
    coadd = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="flux", format="E", array=s.flux),
            fits.Column(name="loglam", format="E", array=s.loglam),
            fits.Column(name="ivar", format="E", array=s.ivar),
            fits.Column(name="and_mask", format="J", array=s.and_mask),
            fits.Column(name="model", format="E", array=s.model),
        ],
        name="COADD",
    )
    spall = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="PLATE", format="J", array=np.array([s.plate], np.int32)),
            fits.Column(name="MJD", format="J", array=np.array([s.mjd], np.int32)),
            fits.Column(name="FIBERID", format="J", array=np.array([s.fiber], np.int32)),
            fits.Column(name="CLASS", format="6A", array=np.array([s.cls])),
            fits.Column(name="SUBCLASS", format="21A", array=np.array([s.subclass])),
            fits.Column(name="Z", format="E", array=np.array([s.z], np.float32)),
            fits.Column(name="ZWARNING", format="J", array=np.array([0], np.int32)),
            fits.Column(name="KEY_WMIN", format="D", array=np.array([s.key_window[0]])),
            fits.Column(name="KEY_WMAX", format="D", array=np.array([s.key_window[1]])),
        ],
        name="SPALL",
    )
    return fits.HDUList([primary, coadd, spall])


_COADD_DTYPE = np.dtype(
    [("flux", ">f4"), ("loglam", ">f4"), ("ivar", ">f4"), ("and_mask", ">i4"), ("model", ">f4")]
)
_SPALL_DTYPE = np.dtype(
    [
        ("PLATE", ">i4"),
        ("MJD", ">i4"),
        ("FIBERID", ">i4"),
        ("CLASS", "S6"),
        ("SUBCLASS", "S21"),
        ("Z", ">f4"),
        ("ZWARNING", ">i4"),
        ("KEY_WMIN", ">f8"),
        ("KEY_WMAX", ">f8"),
    ]
)
_BLOCK = 2880


def spectrum_bytes(s: SynthSpectrum) -> bytes:
    """The bytes :func:`spectrum_hdulist` writes, assembled directly (about 10x faster than astropy).

    Table headers depend only on the pixel count and come from astropy once; the primary header is
    built per file; the data are the big-endian rows padded to 2880-byte blocks.
    """
    primary, coadd_hdr, spall_hdr = _headers(s)
    coadd = np.empty(s.flux.size, _COADD_DTYPE)
    for name, arr in (
        ("flux", s.flux),
        ("loglam", s.loglam),
        ("ivar", s.ivar),
        ("and_mask", s.and_mask),
        ("model", s.model),
    ):
        coadd[name] = arr
    spall = np.zeros(1, _SPALL_DTYPE)
    spall[0] = (
        s.plate,
        s.mjd,
        s.fiber,
        s.cls.encode(),
        s.subclass.encode(),
        s.z,
        0,
        s.key_window[0],
        s.key_window[1],
    )
    return b"".join((primary, coadd_hdr, _pad(coadd.tobytes()), spall_hdr, _pad(spall.tobytes())))


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % _BLOCK)


_HEADER_CACHE: dict[int, tuple[bytes, bytes]] = {}


def _headers(s: SynthSpectrum) -> tuple[bytes, bytes, bytes]:
    if s.flux.size not in _HEADER_CACHE:
        hdul = spectrum_hdulist(s)
        _HEADER_CACHE[s.flux.size] = (
            hdul[1].header.tostring(padding=True).encode("ascii"),
            hdul[2].header.tostring(padding=True).encode("ascii"),
        )
    primary = _primary_header(s).tostring(padding=True).encode("ascii")
    return (primary, *_HEADER_CACHE[s.flux.size])


def _primary_header(s: SynthSpectrum) -> fits.Header:
    from astropy.io import fits

    hdr = fits.PrimaryHDU().header
    hdr["TELESCOP"] = ("SDSS 2.5-M", "synthetic spectrum in the SDSS layout")
    hdr["PLATEID"] = s.plate
    hdr["MJD"] = s.mjd
    hdr["FIBERID"] = s.fiber
    hdr["COEFF0"] = (float(s.loglam[0]), "log10 wavelength of the first pixel")
    hdr["COEFF1"] = (1e-4, "log10 wavelength step")
    return hdr


def write_spectra_dir(
    out_dir: str | os.PathLike,
    cfg: SpectraSynthConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``cfg.n`` synthetic spectra as ``spec-*.fits`` files into a new folder.

    The files are written into a temporary folder next to ``out_dir`` which is then renamed, so a
    crash leaves no half-written data set.

    Args:
        out_dir: The folder to create (an existing empty folder is replaced).
        cfg: The settings (default :class:`SpectraSynthConfig()`).
        progress: Show a rich progress bar.
        overwrite: Replace an existing non-empty ``out_dir``.

    Returns:
        The folder.

    Raises:
        ConfigError: ``cfg`` is not a :class:`SpectraSynthConfig`.
        DataError: ``out_dir`` exists, is not empty and ``overwrite`` is False, or is a file; or it
            cannot be written (its parent is a file, no permission, disk full).
    """
    cfg = SpectraSynthConfig() if cfg is None else cfg
    if not isinstance(cfg, SpectraSynthConfig):
        raise ConfigError(f"cfg must be a SpectraSynthConfig, got {type(cfg).__name__}")
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise DataError(out, "exists and is a file, expected a folder for spec-*.fits files")
        if any(out.iterdir()) and not overwrite:
            raise DataError(
                out,
                "folder exists and is not empty: remove it or choose another "
                "(overwrite=True replaces it)",
            )
    above = next((a for a in out.parents if a.exists()), None)
    if above is not None and not above.is_dir():
        raise DataError(out, f"cannot make this folder: {above} is a file")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as err:
        raise DataError(out, f"cannot write here: {err.strerror or err}") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the data set is not
    try:
        _write_all(tmp, cfg, progress)
        if out.exists():
            old = out.with_name(f".{out.name}.{os.getpid()}.old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(out, f"cannot write: {err.strerror or err}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_all(folder: Path, cfg: SpectraSynthConfig, progress: bool) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    used: set[str] = set()
    columns = (
        TextColumn("synthetic spectra"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("spectra", total=cfg.n)
        for i in range(cfg.n):
            s = make_spectrum(i, cfg)
            name = s.file_name
            fiber = s.fiber
            while name in used:  # rare id collision: move to the next fiber, deterministically
                fiber = fiber % 1000 + 1
                name = spec_file_name(s.plate, s.mjd, fiber)
            if fiber != s.fiber:
                s = replace(s, fiber=fiber)
            used.add(name)
            (folder / name).write_bytes(spectrum_bytes(s))
            bar.advance(task)


# --------------------------------------------------------------------------------------- physics


class _Grid:
    """The observed log-wavelength grid: pixel centres and edges in Angstrom."""

    def __init__(self, loglam0: float, n: int):
        idx = np.arange(n, dtype=np.float64)
        self.wave = 10 ** (loglam0 + 1e-4 * idx)
        self.edges = 10 ** (loglam0 + 1e-4 * (np.arange(n + 1, dtype=np.float64) - 0.5))
        self.width = np.diff(self.edges)
        self.wmin, self.wmax = float(self.wave[0]), float(self.wave[-1])


def _erf(x: np.ndarray) -> np.ndarray:
    """Error function (Abramowitz and Stegun 7.1.26, |error| < 1.5e-7)."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = 1.061405429
    for coef in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly = coef + t * poly
    poly = t * poly
    return s * (1.0 - poly * np.exp(-a * a))


def _emission(edges: np.ndarray, centers, sigmas, fluxes) -> np.ndarray:
    """Gaussian lines integrated over pixels: flux density (flux / Angstrom) per pixel."""
    out = np.zeros(edges.size - 1)
    width = np.diff(edges)
    for c, s, f in zip(centers, sigmas, fluxes, strict=True):
        if f == 0:
            continue
        lo = max(int(np.searchsorted(edges, c - 8 * s)) - 1, 0)
        hi = min(int(np.searchsorted(edges, c + 8 * s)) + 1, edges.size - 1)
        if hi <= lo:
            continue
        cdf = 0.5 * (1 + _erf((edges[lo : hi + 1] - c) / (s * math.sqrt(2))))
        out[lo:hi] += f * np.diff(cdf) / width[lo:hi]
    return out


def _absorption(wave: np.ndarray, centers, sigmas, depths) -> np.ndarray:
    """A multiplicative absorption profile (1 = no absorption); Gaussians in optical depth."""
    tau = np.zeros_like(wave)
    for c, s, d in zip(centers, sigmas, depths, strict=True):
        if d <= 0:
            continue
        sel = np.abs(wave - c) < 8 * s
        tau[sel] += -math.log(1 - min(d, 0.98)) * np.exp(-0.5 * ((wave[sel] - c) / s) ** 2)
    return np.exp(-tau)


def _planck(wave: np.ndarray, temp: float) -> np.ndarray:
    """Black-body f_lambda (arbitrary units), normalised to 1 at 5500 A."""

    def b(w):
        return w**-5.0 / np.expm1(HC_K / (w * temp))

    return b(wave) / b(np.array(5500.0))


def _tio(wave: np.ndarray, depth: float, rng: np.random.Generator) -> np.ndarray:
    """TiO bands: a sharp drop at each band head recovering towards the red."""
    out = np.ones_like(wave)
    for head in TIO_HEADS:
        d = depth * rng.uniform(0.6, 1.0) * (1.0 if head in (6159.0, 7054.0, 7589.0) else 0.7)
        scale = rng.uniform(80.0, 160.0)
        x = wave - head
        edge = 0.5 * (1 + np.tanh(x / 1.5))  # a head about one pixel wide
        out *= 1 - d * edge * np.exp(-np.clip(x, 0, None) / scale)
    return out


def _star(rng: np.random.Generator, grid: _Grid, stype: str):
    p = _STARS[stype]
    z = rng.uniform(-150.0, 150.0) / C_KMS
    w = grid.wave / (1 + z)
    temp = p["T"] * rng.uniform(0.97, 1.03)
    cont = _planck(w, temp) * (w / 5500.0) ** rng.uniform(-0.4, 0.4)  # mild reddening
    jit = rng.uniform(0.85, 1.15)
    centers, sigmas, depths = [], [], []
    for k, line in enumerate(BALMER):
        damp = 1.0 if k >= 3 else 0.8  # the bluest Balmer lines blend in real spectra
        centers += [line, line]
        sigmas += [p["bw"] * 0.35, p["bw"]]
        depths += [p["balmer"] * 0.5 * jit * damp, p["balmer"] * 0.6 * jit * damp]
    centers += [CA_K, CA_H]
    sigmas += [2.0 + 4.0 * p["cahk"]] * 2
    depths += [p["cahk"] * jit, p["cahk"] * 0.9 * jit]
    centers.append(G_BAND)
    sigmas.append(6.0)
    depths.append(p["gband"] * jit)
    centers += list(MG_B)
    sigmas += [1.8] * 3
    depths += [p["mgb"] * jit * 0.8] * 3
    centers += list(NA_D)
    sigmas += [1.6] * 2
    depths += [p["nad"] * jit] * 2
    centers += list(CA_TRIPLET)
    sigmas += [2.2] * 3
    depths += [p["cat"] * jit] * 3
    model = cont * _absorption(w, centers, sigmas, depths)
    if p["tio"] > 0:
        model = model * _tio(w, p["tio"], rng)
    amp = 10 ** rng.uniform(0.7, 2.3)  # 5-200 units at 5500 A
    model = amp * model / np.median(model)
    lo, hi = _STAR_KEY[stype]
    return model, z, (lo * (1 + z), hi * (1 + z)), "STAR", stype


def _galaxy(rng: np.random.Generator, grid: _Grid, cfg: SpectraSynthConfig, agn: bool):
    """A galaxy; both classes draw everything from the same distributions except the ratios."""
    z = rng.uniform(*cfg.z_galaxy)
    w = grid.wave / (1 + z)
    edges = grid.edges / (1 + z)
    sigma_v = math.hypot(rng.uniform(*cfg.sigma_v), 70.0)  # plus the instrument
    star_v = rng.uniform(120.0, 250.0)  # stellar velocity dispersion for the absorption lines

    def broad(line, intrinsic):
        return math.hypot(intrinsic, line * star_v / C_KMS)

    old = _planck(w, rng.uniform(4300.0, 5200.0))
    brk = rng.uniform(0.35, 0.6)
    old = old * (1 - brk * (1 - 1 / (1 + np.exp(-(w - 4000.0) / 25.0))))
    old = old * _absorption(
        w,
        [CA_K, CA_H, G_BAND, *MG_B, *NA_D, H_BETA, H_ALPHA, *CA_TRIPLET],
        [broad(CA_K, 3), broad(CA_H, 3), 6.0, *(broad(5170, 1.5),) * 3, *(broad(5894, 1.5),) * 2]
        + [broad(H_BETA, 2.0), broad(H_ALPHA, 2.0), *(broad(8550, 2.0),) * 3],
        [0.45, 0.4, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2, 0.1, 0.08, 0.15, 0.15, 0.15],
    )
    young = _planck(w, rng.uniform(9000.0, 16000.0))
    young = young * _absorption(
        w, BALMER, [broad(line, 8.0) for line in BALMER], [0.3, 0.3, 0.3, 0.3, 0.25, 0.15]
    )
    f_young = rng.uniform(0.05, 0.6)
    cont = (1 - f_young) * old + f_young * young
    cont = cont * (w / 5500.0) ** rng.uniform(-0.5, 0.5)

    nii = rng.uniform(*(cfg.nii_ha_agn if agn else cfg.nii_ha_sf))
    oiii = rng.uniform(*(cfg.oiii_hb_agn if agn else cfg.oiii_hb_sf))
    hb = 1.0 / rng.uniform(*cfg.balmer_decrement)
    sii = rng.uniform(0.2, 0.5)
    oii = rng.uniform(0.5, 1.5)
    lines = {
        OII[0]: oii * 0.43,
        OII[1]: oii * 0.57,
        H_DELTA: hb * 0.26,
        H_GAMMA: hb * 0.47,
        H_BETA: hb,
        OIII[0]: oiii * hb / 2.98,
        OIII[1]: oiii * hb,
        NII[0]: nii / 3.05,
        H_ALPHA: 1.0,
        NII[1]: nii,
        SII[0]: sii * 0.55,
        SII[1]: sii * 0.45,
    }
    total = sum(lines.values())
    cont_ha = float(np.interp(H_ALPHA, w, cont))
    ew = rng.uniform(*cfg.line_ew)
    centers = list(lines)
    sigmas = [c * sigma_v / C_KMS for c in centers]
    fluxes = [ew * cont_ha * v / total for v in lines.values()]
    model = cont + _emission(edges, centers, sigmas, fluxes)
    amp = 10 ** rng.uniform(0.5, 1.8)  # 3-60 units
    model = amp * model / np.median(cont)
    key = (NII[0] * (1 + z) - cfg.key_pad, NII[1] * (1 + z) + cfg.key_pad)
    return model, z, key, "GALAXY", "AGN" if agn else "STARFORMING"


def _qso(rng: np.random.Generator, grid: _Grid, cfg: SpectraSynthConfig):
    z = rng.uniform(*cfg.z_qso)
    w = grid.wave / (1 + z)
    edges = grid.edges / (1 + z)
    beta = rng.uniform(1.0, 2.0)
    cont = (w / 3000.0) ** -beta
    fwhm = rng.uniform(*cfg.qso_fwhm)
    centers, sigmas, fluxes, names = [], [], [], []
    for name, line, (ew_lo, ew_hi) in _QSO_LINES:
        sig = line * fwhm / 2.3548 / C_KMS * (0.8 if name == "N V" else 1.0)
        ew = rng.uniform(ew_lo, ew_hi)
        c_line = (line / 3000.0) ** -beta
        centers.append(line)
        sigmas.append(sig)
        fluxes.append(ew * float(c_line))
        names.append(name)
    narrow = math.hypot(rng.uniform(200.0, 400.0), 70.0)
    for line, frac in ((OIII[1], 1.0), (OIII[0], 1 / 2.98)):
        centers.append(line)
        sigmas.append(line * narrow / C_KMS)
        fluxes.append(rng.uniform(5.0, 20.0) * frac * (line / 3000.0) ** -beta)
    model = cont + _emission(edges, centers, sigmas, fluxes)
    forest = w < LYA
    if forest.any():  # Ly-alpha forest: many narrow absorbers blueward of Ly-alpha
        n_abs = int(rng.poisson(0.6 * (LYA - max(w[0], 900.0))))
        ca = rng.uniform(max(w[0], 900.0) - 5, LYA, n_abs)
        model = model * _absorption(
            w, ca, rng.uniform(0.3, 1.2, n_abs), rng.uniform(0.2, 0.9, n_abs)
        )
    amp = 10 ** rng.uniform(0.5, 1.6)
    model = amp * model / np.median(cont)
    # key window: the strongest broad line that lies wholly inside the grid
    best = None
    for name, c, s, f in zip(names, centers, sigmas, fluxes, strict=False):
        if name not in _KEY_LINES:
            continue
        half = max(2.5 * s * (1 + z), cfg.key_pad * 1.5)
        lo, hi = c * (1 + z) - half, c * (1 + z) + half
        if lo < grid.wmin + 5 or hi > grid.wmax - 5:
            continue
        if best is None or f > best[0]:
            best = (f, lo, hi)
    if best is None:  # no whole line inside: the widest part of the power law
        best = (0.0, grid.wmin, grid.wmax)
    return model, z, best[1:], "QSO", "BROADLINE"


def _observe(rng: np.random.Generator, grid: _Grid, model: np.ndarray, cfg: SpectraSynthConfig):
    """Noise with a matching ivar, and a few bad pixels."""
    wave = grid.wave
    shape = 1.0 + 2.0 * np.exp(-(wave - wave[0]) / 200.0)
    shape += np.where(wave > 7500.0, 0.6 * ((wave - 7500.0) / 1700.0) ** 2, 0.0)
    sky = _emission(grid.edges, SKY_LINES, [1.3] * len(SKY_LINES), [1.0] * len(SKY_LINES))
    shape = np.sqrt(shape**2 + (rng.uniform(2.0, 5.0) * sky / sky.max()) ** 2)
    snr = math.exp(rng.uniform(math.log(cfg.snr[0]), math.log(cfg.snr[1])))
    sigma = np.median(np.abs(model)) / snr * shape
    flux = model + sigma * rng.standard_normal(model.size)
    ivar = 1.0 / sigma**2
    bad = rng.choice(model.size, size=int(rng.integers(cfg.bad_pixels[0], cfg.bad_pixels[1] + 1)))
    bad_mask = np.zeros(model.size, bool)
    bad_mask[bad] = True
    if rng.random() < 1 / 3:
        start = int(rng.integers(0, model.size - 20))
        bad_mask[start : start + int(rng.integers(3, 21))] = True
    flux[bad_mask] = 0.0
    ivar[bad_mask] = 0.0
    and_mask = np.where(bad_mask, FULLREJECT, 0).astype(np.int32)
    return flux.astype(np.float32), ivar.astype(np.float32), and_mask
