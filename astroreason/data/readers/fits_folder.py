"""A folder of FITS galaxy cutouts: ``root/class_name/*.fits`` (also ``.fit``, ``.fts``, gzipped).

Laid out like :class:`~astroreason.data.readers.folder.ImageFolderSource`: class names are the sorted
subfolder names or the lines of ``root/classes.txt``, hidden entries are ignored, files are sorted
within each class (so **row order is sorted by class**; splits shuffle, row ids never reach a model).

Each file holds g, r, z either as one (3, H, W) image cube (planes ordered by ``BAND0``..``BAND2`` or
a ``BANDS`` string such as ``grz`` when present, as Legacy Survey cutouts carry, else as stored), or as
three 2-D image HDUs (ordered by their ``BAND`` / ``FILTER`` / ``EXTNAME`` keyword when every one names
a band, else in HDU order). With band keywords, extra bands are dropped and g, r, z picked.

Pixels are in flux units: each band gets its robust sky median and noise
(:func:`~astroreason.data.stretch.sky_stats`), is put in noise sigmas, NaN pixels become 0, and the
bands go through :func:`~astroreason.data.stretch.asinh_rgb`, the stretch the synthetic galaxies get.
Files are opened one sample at a time (memory-mapped where astropy can).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from astroreason.data.base import Sample, SampleSource, check_image_size
from astroreason.data.readers.folder import list_class_files
from astroreason.data.readers.spectra_formats import FITS_SUFFIXES, is_fits_name
from astroreason.data.stretch import (
    STRETCH_MAX,
    STRETCH_SOFTENING,
    asinh_rgb,
    sky_stats,
    to_noise_units,
)
from astroreason.errors import DataError

BANDS = ("g", "r", "z")
BAND_KEYS = ("BAND", "FILTER", "EXTNAME")
WAVELENGTH_ORDER = ("u", "g", "r", "i", "z", "y")
HEADER_COLUMNS = ("RA", "DEC", "OBJECT", "OBJID", "REDSHIFT", "Z", "PIXSCALE")
"""Primary-header keywords copied into metadata (lower case) for the leakage audit, never prompts."""


class FitsFolderSource(SampleSource):
    """FITS g/r/z cutouts sorted into one subfolder per class (see the module docstring).

    Args:
        path: The root folder.
        softening: Asinh softening in sky sigmas (default: the synthetic data's).
        maximum: Sky sigmas mapped to 255 (default: the synthetic data's).

    :meth:`metadata` has ``file_name`` (the stem, never the class folder) and the
    :data:`HEADER_COLUMNS` found in the primary headers (read once, on first call). ``Sample.meta``
    also holds ``path`` (relative to the root), ``layout`` (``cube`` or ``hdus``) and, per band, the
    sky level and sigma used.

    Raises:
        DataError: The folder is missing or empty, has no class subfolders, a class folder has no FITS
            files, ``classes.txt`` disagrees with the subfolders; at read time, a file that is
            unreadable, has no suitable image HDU, the wrong shape, a side over
            :data:`~astroreason.data.base.MAX_IMAGE_SIDE` (checked before the pixels are read), or a
            band with no finite or no varying pixels (naming the file).
    """

    kind = "image"
    bands = BANDS

    def __init__(
        self,
        path: str | os.PathLike,
        softening: float = STRETCH_SOFTENING,
        maximum: float = STRETCH_MAX,
    ):
        root = Path(path)
        self.path = str(root)
        self.softening = float(softening)
        self.maximum = float(maximum)
        self.class_names, self._files, self._labels = list_class_files(
            root, is_fits_name, "FITS files (" + ", ".join(FITS_SUFFIXES) + ")"
        )
        self._root = root
        self._header_meta: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        """Number of FITS files."""
        return len(self._files)

    def _load(self, i: int) -> Sample:
        f = self._files[i]
        cut = read_grz(f)
        meta: dict[str, Any] = {"file_name": fits_stem(f), "path": str(f.relative_to(self._root))}
        units = []
        for name, band in zip(cut.band_names, cut.bands, strict=True):
            median, sigma = sky_stats(band)
            if not math.isfinite(median):
                raise DataError(f, f"band {name}: no finite pixels (NaN only)")
            if not sigma > 0:
                sigma = float(np.nanstd(band))
                if not sigma > 0:
                    raise DataError(f, f"band {name}: constant ({median:g}), no sky noise to scale")
            units.append(to_noise_units(band, median, sigma))
            meta[f"sky_{name}"], meta[f"sigma_{name}"] = median, sigma
        image = asinh_rgb(np.stack(units), self.softening, self.maximum)
        meta["layout"], meta["bands"] = cut.layout, ",".join(cut.band_names)
        meta.update(cut.header)
        return Sample(row_id=i, label=int(self._labels[i]), image=image, meta=meta)

    def labels(self) -> np.ndarray:
        """Labels from the class folders, in row order."""
        return self._labels.copy()

    def metadata(self) -> dict[str, np.ndarray]:
        """``file_name`` and the primary-header columns (ra, dec, ...) found in any file."""
        if self._header_meta is None:
            self._header_meta = _read_header_columns(self._files)
        out = {"file_name": np.array([fits_stem(f) for f in self._files], dtype=object)}
        out.update({k: v.copy() for k, v in self._header_meta.items()})
        return out


def fits_stem(f: Path) -> str:
    """The file name without its FITS suffix (``a.fits.gz`` -> ``a``)."""
    low = f.name.lower()
    for suffix in sorted(FITS_SUFFIXES, key=len, reverse=True):
        if low.endswith(suffix):
            return f.name[: -len(suffix)]
    return f.stem


@dataclass(frozen=True)
class Cutout:
    """The bands of one cutout file, in its own flux units."""

    bands: np.ndarray
    """(3, H, W) float64, bluest band first (g, r, z)."""
    band_names: tuple[str, str, str]
    """The bands' names from the headers, or ``("g", "r", "z")`` when the headers do not say."""
    layout: str
    """``cube`` (one (3, H, W) HDU) or ``hdus`` (one 2-D HDU per band)."""
    header: dict[str, Any]
    """The :data:`HEADER_COLUMNS` found in the primary header, lower-case keys."""


def read_grz(path: str | os.PathLike) -> Cutout:
    """Read the g, r, z bands of one cutout file (see the module docstring for the layouts).

    Raises:
        DataError: Unreadable file, no image HDU, wrong shape or bands that cannot be told apart.
    """
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    f = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyUserWarning)
            with fits.open(f, memmap=True, lazy_load_hdus=True) as hdul:
                images = [
                    h
                    for h in hdul
                    if isinstance(h, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))
                    and int(h.header.get("NAXIS", 0)) >= 2
                ]
                header = hdul[0].header
                if not images:
                    raise DataError(
                        f, "no image HDU: expected a (3, H, W) g/r/z cube or three 2-D band HDUs"
                    )
                cubes = [h for h in images if int(h.header.get("NAXIS", 0)) == 3]
                if cubes:
                    if len(images) > 1:
                        raise DataError(
                            f,
                            f"{len(images)} image HDUs including a cube: expected one "
                            "(3, H, W) cube or three 2-D band HDUs",
                        )
                    return Cutout(*_cube_bands(f, cubes[0]), "cube", _header_values(header))
                planes = [h for h in images if int(h.header.get("NAXIS", 0)) == 2]
                if len(planes) != len(images):
                    shape = next(h.shape for h in images if int(h.header["NAXIS"]) > 3)
                    raise DataError(f, f"image of shape {shape}: expected (3, H, W) or 2-D bands")
                return Cutout(*_hdu_bands(f, planes), "hdus", _header_values(header))
    except DataError:
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f, f"cannot read FITS file: {msg}") from None


def _band_of(value: Any) -> str | None:
    """A band letter from a header value like ``g``, ``DECam r`` or ``z DECam SDSS c0004``."""
    for token in re.split(r"[^a-z0-9]+", str(value).strip().lower()):
        if token in WAVELENGTH_ORDER:
            return token
    return None


def _order(f: Path, names: list[str | None], what: str) -> list[int] | None:
    """Indices of g, r, z (or of three other bands, bluest first) among named bands.

    None when the names do not tell (one missing or repeated): then the stored order is used.
    """
    if any(n is None for n in names) or len(set(names)) != len(names):
        return None
    if all(b in names for b in BANDS):
        return [names.index(b) for b in BANDS]
    if len(names) == 3:  # e.g. g, r, i: mapped as the synthetic data's g, r, z
        return sorted(range(3), key=lambda k: WAVELENGTH_ORDER.index(str(names[k])))
    missing = next(b for b in BANDS if b not in names)
    raise DataError(f, f"{what} name bands {', '.join(map(str, names))}: no {missing} band")


def _cube_bands(f: Path, hdu) -> tuple[np.ndarray, tuple[str, str, str]]:
    shape = tuple(int(s) for s in hdu.shape)
    h = hdu.header
    names: list[str | None] = [
        _band_of(h[f"BAND{k}"]) if f"BAND{k}" in h else None for k in range(shape[0])
    ]
    if any(n is None for n in names) and isinstance(h.get("BANDS"), str):
        letters = [c.lower() for c in h["BANDS"].strip() if c.isalpha()]
        if len(letters) == shape[0]:
            names = list(letters)
    order = _order(f, names, "cube keywords BAND0..")
    if order is None and shape[0] != 3:
        raise DataError(f, f"image cube of shape {shape}: expected (3, H, W) g, r, z planes")
    if min(shape[1:]) < 2:
        raise DataError(f, f"image cube of shape {shape}: expected (3, H, W) with H, W >= 2")
    check_image_size(f, shape[1], shape[2])
    data = np.array(hdu.data, dtype=np.float64)  # a copy: the file closes after this
    if order is None:
        return data, BANDS
    return np.ascontiguousarray(data[order]), tuple(str(names[k]) for k in order)


def _hdu_bands(f: Path, planes: list) -> tuple[np.ndarray, tuple[str, str, str]]:
    names = [
        next((b for k in BAND_KEYS if k in p.header and (b := _band_of(p.header[k]))), None)
        for p in planes
    ]
    order = _order(f, names, "HDU keywords BAND/FILTER")
    found = order is not None
    if order is None:
        if len(planes) != 3:
            raise DataError(
                f,
                f"{len(planes)} 2-D image HDU(s): expected a (3, H, W) g/r/z cube "
                "or three 2-D band HDUs",
            )
        order = [0, 1, 2]
    chosen = [planes[k] for k in order]
    shapes = {tuple(int(s) for s in p.shape) for p in chosen}
    if len(shapes) != 1:
        raise DataError(f, f"band HDUs differ in shape ({', '.join(map(str, sorted(shapes)))})")
    (shape,) = shapes
    if min(shape) < 2:
        raise DataError(f, f"band images of shape {shape}: expected H, W >= 2")
    check_image_size(f, shape[0], shape[1])
    data = np.stack([np.asarray(p.data, dtype=np.float64) for p in chosen])
    return data, tuple(str(names[k]) for k in order) if found else BANDS


def _header_values(header) -> dict[str, Any]:
    out = {}
    for key in HEADER_COLUMNS:
        v = header.get(key)
        if isinstance(v, (bool, np.bool_)):
            v = int(v)
        if isinstance(v, (int, float, str, np.integer, np.floating)):
            out[key.lower()] = v.item() if isinstance(v, np.generic) else v
    return out


def _read_header_columns(files: list[Path]) -> dict[str, np.ndarray]:
    """The :data:`HEADER_COLUMNS` of every file's primary header (unreadable files: missing)."""
    from astropy.io import fits

    rows = []
    for f in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rows.append(_header_values(fits.getheader(f, 0)))
        except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError):
            rows.append({})
    out: dict[str, np.ndarray] = {}
    for key in (k.lower() for k in HEADER_COLUMNS):
        values = [r.get(key) for r in rows]
        present = [v for v in values if v is not None]
        if not present:
            continue
        if all(isinstance(v, (int, float)) for v in present):
            out[key] = np.array([np.nan if v is None else float(v) for v in values])
            if all(isinstance(v, int) for v in present) and len(present) == len(values):
                out[key] = out[key].astype(np.int64)
        else:
            out[key] = np.array([None if v is None else str(v) for v in values], dtype=object)
    return out
