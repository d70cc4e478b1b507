"""Labelled data: Galaxy10 HDF5, Hugging Face datasets, spectra, image and FITS folders, synthetic sets.

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
        path: One of (checked in this order for a folder):

            - an HDF5 file (Galaxy10 DECaLS or SDSS format);
            - a spectrum FITS file, or a folder holding them directly (SDSS ``spec-*.fits``, DESI
              ``coadd-*.fits`` with their Redrock files, LAMOST ``spec-*.fits`` / ``.fits.gz``; told
              apart by their headers, see :mod:`~astroreason.data.spectra_formats`);
            - a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``
              (:class:`~astroreason.data.hf_dataset.HFDatasetSource`);
            - a folder of ``class_name/*.fits`` g/r/z cutouts
              (:class:`~astroreason.data.fits_folder.FitsFolderSource`);
            - a parquet file or a folder of them (or with a ``data/`` folder): a Galaxy10 export
              (:class:`~astroreason.data.parquet.ParquetGalaxySource`) when its schema is one and no
              Hugging Face option (``hf_split``, ``image_column``, ``label_column``) is given, else
              :class:`~astroreason.data.hf_dataset.HFDatasetSource`;
            - a dataset repository folder (a ``README.md`` dataset card starting with ``---``):
              ``HFDatasetSource``;
            - else a folder of ``class_name/*.png`` images.

            A source object is returned as is.
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
            return _parquet_source(p, **kwargs)
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
    from astroreason.data.hf_dataset import HFDatasetSource, is_saved_dataset

    if is_saved_dataset(p):
        return HFDatasetSource(p, **kwargs)
    if _has_fits_class_folders(p):
        from astroreason.data.fits_folder import FitsFolderSource

        return FitsFolderSource(p, **kwargs)
    if any(n.lower().endswith(".parquet") for n in names) or (p / "data").is_dir():
        return _parquet_source(p, **kwargs)
    if _is_dataset_card(p / "README.md"):
        return HFDatasetSource(p, **kwargs)
    from astroreason.data.folder import ImageFolderSource

    return ImageFolderSource(p, **kwargs)


_HF_OPTIONS = {"hf_split", "image_column", "label_column"}


def _parquet_source(p: Path, **kwargs) -> SampleSource:
    """A Galaxy10 export by its schema (and no Hugging Face option given), else the generic reader."""
    from astroreason.data.parquet import ParquetGalaxySource, is_galaxy10_export

    if not _HF_OPTIONS & set(kwargs) and is_galaxy10_export(p):
        return ParquetGalaxySource(p, **kwargs)
    from astroreason.data.hf_dataset import HFDatasetSource

    return HFDatasetSource(p, **kwargs)


def _has_fits_class_folders(p: Path) -> bool:
    """Whether a (non-hidden) subfolder of ``p`` holds a FITS file."""
    from astroreason.data.spectra_formats import is_fits_name

    for d in sorted(p.iterdir()):
        if d.name.startswith(".") or not d.is_dir():
            continue
        if any(is_fits_name(f.name) and not f.name.startswith(".") for f in d.iterdir()):
            return True
    return False


def _is_dataset_card(readme: Path) -> bool:
    """A Hugging Face dataset card: a ``README.md`` that opens with YAML front matter."""
    try:
        with open(readme, encoding="utf-8", errors="replace") as f:
            return f.readline().strip() == "---"
    except OSError:
        return False


def _spectra_source(fmt: str, p: Path, **kwargs) -> SampleSource:
    if fmt == "desi":
        from astroreason.data.desi import DESISpectraSource

        return DESISpectraSource(p, **kwargs)
    if fmt == "lamost":
        from astroreason.data.lamost import LAMOSTSpectraSource

        return LAMOSTSpectraSource(p, **kwargs)
    from astroreason.data.sdss import SDSSSpectraSource

    return SDSSSpectraSource(p, **kwargs)
