"""LAMOST low-resolution (LRS) 1-D spectra, one file or a folder of them.

Two layouts are read, both with the labels in the primary header (``CLASS``, ``SUBCLASS``, ``Z``,
``Z_ERR``, written by the LAMOST 1-D pipeline):

* the image layout of the early data releases (DR1-DR7 and their ``.fits.gz`` files): the primary
  HDU is a float32 image of 5 rows x n pixels (the header's ``EXTEN0`` says ``Flux, Inverse,
  Wavelength, Andmask, Ormask``): flux, inverse variance, vacuum wavelength (Angstrom), and-mask,
  or-mask;
* the table layout of the later releases: HDU1 is a binary table with one row whose array columns
  are ``FLUX``, ``IVAR``, ``WAVELENGTH``, ``ANDMASK``, ``ORMASK`` (and ``NORMALIZATION``).

``Sample.spectrum`` holds the wavelength (float64), ``flux`` and ``ivar`` (float32) and ``mask =
(ivar == 0) | (andmask != 0) | ~isfinite(flux)``. ``Sample.meta`` holds ``file_name``, ``obsid``
(header ``OBSID``, else -1), ``z``, ``z_err``, ``class``, ``subclass``, ``lmjd``, ``planid``,
``spid`` and ``fiber`` (header ``LMJD``, ``PLANID``, ``SPID``, ``FIBERID``): labels, near-labels and
ids, never shown to a model. LAMOST's ``CLASS`` is STAR, GALAXY, QSO or Unknown; an Unknown (or any
other) class is an error for ``task="class"``, as in the SDSS reader.

Files are ``spec-*.fits`` (``.fit``, ``.fts``, ``.fits.gz``). Every problem is a one-line
:class:`~astroreason.errors.DataError` naming the file and the field.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from astroreason.data.base import Sample, SampleSource, Spectrum, check_wavelength
from astroreason.data.classes import spectrum_class_names
from astroreason.data.readers.sdss import (
    _check_size,
    _float,
    _int,
    _open_fits,
    _to_str,
    label_for,
    list_files,
)
from astroreason.errors import DataError

SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
IMAGE_ROWS = ("flux", "ivar", "wavelength", "andmask", "ormask")
"""Rows of the primary image in the image layout."""
TABLE_COLUMNS = ("FLUX", "IVAR", "WAVELENGTH")
"""Required HDU1 columns of the table layout (``ANDMASK`` is read when present)."""


def is_spectrum_name(name: str) -> bool:
    """``spec-*`` with a FITS suffix (plain or gzipped)."""
    low = name.lower()
    return low.startswith("spec-") and low.endswith(SUFFIXES)


class LAMOSTSpectraSource(SampleSource):
    """LAMOST LRS spectra: one FITS file, or a folder of ``spec-*.fits`` files (sorted by name).

    Args:
        path: A file, or a folder whose ``spec-*.fits`` (``.fit``, ``.fts``, ``.fits.gz``) files are read.
        task: ``"class"`` (STAR, GALAXY, QSO) or ``"subclass"`` (the families of
            :func:`~astroreason.data.readers.sdss.subclass_family`; LAMOST stellar subclasses are all
            ``STAR``).

    Raises:
        ConfigError: ``task`` is not ``"class"`` or ``"subclass"``.
        DataError: The path is missing; a folder holds no ``spec-*`` FITS file; a file is not FITS or is
            truncated; it has neither layout; ``CLASS`` is missing from the primary header or outside
            the task's classes. Loading a sample raises DataError for rows or columns of different
            lengths, a bad wavelength array (see :func:`read_lamost_spectrum`), or no valid pixel.
    """

    kind = "spectrum"

    def __init__(self, path: str | os.PathLike, task: str = "class"):
        self.class_names = spectrum_class_names(task)
        self.path = str(path)
        self.task = task
        self._files = list_files(Path(self.path), is_spectrum_name, "spec-*.fits")
        rows = [self._read_header(f) for f in self._files]
        self._labels = np.array([r.pop("label") for r in rows], dtype=np.int64)
        self._rows: list[dict[str, Any]] = rows

    def _read_header(self, f: Path) -> dict[str, Any]:
        with _open_fits(f) as hdul:
            try:
                len(hdul)
            except OSError as err:
                raise DataError(f, f"unreadable FITS file (truncated?): {err}") from None
            if not _gzipped(f):
                _check_size(f, hdul)
            layout(f, hdul)  # raises when neither layout fits
            hdr = hdul[0].header
            if "CLASS" not in hdr:
                raise DataError(f, "missing primary-header keyword", field="CLASS")
            cls = _to_str(hdr.get("CLASS", "")).strip().upper()
            sub = _to_str(hdr.get("SUBCLASS", "")).strip()
            if self.task == "subclass" and "SUBCLASS" not in hdr:
                raise DataError(
                    f, "missing primary-header keyword, needed for task='subclass'", "SUBCLASS"
                )
            meta: dict[str, Any] = {
                "file_name": f.name,
                "obsid": _int(hdr.get("OBSID", -1)),
                "z": _float(hdr.get("Z", math.nan)),
                "z_err": _float(hdr.get("Z_ERR", math.nan)),
                "class": cls,
                "subclass": sub,
                "lmjd": _int(hdr.get("LMJD", -1)),
                "planid": _to_str(hdr.get("PLANID", "")).strip(),
                "spid": _int(hdr.get("SPID", -1)),
                "fiber": _int(hdr.get("FIBERID", -1)),
            }
        meta["label"] = label_for(f, cls, sub, self.task)
        return meta

    def __len__(self) -> int:
        """Number of spectra (files)."""
        return len(self._files)

    def _load(self, i: int) -> Sample:
        spectrum = read_lamost_spectrum(self._files[i])
        return Sample(
            row_id=i, label=int(self._labels[i]), spectrum=spectrum, meta=dict(self._rows[i])
        )

    def labels(self) -> np.ndarray:
        """Labels as int64 (indices into ``class_names``), in row order."""
        return self._labels.copy()

    def metadata(self) -> dict[str, np.ndarray]:
        """``z``, ``z_err``, ``obsid``, ``lmjd``, ``spid``, ``fiber``, ``planid`` and ``file_name``."""
        out: dict[str, np.ndarray] = {
            "z": np.array([r["z"] for r in self._rows], dtype=np.float64),
            "z_err": np.array([r["z_err"] for r in self._rows], dtype=np.float64),
        }
        for key in ("obsid", "lmjd", "spid", "fiber"):
            out[key] = np.array([r[key] for r in self._rows], dtype=np.int64)
        for key in ("planid", "file_name"):
            out[key] = np.array([r[key] for r in self._rows], dtype=object)
        return out

    @property
    def files(self) -> list[Path]:
        """The FITS files, in row order."""
        return list(self._files)


def layout(f: Path, hdul: fits.HDUList) -> str:
    """``"image"`` or ``"table"``: which LAMOST layout an open file has.

    Raises:
        DataError: Neither: the primary HDU is not a 2-D image of at least 3 rows, and HDU1 is not a
            binary table with ``FLUX``, ``IVAR`` and ``WAVELENGTH``.
    """
    primary = hdul[0]
    naxis = int(primary.header.get("NAXIS", 0))
    if naxis == 2 and int(primary.header.get("NAXIS2", 0)) >= 3:
        return "image"
    if len(hdul) >= 2 and isinstance(hdul[1], fits.BinTableHDU):
        names = {n.upper() for n in hdul[1].columns.names}
        missing = [c for c in TABLE_COLUMNS if c not in names]
        if not missing:
            return "table"
        raise DataError(
            f,
            f"missing column {missing[0]!r} (found: {', '.join(hdul[1].columns.names) or 'none'})",
            field="HDU1",
        )
    if naxis == 2:
        raise DataError(
            f,
            f"primary image has {primary.header.get('NAXIS2')} rows; expected "
            f"{len(IMAGE_ROWS)} ({', '.join(IMAGE_ROWS)})",
            field="PRIMARY",
        )
    raise DataError(
        f,
        "neither a 2-D primary image (flux, ivar, wavelength, andmask, ormask) nor an HDU1 table "
        "with FLUX, IVAR, WAVELENGTH",
        field="PRIMARY",
    )


def read_lamost_spectrum(path: str | os.PathLike) -> Spectrum:
    """Read one LAMOST LRS file (either layout).

    Raises:
        DataError: Unreadable file, neither layout, arrays of different lengths, a bad wavelength
            array (see :func:`~astroreason.data.base.check_wavelength`: too short, not increasing,
            or not in Angstrom, e.g. nm), or no valid pixel.
    """
    f = Path(path)
    try:
        with _open_fits(f) as hdul:
            kind = layout(f, hdul)
            if kind == "image":
                data = np.asarray(hdul[0].data)
                arrays = {name: data[k] for k, name in enumerate(IMAGE_ROWS) if k < data.shape[0]}
                where = "PRIMARY"
            else:
                table = hdul[1].data
                if table is None or len(table) == 0:
                    raise DataError(f, "table has no rows", field="HDU1")
                cols = {n.upper(): n for n in hdul[1].columns.names}
                arrays = {
                    c.lower(): np.asarray(table[cols[c]][0]).reshape(-1)
                    for c in (*TABLE_COLUMNS, "ANDMASK")
                    if c in cols
                }
                where = "HDU1"
    except OSError as err:
        raise DataError(f, f"cannot read the spectrum (truncated file?): {err}") from None
    wl = np.asarray(arrays["wavelength"], dtype=np.float64)
    n = wl.size
    for name in ("flux", "ivar", "andmask"):
        if name in arrays and np.asarray(arrays[name]).size != n:
            raise DataError(
                f,
                f"{np.asarray(arrays[name]).size} values but wavelength has {n}",
                f"{where}.{name}",
            )
    wl = check_wavelength(f, wl, f"{where}.wavelength")
    flux = np.asarray(arrays["flux"], dtype=np.float32)
    ivar = np.asarray(arrays["ivar"], dtype=np.float32)
    ivar = np.where(np.isfinite(ivar) & (ivar > 0), ivar, np.float32(0)).astype(np.float32)
    mask = (ivar == 0) | ~np.isfinite(flux)
    if "andmask" in arrays:
        andmask = np.asarray(arrays["andmask"])
        mask |= np.isfinite(andmask) & (andmask != 0) if andmask.dtype.kind == "f" else andmask != 0
    if mask.all():
        raise DataError(
            f, f"no valid pixels (all {n} have ivar == 0 or a nonzero andmask)", f"{where}.ivar"
        )
    return Spectrum(wavelength=wl, flux=flux, ivar=ivar, mask=mask)


def _gzipped(f: Path) -> bool:
    return f.name.lower().endswith(".gz")
