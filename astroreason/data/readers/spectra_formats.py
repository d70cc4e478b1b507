"""Which reader a spectrum FITS file (or a folder of them) needs: SDSS, DESI or LAMOST.

Detection reads headers only. Anything unclear, including a file that does not open, is ``sdss``:
the SDSS reader then reports the problem in its usual one-line error.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

Format = Literal["sdss", "desi", "lamost"]

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")


def is_fits_name(name: str) -> bool:
    """A FITS file name (plain or gzipped)."""
    return name.lower().endswith(FITS_SUFFIXES)


def detect_file(path: str | Path) -> Format:
    """The format of one FITS file, from its headers.

    ``desi``: an HDU named ``B_FLUX``, ``R_FLUX`` or ``Z_FLUX``. ``lamost``: primary ``TELESCOP``
    starting with LAMOST, or a 2-D primary image of at least 3 rows with no ``loglam`` table in HDU1,
    or an HDU1 table with ``FLUX`` and ``WAVELENGTH`` but no ``loglam``. Otherwise ``sdss``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyUserWarning)
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                names = []
                for hdu in hdul:
                    names.append(str(hdu.header.get("EXTNAME", "")).strip().upper())
                    if len(names) > 32:
                        break
                if {"B_FLUX", "R_FLUX", "Z_FLUX"} & set(names):
                    return "desi"
                primary = hdul[0].header
                if str(primary.get("TELESCOP", "")).strip().upper().startswith("LAMOST"):
                    return "lamost"
                cols: set[str] = set()
                if len(hdul) > 1 and isinstance(hdul[1], fits.BinTableHDU):
                    cols = {c.upper() for c in hdul[1].columns.names}
                if "LOGLAM" in cols:
                    return "sdss"
                if int(primary.get("NAXIS", 0)) == 2 and int(primary.get("NAXIS2", 0)) >= 3:
                    return "lamost"
                if {"FLUX", "WAVELENGTH"} <= cols:
                    return "lamost"
    except Exception:  # noqa: BLE001 - unreadable files go to the SDSS reader, which says why
        return "sdss"
    return "sdss"


def detect_folder(path: str | Path) -> Format:
    """The format of a folder of spectra.

    ``desi`` with any ``coadd-*.fits``, else that of its first ``spec-*`` FITS file (sorted by
    name), else ``sdss``.
    """
    p = Path(path)
    names = sorted(c.name for c in p.iterdir() if c.is_file())
    if any(n.lower().startswith("coadd-") and is_fits_name(n) for n in names):
        return "desi"
    for n in names:
        if n.lower().startswith("spec-") and is_fits_name(n):
            return detect_file(p / n)
    return "sdss"
