"""DESI coadded spectra (``coadd-*.fits``) with their Redrock redshifts, one file or a folder.

A coadd file (DESI data model, ``coadd-SURVEY-PROGRAM-PIXNUM.fits`` and the tile-based
``coadd-SPECTROGRAPH-TILEID-...``) holds many targets: HDU ``FIBERMAP`` (one row per target,
``TARGETID``, ``OBJTYPE``, ``TARGET_RA``/``TARGET_DEC``, ...) and, per camera ``B``, ``R``, ``Z``, the HDUs
``{C}_WAVELENGTH`` (1-D, Angstrom, vacuum, the fixed 0.8 A grid), ``{C}_FLUX`` and ``{C}_IVAR``
(nspec x nwave), ``{C}_MASK`` (nspec x nwave integer bits, often tile-compressed) and
``{C}_RESOLUTION`` (not read). HDUs are found by ``EXTNAME``.

Labels (``SPECTYPE``: GALAXY, QSO, STAR; ``SUBTYPE``; ``Z``; ``ZWARN``) come from the first of:

1. a ``REDSHIFTS`` (or ``ZBEST``) table inside the coadd file;
2. ``SPECTYPE`` and ``Z`` columns of its ``FIBERMAP``;
3. the Redrock file beside it: ``redrock-<rest>.fits`` (or the older ``zbest-<rest>.fits``) for
   ``coadd-<rest>.fits``, HDU ``REDSHIFTS`` (``ZBEST``), matched to the fibermap by ``TARGETID``.

Each target whose ``OBJTYPE`` is ``TGT`` (all rows when there is no ``OBJTYPE``: sky fibres are not
objects) is one sample, in file order, files sorted by name. ``Sample.spectrum`` merges the cameras
onto one grid: where cameras overlap, the inverse-variance weighted mean of the unmasked pixels; a
camera's pixel with a nonzero mask bit or ``ivar == 0`` weighs nothing, and ``mask`` marks pixels no
camera measured. ``Sample.meta`` holds ``file_name``, ``targetid``, ``fibermap_row``, ``ra``, ``dec``,
``z``, ``zwarning``, ``class``, ``subclass``: ids, coordinates and labels, never shown to a model.

Every problem is a one-line :class:`~astroreason.errors.DataError` naming the file and the field.
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

CAMERAS = ("B", "R", "Z")
SUFFIXES = (".fits", ".fit", ".fts")
REDSHIFT_HDUS = ("REDSHIFTS", "ZBEST")
REDSHIFT_PREFIXES = ("redrock-", "zbest-")


def is_coadd_name(name: str) -> bool:
    """``coadd-*.fits`` (``.fit``, ``.fts``)."""
    low = name.lower()
    return low.startswith("coadd-") and low.endswith(SUFFIXES)


def redshift_file_for(coadd: Path) -> Path | None:
    """The Redrock file beside a coadd file (``redrock-<rest>`` then ``zbest-<rest>``), if it exists."""
    rest = coadd.name[len("coadd-") :] if coadd.name.lower().startswith("coadd-") else None
    if rest is None:
        return None
    for prefix in REDSHIFT_PREFIXES:
        cand = coadd.with_name(prefix + rest)
        if cand.is_file():
            return cand
    return None


class DESISpectraSource(SampleSource):
    """DESI coadd spectra: one ``coadd-*.fits`` file or a folder of them; one sample per target.

    Args:
        path: A coadd file, or a folder whose ``coadd-*.fits`` files are read (their Redrock files
            beside them).
        task: ``"class"`` (SPECTYPE: STAR, GALAXY, QSO) or ``"subclass"`` (the families of
            :func:`~astroreason.data.readers.sdss.subclass_family` from SPECTYPE/SUBTYPE; Redrock leaves
            SUBTYPE blank for galaxies, so most galaxies have no family).

    Raises:
        ConfigError: ``task`` is not ``"class"`` or ``"subclass"``.
        DataError: The path is missing; a folder holds no ``coadd-*.fits``; a file is not FITS or is
            truncated; ``FIBERMAP`` or ``TARGETID`` is missing; no camera has ``{C}_WAVELENGTH``,
            ``{C}_FLUX`` and ``{C}_IVAR``, or their shapes disagree with the fibermap; no redshifts
            are found, a target has no redshift row, or ``SPECTYPE`` is outside the task's classes.
            Loading a sample raises DataError for a bad wavelength array (see
            :func:`read_desi_spectrum`) or a spectrum with no valid pixel.
    """

    kind = "spectrum"

    def __init__(self, path: str | os.PathLike, task: str = "class"):
        self.class_names = spectrum_class_names(task)
        self.path = str(path)
        self.task = task
        self._files = list_files(Path(self.path), is_coadd_name, "coadd-*.fits")
        self._rows: list[dict[str, Any]] = []
        self._where: list[tuple[int, int]] = []  # (file index, fibermap row)
        self._cameras: list[tuple[str, ...]] = []
        labels = []
        for k, f in enumerate(self._files):
            cams, rows = self._read_file(f)
            self._cameras.append(cams)
            for r in rows:
                labels.append(r.pop("label"))
                self._where.append((k, r["fibermap_row"]))
                self._rows.append(r)
        self._labels = np.array(labels, dtype=np.int64)

    # ----------------------------------------------------------------- construction
    def _read_file(self, f: Path) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
        with _open_fits(f) as hdul:
            try:
                len(hdul)
            except OSError as err:
                raise DataError(f, f"unreadable FITS file (truncated?): {err}") from None
            _check_size(f, hdul)
            names = _extnames(hdul)
            if "FIBERMAP" not in names:
                raise DataError(f, f"missing HDU (found: {', '.join(names) or 'none'})", "FIBERMAP")
            fm = _table(f, hdul[names["FIBERMAP"]], "FIBERMAP")
            fcols = {n.upper(): n for n in fm.columns.names}
            if "TARGETID" not in fcols:
                raise DataError(f, "missing column", field="FIBERMAP.TARGETID")
            nspec = len(fm)
            cams = _cameras(f, hdul, names, nspec)
            tid = np.asarray(fm[fcols["TARGETID"]]).astype(np.int64)
            objtype = (
                np.array([_to_str(v).strip().upper() for v in fm[fcols["OBJTYPE"]]])
                if "OBJTYPE" in fcols
                else np.full(nspec, "TGT")
            )
            ra = _column(fm, fcols, "TARGET_RA", nspec)
            dec = _column(fm, fcols, "TARGET_DEC", nspec)
            z_by_tid, zsource = self._redshifts(f, hdul, names, fm, fcols)
        rows = []
        for i in range(nspec):
            if objtype[i] != "TGT":
                continue
            t = int(tid[i])
            if t not in z_by_tid:
                raise DataError(
                    zsource, f"no redshift row for TARGETID {t} of {f.name}", field="TARGETID"
                )
            zr = z_by_tid[t]
            label = label_for(
                zsource, zr["class"], zr["subclass"], self.task, "SPECTYPE", "SUBTYPE"
            )
            rows.append(
                {
                    "file_name": f.name,
                    "targetid": t,
                    "fibermap_row": i,
                    "ra": float(ra[i]),
                    "dec": float(dec[i]),
                    **zr,
                    "label": label,
                }
            )
        return cams, rows

    def _redshifts(self, f: Path, hdul, names, fm, fcols) -> tuple[dict[int, dict[str, Any]], Path]:
        for hdu_name in REDSHIFT_HDUS:
            if hdu_name in names:
                return _redshift_table(f, _table(f, hdul[names[hdu_name]], hdu_name), hdu_name), f
        if "SPECTYPE" in fcols and "Z" in fcols:
            return _redshift_table(f, fm, "FIBERMAP"), f
        other = redshift_file_for(f)
        if other is None:
            rest = f.name[len("coadd-") :] if f.name.lower().startswith("coadd-") else f.name
            raise DataError(
                f,
                f"no REDSHIFTS table, no SPECTYPE/Z columns in FIBERMAP, and no redrock-{rest} or "
                f"zbest-{rest} beside it",
                field="SPECTYPE",
            )
        with _open_fits(other) as zl:
            try:
                znames = _extnames(zl)
            except OSError as err:
                raise DataError(other, f"unreadable FITS file (truncated?): {err}") from None
            _check_size(other, zl)
            for hdu_name in REDSHIFT_HDUS:
                if hdu_name in znames:
                    return (
                        _redshift_table(
                            other, _table(other, zl[znames[hdu_name]], hdu_name), hdu_name
                        ),
                        other,
                    )
        raise DataError(
            other, f"missing HDU (found: {', '.join(znames) or 'none'})", field="REDSHIFTS"
        )

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        """Number of targets."""
        return len(self._rows)

    def _load(self, i: int) -> Sample:
        k, row = self._where[i]
        spectrum = read_desi_spectrum(self._files[k], row, self._cameras[k])
        return Sample(
            row_id=i, label=int(self._labels[i]), spectrum=spectrum, meta=dict(self._rows[i])
        )

    def labels(self) -> np.ndarray:
        """Labels as int64 (indices into ``class_names``), in row order."""
        return self._labels.copy()

    def metadata(self) -> dict[str, np.ndarray]:
        """``z``, ``zwarning``, ``targetid``, ``ra``, ``dec`` and ``file_name`` columns."""
        return {
            "z": np.array([r["z"] for r in self._rows], dtype=np.float64),
            "zwarning": np.array([r["zwarning"] for r in self._rows], dtype=np.int64),
            "targetid": np.array([r["targetid"] for r in self._rows], dtype=np.int64),
            "ra": np.array([r["ra"] for r in self._rows], dtype=np.float64),
            "dec": np.array([r["dec"] for r in self._rows], dtype=np.float64),
            "file_name": np.array([r["file_name"] for r in self._rows], dtype=object),
        }

    @property
    def files(self) -> list[Path]:
        """The coadd files, in order."""
        return list(self._files)


def read_desi_spectrum(
    path: str | os.PathLike, row: int, cameras: tuple[str, ...] = CAMERAS
) -> Spectrum:
    """Read target ``row`` of a coadd file, cameras merged onto one wavelength grid.

    Only that row of each image is read (``section``), so a large file is not read whole.

    Raises:
        DataError: Unreadable file, a missing camera HDU, a bad wavelength array (not finite and
            increasing; merged, see :func:`~astroreason.data.base.check_wavelength`: too short or
            not in Angstrom, e.g. nm), or no valid pixel in any camera.
    """
    f = Path(path)
    waves, fluxes, ivars = [], [], []
    try:
        with _open_fits(f) as hdul:
            names = _extnames(hdul)
            for c in cameras:
                for part in ("WAVELENGTH", "FLUX", "IVAR"):
                    if f"{c}_{part}" not in names:
                        raise DataError(f, "missing HDU", field=f"{c}_{part}")
                wl = np.asarray(hdul[names[f"{c}_WAVELENGTH"]].data, dtype=np.float64).reshape(-1)
                if not np.all(np.isfinite(wl)) or np.any(np.diff(wl) <= 0):
                    raise DataError(f, "not finite and strictly increasing", f"{c}_WAVELENGTH")
                fl = np.asarray(hdul[names[f"{c}_FLUX"]].section[row], dtype=np.float64)
                iv = np.asarray(hdul[names[f"{c}_IVAR"]].section[row], dtype=np.float64)
                iv = np.where(np.isfinite(iv) & (iv > 0) & np.isfinite(fl), iv, 0.0)
                if f"{c}_MASK" in names:
                    m = np.asarray(hdul[names[f"{c}_MASK"]].section[row])
                    iv = np.where(m != 0, 0.0, iv)
                waves.append(wl)
                fluxes.append(fl)
                ivars.append(iv)
    except OSError as err:
        raise DataError(f, f"cannot read the spectrum (truncated file?): {err}") from None
    wl, flux, ivar = merge_cameras(waves, fluxes, ivars)
    check_wavelength(f, wl, "/".join(f"{c}_WAVELENGTH" for c in cameras))
    mask = ivar == 0
    if mask.all():
        raise DataError(
            f, f"no valid pixels for row {row} (ivar == 0 or a mask bit everywhere)", "FLUX"
        )
    return Spectrum(
        wavelength=wl, flux=flux.astype(np.float32), ivar=ivar.astype(np.float32), mask=mask
    )


def merge_cameras(
    waves: list[np.ndarray], fluxes: list[np.ndarray], ivars: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One increasing grid from per-camera spectra (wavelengths equal to 1 mA are one pixel).

    A merged pixel's flux is the ivar-weighted mean of the cameras' flux there and its ivar the sum;
    where no camera has ``ivar > 0`` the flux is the plain mean (finite values) and ivar is 0.
    """
    wl = np.concatenate(waves)
    fl = np.concatenate(fluxes)
    iv = np.concatenate(ivars)
    keys, inverse = np.unique(np.round(wl * 1000).astype(np.int64), return_inverse=True)
    n = keys.size
    wsum = np.bincount(inverse, weights=iv, minlength=n)
    fsum = np.bincount(inverse, weights=np.where(iv > 0, fl * iv, 0.0), minlength=n)
    finite = np.isfinite(fl)
    plain = np.bincount(inverse, weights=np.where(finite, fl, 0.0), minlength=n)
    count = np.bincount(inverse, weights=finite.astype(float), minlength=n)
    flux = np.where(wsum > 0, fsum / np.where(wsum > 0, wsum, 1.0), plain / np.maximum(count, 1.0))
    return keys / 1000.0, flux, wsum


# --------------------------------------------------------------------------------------- helpers


def _extnames(hdul: fits.HDUList) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, hdu in enumerate(hdul):
        name = str(hdu.header.get("EXTNAME", hdu.name or "")).strip().upper()
        if name and name not in out:
            out[name] = k
    return out


def _table(f: Path, hdu, name: str):
    if not isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
        raise DataError(f, f"is {type(hdu).__name__}, expected a table", field=name)
    try:
        data = hdu.data
    except (OSError, ValueError, TypeError) as err:
        raise DataError(f, f"cannot read (truncated file?): {err}", field=name) from None
    if data is None:
        raise DataError(f, "table has no rows", field=name)
    return data


def _cameras(f: Path, hdul, names: dict[str, int], nspec: int) -> tuple[str, ...]:
    cams = []
    for c in CAMERAS:
        if f"{c}_FLUX" not in names:
            continue
        for part in ("WAVELENGTH", "IVAR"):
            if f"{c}_{part}" not in names:
                raise DataError(f, f"missing HDU beside {c}_FLUX", field=f"{c}_{part}")
        nwave = int(hdul[names[f"{c}_WAVELENGTH"]].header.get("NAXIS1", 0))
        for part in ("FLUX", "IVAR", "MASK"):
            if f"{c}_{part}" not in names:
                continue
            hdr = hdul[names[f"{c}_{part}"]].header
            shape = (
                int(hdr.get("ZNAXIS2", hdr.get("NAXIS2", 0))),
                int(hdr.get("ZNAXIS1", hdr.get("NAXIS1", 0))),
            )
            if shape != (nspec, nwave):
                raise DataError(
                    f,
                    f"shape {shape[0]} x {shape[1]} but FIBERMAP has {nspec} rows and "
                    f"{c}_WAVELENGTH {nwave} values",
                    field=f"{c}_{part}",
                )
        cams.append(c)
    if not cams:
        raise DataError(
            f,
            f"no camera HDUs (expected B_FLUX, R_FLUX or Z_FLUX; found: {', '.join(names) or 'none'})",
            field="FLUX",
        )
    return tuple(cams)


def _column(table, cols: dict[str, str], name: str, n: int) -> np.ndarray:
    if name not in cols:
        return np.full(n, math.nan)
    try:
        return np.asarray(table[cols[name]], dtype=np.float64)
    except (TypeError, ValueError):
        return np.full(n, math.nan)


def _redshift_table(f: Path, table, where: str) -> dict[int, dict[str, Any]]:
    cols = {n.upper(): n for n in table.columns.names}
    for need in ("TARGETID", "SPECTYPE", "Z"):
        if need not in cols:
            raise DataError(f, "missing column", field=f"{where}.{need}")
    out: dict[int, dict[str, Any]] = {}
    n = len(table)
    tid = np.asarray(table[cols["TARGETID"]]).astype(np.int64)
    spectype = table[cols["SPECTYPE"]]
    subtype = table[cols["SUBTYPE"]] if "SUBTYPE" in cols else [""] * n
    z = table[cols["Z"]]
    zwarn = table[cols["ZWARN"]] if "ZWARN" in cols else [-1] * n
    for i in range(n):
        out.setdefault(
            int(tid[i]),
            {
                "z": _float(z[i]),
                "zwarning": _int(zwarn[i]),
                "class": _to_str(spectype[i]).strip().upper(),
                "subclass": _to_str(subtype[i]).strip(),
            },
        )
    return out
