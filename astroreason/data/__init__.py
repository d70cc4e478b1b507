"""Labelled data: Galaxy10 HDF5/parquet, SDSS/DESI/LAMOST spectra, image folders, synthetic sets.

``open_source(path)`` picks the reader from what the path is; every reader implements
:class:`~astroreason.data.base.SampleSource`.
"""

from __future__ import annotations

import os
from pathlib import Path

from astroreason.data.base import Sample, SampleSource, Spectrum
from astroreason.errors import DataError

__all__ = ["Sample", "SampleSource", "Spectrum", "open_source"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def open_source(path: str | os.PathLike | SampleSource, **kwargs) -> SampleSource:
    """Open a data source by looking at the path.

    Args:
        path: An HDF5 file (Galaxy10 DECaLS or SDSS format), a parquet file or folder of parquet files
            (Hugging Face Galaxy10 exports), a spectrum FITS file or a folder of them (SDSS
            ``spec-*.fits``, DESI ``coadd-*.fits`` with their Redrock files, LAMOST ``spec-*.fits`` /
            ``.fits.gz``; told apart by their headers, see
            :mod:`~astroreason.data.spectra_formats`), or a folder of ``class_name/*.png`` images. A
            source object is returned as is.
        **kwargs: Passed to the reader.

    Raises:
        DataError: The path does not exist or is not a recognised format.
    """
    if isinstance(path, SampleSource):
        return path
    p = Path(path)
    if not p.exists():
        raise DataError(p, "no such file or folder")
    suffix = p.suffix.lower()
    if p.is_file() and p.name.lower().endswith((".fits.gz", ".fit.gz", ".fts.gz")):
        suffix = ".fits"
    if p.is_file():
        if suffix in {".h5", ".hdf5"}:
            from astroreason.data.galaxy10 import Galaxy10Source

            return Galaxy10Source(p, **kwargs)
        if suffix == ".parquet":
            from astroreason.data.parquet import ParquetGalaxySource

            return ParquetGalaxySource(p, **kwargs)
        if suffix in {".fits", ".fit", ".fts"}:
            from astroreason.data.spectra_formats import detect_file

            return _spectra_source(detect_file(p), p, **kwargs)
        raise DataError(
            p, f"unrecognised file type {suffix or '(none)'!r}: expected .h5, .parquet or .fits"
        )
    names = [c.name for c in p.iterdir()]
    from astroreason.data.spectra_formats import detect_folder, is_fits_name

    if any(is_fits_name(n) for n in names):
        return _spectra_source(detect_folder(p), p, **kwargs)
    if any(n.lower().endswith(".parquet") for n in names) or (p / "data").is_dir():
        from astroreason.data.parquet import ParquetGalaxySource

        return ParquetGalaxySource(p, **kwargs)
    from astroreason.data.folder import ImageFolderSource

    return ImageFolderSource(p, **kwargs)


def _spectra_source(fmt: str, p: Path, **kwargs) -> SampleSource:
    if fmt == "desi":
        from astroreason.data.desi import DESISpectraSource

        return DESISpectraSource(p, **kwargs)
    if fmt == "lamost":
        from astroreason.data.lamost import LAMOSTSpectraSource

        return LAMOSTSpectraSource(p, **kwargs)
    from astroreason.data.sdss import SDSSSpectraSource

    return SDSSSpectraSource(p, **kwargs)
