"""SDSS ``spec-PLATE-MJD-FIBER.fits`` spectra (real or synthetic), one file or a folder of them.

Only the labels are read at construction: HDU2 (``SPALL``/``SPECOBJ``, read by index because its name
differs between data releases) gives ``CLASS``, ``SUBCLASS``, ``Z`` and ``ZWARNING``, and HDU1's header is
checked for the ``COADD`` columns without reading its data. ``_load(i)`` reads one file's ``flux``,
``loglam``, ``ivar`` and (when present) ``and_mask``. Every problem found at construction is a one-line
:class:`~astroreason.errors.DataError` naming the file; a bad ``loglam`` grid (too short, linear
wavelengths, nm) or a spectrum without a single valid pixel is reported so when it is loaded.

``CLASS``, ``SUBCLASS``, ``Z`` and the synthetic ground-truth window (``KEY_WMIN``/``KEY_WMAX``) are labels
or near-labels: they go into ``Sample.meta`` only, never into what a model sees.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from astroreason.data.base import Sample, SampleSource, Spectrum, check_wavelength
from astroreason.data.classes import SPECTRUM_CLASSES, SPECTRUM_SUBCLASSES, spectrum_class_names
from astroreason.errors import DataError

Task = Literal["class", "subclass"]

_NAME = re.compile(r"spec-(\d+)-(\d+)-(\d+)", re.IGNORECASE)
_SUFFIXES = (".fits", ".fit", ".fts")
_COADD_COLUMNS = ("flux", "loglam", "ivar")
LOGLAM_RANGE = (2.5, 5.0)
"""Plausible ``loglam`` values: log10 of 316 to 100000 Angstrom (linear wavelengths are far above)."""


def subclass_family(cls: str, subclass: str) -> str | None:
    """The synthetic family (one of ``SPECTRUM_SUBCLASSES``) of an SDSS CLASS/SUBCLASS, or None.

    Any STAR is ``STAR``; a GALAXY whose SUBCLASS mentions STARFORMING or STARBURST is
    ``GALAXY STARFORMING``, one that mentions AGN ``GALAXY AGN``; a QSO whose SUBCLASS mentions BROADLINE
    is ``QSO BROADLINE``. Everything else (a galaxy without emission-line subclass, a narrow-line QSO)
    has no family.
    """
    cls, words = cls.strip().upper(), subclass.strip().upper()
    if cls == "STAR":
        return "STAR"
    if cls == "GALAXY":
        if "STARFORMING" in words or "STARBURST" in words:
            return "GALAXY STARFORMING"
        if "AGN" in words:
            return "GALAXY AGN"
    if cls == "QSO" and "BROADLINE" in words:
        return "QSO BROADLINE"
    return None


def label_for(
    f: Path | str,
    cls: str,
    sub: str,
    task: str,
    class_field: str = "CLASS",
    subclass_field: str = "SUBCLASS",
) -> int:
    """The label index of a CLASS/SUBCLASS pair for ``task`` (shared by the SDSS, DESI and LAMOST readers).

    Raises:
        DataError: naming ``f`` and ``class_field``/``subclass_field``, when the pair is outside the
            task's classes.
    """
    cls = cls.strip().upper()
    if task == "class":
        if cls not in SPECTRUM_CLASSES:
            raise DataError(
                f, f"value {cls!r} is not one of {', '.join(SPECTRUM_CLASSES)}", field=class_field
            )
        return SPECTRUM_CLASSES.index(cls)
    family = subclass_family(cls, sub)
    if family is None:
        field = class_field if cls not in SPECTRUM_CLASSES else subclass_field
        raise DataError(
            f,
            f"{class_field} {cls!r} {subclass_field} {sub!r} is not one of the task='subclass' families "
            f"({', '.join(SPECTRUM_SUBCLASSES)}); use task='class' for these files",
            field=field,
        )
    return SPECTRUM_SUBCLASSES.index(family)


class SDSSSpectraSource(SampleSource):
    """SDSS spectra: one ``spec-*.fits`` file, or a folder of them (sorted by name; row id = position).

    Args:
        path: A FITS file, or a folder whose ``spec-*.fits`` (``.fit``, ``.fts``) files are read.
        task: ``"class"``: labels are the SDSS CLASS (``SPECTRUM_CLASSES``: STAR, GALAXY, QSO).
            ``"subclass"``: the four families of ``SPECTRUM_SUBCLASSES`` (see :func:`subclass_family`).

    ``Sample.spectrum`` holds ``wavelength = 10**loglam`` (float64), ``flux`` and ``ivar`` (float32) and
    ``mask = (ivar == 0) | (and_mask != 0) | ~isfinite(flux)`` (non-finite or negative ``ivar`` counts
    as 0; files without ``and_mask`` use ivar and flux alone).
    ``Sample.meta`` holds ``file_name``, ``plate``, ``mjd``, ``fiber`` (from the file name, else the
    primary header, else -1), ``z`` (HDU2 ``Z``, else the primary header's ``Z``, else NaN),
    ``zwarning``, ``class``, ``subclass`` and, where the file stores
    ``KEY_WMIN``/``KEY_WMAX`` (synthetic files), ``key_window = (wmin, wmax)``. The source keeps only
    paths and small arrays, so it pickles.

    Raises:
        ConfigError: ``task`` is not ``"class"`` or ``"subclass"``.
        DataError: The path is missing; a folder holds no ``spec-*.fits``; a file is not FITS or is
            truncated; HDU1 (COADD) is missing or lacks ``flux``/``loglam``/``ivar``; HDU2 is missing,
            empty or lacks ``CLASS`` (or ``SUBCLASS`` for ``task="subclass"``); a label is outside the
            task's classes. Loading a sample raises DataError for mismatched column lengths, a bad
            ``loglam`` (see :func:`read_spectrum`), or a spectrum with no valid pixel (all
            ``ivar == 0``).
    """

    kind = "spectrum"

    def __init__(self, path: str | os.PathLike, task: Task = "class"):
        self.class_names = spectrum_class_names(task)
        self.path = str(path)
        self.task: str = task
        self._files = list_files(Path(self.path))
        rows = [self._read_header(f) for f in self._files]
        self._labels = np.array([r.pop("label") for r in rows], dtype=np.int64)
        self._rows: list[dict[str, Any]] = rows

    # ----------------------------------------------------------------- construction
    def _read_header(self, f: Path) -> dict[str, Any]:
        with _open_fits(f) as hdul:
            try:
                n_hdu = len(hdul)  # reads every header, skipping the data
            except OSError as err:
                raise DataError(f, f"unreadable FITS file (truncated?): {err}") from None
            _check_size(f, hdul)
            if n_hdu < 2:
                raise DataError(f, "missing HDU1 with the spectrum table", field="COADD")
            coadd = hdul[1]
            if not isinstance(coadd, fits.BinTableHDU):
                raise DataError(
                    f, f"HDU1 is {type(coadd).__name__}, expected a binary table", field="COADD"
                )
            names = {n.lower() for n in coadd.columns.names}
            for col in _COADD_COLUMNS:
                if col not in names:
                    raise DataError(
                        f, f"missing column {col!r} (found: {_list(coadd.columns.names)})", "COADD"
                    )
            if n_hdu < 3:
                raise DataError(f, "missing HDU2 (the CLASS/SUBCLASS/Z table)", field="HDU2")
            info = hdul[2]
            if not isinstance(info, (fits.BinTableHDU, fits.TableHDU)):
                raise DataError(f, f"HDU2 is {type(info).__name__}, expected a table", field="HDU2")
            try:
                table = info.data
            except (OSError, ValueError, TypeError) as err:
                raise DataError(f, f"cannot read HDU2 (truncated file?): {err}", "HDU2") from None
            if table is None or len(table) == 0:
                raise DataError(f, "HDU2 table has no rows", field="HDU2")
            cols = {n.upper(): n for n in info.columns.names}
            if "CLASS" not in cols:
                raise DataError(f, f"missing column (found: {_list(info.columns.names)})", "CLASS")
            if self.task == "subclass" and "SUBCLASS" not in cols:
                raise DataError(
                    f,
                    "missing column, needed for task='subclass' (use task='class')",
                    field="SUBCLASS",
                )
            row = table[0]

            def get(name: str, default: Any) -> Any:
                return row[cols[name]] if name in cols else default

            cls = _to_str(get("CLASS", "")).strip().upper()
            sub = _to_str(get("SUBCLASS", "")).strip()
            meta: dict[str, Any] = {
                "file_name": f.name,
                **_ids(f, hdul[0].header),
                "z": _float(get("Z", hdul[0].header.get("Z", math.nan))),
                "zwarning": _int(get("ZWARNING", -1)),
                "class": cls,
                "subclass": sub,
            }
            if "KEY_WMIN" in cols and "KEY_WMAX" in cols:
                window = (_float(get("KEY_WMIN", math.nan)), _float(get("KEY_WMAX", math.nan)))
                if all(math.isfinite(v) for v in window):
                    meta["key_window"] = window
        meta["label"] = self._label(f, cls, sub)
        return meta

    def _label(self, f: Path, cls: str, sub: str) -> int:
        return label_for(f, cls, sub, self.task)

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        """Number of spectra (files)."""
        return len(self._files)

    def _load(self, i: int) -> Sample:
        f = self._files[i]
        spectrum = read_spectrum(f)
        meta = dict(self._rows[i])
        return Sample(row_id=i, label=int(self._labels[i]), spectrum=spectrum, meta=meta)

    def labels(self) -> np.ndarray:
        """Labels as int64 (indices into ``class_names``), in row order."""
        return self._labels.copy()

    def metadata(self) -> dict[str, np.ndarray]:
        """``z``, ``zwarning``, ``plate``, ``mjd``, ``fiber`` and ``file_name`` (object) columns."""
        out: dict[str, np.ndarray] = {
            "z": np.array([r["z"] for r in self._rows], dtype=np.float64),
        }
        for key in ("zwarning", "plate", "mjd", "fiber"):
            out[key] = np.array([r[key] for r in self._rows], dtype=np.int64)
        out["file_name"] = np.array([r["file_name"] for r in self._rows], dtype=object)
        return out

    @property
    def files(self) -> list[Path]:
        """The FITS files, in row order."""
        return list(self._files)


def read_spectrum(path: str | os.PathLike) -> Spectrum:
    """Read HDU1 (``COADD``) of one SDSS spectrum file.

    The mask marks pixels with ``ivar == 0``, a nonzero ``and_mask`` (any bit: the pixel was bad in
    every exposure) or a non-finite flux.

    Raises:
        DataError: Unreadable file, missing columns, columns of different lengths, bad ``loglam``
            (not finite and increasing; outside :data:`LOGLAM_RANGE`, e.g. linear wavelengths; fewer
            than :data:`~astroreason.data.base.MIN_SPECTRUM_PIXELS` pixels; see
            :func:`~astroreason.data.base.check_wavelength`), non-integer ``and_mask``, or no valid
            pixel (every pixel has ``ivar == 0`` or is masked).
    """
    f = Path(path)
    try:
        with _open_fits(f) as hdul:
            if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                raise DataError(f, "missing HDU1 binary table", field="COADD")
            _check_size(f, hdul)
            hdu = hdul[1]
            cols = {n.lower(): n for n in hdu.columns.names}
            data = hdu.data
            arrays = {}
            for col in _COADD_COLUMNS:
                if col not in cols:
                    raise DataError(f, f"missing column {col!r}", field="COADD")
                arrays[col] = np.asarray(data[cols[col]]).reshape(-1)
            if "and_mask" in cols:
                arrays["and_mask"] = np.asarray(data[cols["and_mask"]]).reshape(-1)
    except OSError as err:
        raise DataError(f, f"cannot read the spectrum (truncated file?): {err}", "COADD") from None
    n = arrays["loglam"].size
    for col in ("flux", "ivar", "and_mask"):
        if col in arrays and arrays[col].size != n:
            raise DataError(
                f, f"{arrays[col].size} values but loglam has {n}", field=f"COADD.{col}"
            )
    if n == 0:
        raise DataError(f, "no pixels", field="COADD")
    loglam = arrays["loglam"].astype(np.float64)
    if not np.all(np.isfinite(loglam)) or (n > 1 and np.any(np.diff(loglam) <= 0)):
        raise DataError(f, "not finite and strictly increasing", field="COADD.loglam")
    lo, hi = float(loglam[0]), float(loglam[-1])
    if not LOGLAM_RANGE[0] <= lo <= hi <= LOGLAM_RANGE[1]:
        guess = "loglam holds linear wavelengths? " if hi > LOGLAM_RANGE[1] else ""
        raise DataError(
            f,
            f"values {lo:.6g}..{hi:.6g}: {guess}expected log10(Angstrom) within "
            f"{LOGLAM_RANGE[0]}..{LOGLAM_RANGE[1]} (SDSS: about 3.55..4.02)",
            field="COADD.loglam",
        )
    wavelength = check_wavelength(f, 10.0**loglam, "COADD.loglam")
    flux = arrays["flux"].astype(np.float32)
    ivar = arrays["ivar"].astype(np.float32)
    ivar = np.where(np.isfinite(ivar) & (ivar > 0), ivar, np.float32(0)).astype(np.float32)
    mask = (ivar == 0) | ~np.isfinite(flux)
    if mask.all():
        raise DataError(f, f"no valid pixels (all {n} have ivar == 0)", field="COADD.ivar")
    if "and_mask" in arrays:
        and_mask = arrays["and_mask"]
        if and_mask.dtype.kind not in "iub":
            raise DataError(
                f, f"expected integer mask bits, got {and_mask.dtype}", "COADD.and_mask"
            )
        mask |= and_mask != 0
        if mask.all():
            raise DataError(
                f,
                f"no valid pixels (all {n} are masked by ivar == 0 or and_mask)",
                "COADD.and_mask",
            )
    return Spectrum(wavelength=wavelength, flux=flux, ivar=ivar, mask=mask)


# --------------------------------------------------------------------------------------- helpers


def list_files(p: Path, is_name=None, pattern: str = "spec-*.fits") -> list[Path]:
    """``p`` itself, or the files in folder ``p`` whose name ``is_name`` accepts (sorted).

    Shared by the SDSS, DESI and LAMOST readers; ``pattern`` names the expected files in the error.
    """
    if is_name is None:

        def is_name(name: str) -> bool:
            return name.lower().startswith("spec-") and Path(name).suffix.lower() in _SUFFIXES

    if not p.exists():
        raise DataError(p, "no such file or folder")
    if p.is_file():
        return [p]
    files = sorted(c for c in p.iterdir() if c.is_file() and is_name(c.name))
    if not files:
        seen = sorted(c.name for c in p.iterdir())[:5]
        raise DataError(
            p, f"folder holds no {pattern} files (found: {', '.join(seen) or 'nothing'})"
        )
    return files


class _open_fits:
    """``fits.open`` as a context manager whose failures are DataErrors naming the file."""

    def __init__(self, f: Path):
        self.f = f
        self.hdul: fits.HDUList | None = None
        # astropy only warns about truncation and odd headers; the checks here report them as errors
        self._quiet = warnings.catch_warnings()

    def __enter__(self) -> fits.HDUList:
        if not self.f.is_file():
            raise DataError(self.f, "no such file")
        self._quiet.__enter__()
        warnings.simplefilter("ignore", AstropyUserWarning)
        try:
            self.hdul = fits.open(self.f, memmap=False, lazy_load_hdus=True)
        except (OSError, ValueError, TypeError) as err:
            self._quiet.__exit__(None, None, None)
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise DataError(self.f, f"not a readable FITS file (truncated?): {reason}") from None
        return self.hdul

    def __exit__(self, *exc: object) -> None:
        try:
            if self.hdul is not None:
                self.hdul.close()
        finally:
            self._quiet.__exit__(None, None, None)


def _check_size(f: Path, hdul: fits.HDUList) -> None:
    """A file shorter than its last HDU's data is truncated (astropy would only warn)."""
    last = hdul[-1]
    info = last.fileinfo()
    size = getattr(last, "size", None)  # unpadded: files without the final padding still pass
    if info is None or not isinstance(size, (int, np.integer)):
        return
    end = int(info["datLoc"]) + int(size)
    if f.stat().st_size < end:
        raise DataError(f, f"file is truncated ({f.stat().st_size} bytes, headers say {end})")


def _ids(f: Path, header: fits.Header) -> dict[str, int]:
    m = _NAME.search(f.name)
    if m:
        return {"plate": int(m.group(1)), "mjd": int(m.group(2)), "fiber": int(m.group(3))}
    return {
        "plate": _int(header.get("PLATEID", -1)),
        "mjd": _int(header.get("MJD", -1)),
        "fiber": _int(header.get("FIBERID", -1)),
    }


def _to_str(v: object) -> str:
    if isinstance(v, bytes):
        return v.decode("ascii", "replace")
    return str(v)


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return -1


def _list(names: Any) -> str:
    return ", ".join(names) or "none"
