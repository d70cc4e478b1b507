"""Labelled data: Galaxy10 HDF5, Hugging Face datasets, spectra, image and FITS folders, synthetic sets.

``open_source(path)`` picks the reader from what the path is (``source_kind(path)`` says whether it
holds images or spectra without opening it); every reader implements
:class:`~astroreason.data.base.SampleSource`.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from astroreason.data.base import Kind, Sample, SampleSource, Spectrum
from astroreason.errors import DataError

__all__ = ["Sample", "SampleSource", "Spectrum", "open_source", "source_kind"]


def open_source(path: str | os.PathLike | SampleSource, **kwargs) -> SampleSource:
    """Open a data source by looking at the path.

    Args:
        path: One of (checked in this order for a folder):

            - an HDF5 file (Galaxy10 DECaLS or SDSS format);
            - a spectrum FITS file, or a folder holding them directly (SDSS ``spec-*.fits``, DESI
              ``coadd-*.fits`` with their Redrock files, LAMOST ``spec-*.fits`` / ``.fits.gz``; told
              apart by their headers, see :mod:`~astroreason.data.readers.spectra_formats`);
            - a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``
              (:class:`~astroreason.data.readers.hf_dataset.HFDatasetSource`);
            - a folder of ``class_name/*.fits`` g/r/z cutouts
              (:class:`~astroreason.data.readers.fits_folder.FitsFolderSource`);
            - a parquet file or a folder of them (or with a ``data/`` folder): a Galaxy10 export
              (:class:`~astroreason.data.readers.parquet.ParquetGalaxySource`) when its schema is one and no
              Hugging Face option (``hf_split``, ``image_column``, ``label_column``) is given, else
              :class:`~astroreason.data.readers.hf_dataset.HFDatasetSource`;
            - a dataset repository folder (a ``README.md`` dataset card starting with ``---``):
              ``HFDatasetSource``;
            - else a folder of ``class_name/*.png`` images.

            A source object is returned as is.
        **kwargs: Passed to the reader.

    Raises:
        DataError: The path does not exist or is not a recognised format, or ``kwargs`` holds an
            option the reader does not take (e.g. ``task``, for spectra, given an image file).
    """
    if isinstance(path, SampleSource):
        return path
    reader = _reader(Path(path), kwargs)
    bad = [k for k in kwargs if not _takes(reader, k)]
    if bad:
        raise DataError(
            path,
            f"holds {_PLURAL[reader.kind]} ({reader.__name__}), which take no option "
            + ", ".join(map(repr, bad)),
        )
    return reader(Path(path), **kwargs)


def source_kind(path: str | os.PathLike | SampleSource) -> Kind:
    """``"image"`` or ``"spectrum"``: what :func:`open_source` would read from ``path``.

    Looks at the path (and at most a few headers), reading no pixels.

    Raises:
        DataError: The path does not exist or is not a recognised format.
    """
    if isinstance(path, SampleSource):
        return path.kind
    return _reader(Path(path), {}).kind


_PLURAL = {"image": "images", "spectrum": "spectra"}


def _takes(reader: type, option: str) -> bool:
    """Whether the reader's constructor takes the keyword ``option``."""
    params = inspect.signature(reader).parameters.values()
    return any(
        p.kind is p.VAR_KEYWORD or (p.name == option and p.kind is not p.POSITIONAL_ONLY)
        for p in params
    )


def _reader(p: Path, kwargs: dict) -> type[SampleSource]:
    """The reader class for ``p`` (see :func:`open_source` for the order)."""
    if not p.exists():
        raise DataError(p, "no such file or folder")
    suffix = p.suffix.lower()
    if p.is_file() and p.name.lower().endswith((".fits.gz", ".fit.gz", ".fts.gz")):
        suffix = ".fits"
    if p.is_file():
        if suffix in {".h5", ".hdf5"}:
            from astroreason.data.readers.galaxy10 import Galaxy10Source

            return Galaxy10Source
        if suffix == ".parquet":
            return _parquet_reader(p, kwargs)
        if suffix in {".fits", ".fit", ".fts"}:
            from astroreason.data.readers.spectra_formats import detect_file

            return _spectra_reader(detect_file(p))
        raise DataError(
            p, f"unrecognised file type {suffix or '(none)'!r}: expected .h5, .parquet or .fits"
        )
    if not p.is_dir():
        raise DataError(p, "neither a file nor a folder")
    try:
        names = [c.name for c in p.iterdir()]
    except OSError as err:
        raise DataError(p, f"cannot list the folder: {err.strerror or err}") from None
    from astroreason.data.readers.spectra_formats import detect_folder, is_fits_name

    if any(is_fits_name(n) for n in names):
        return _spectra_reader(detect_folder(p))
    from astroreason.data.readers.hf_dataset import HFDatasetSource, is_saved_dataset

    if is_saved_dataset(p):
        return HFDatasetSource
    if _has_fits_class_folders(p):
        from astroreason.data.readers.fits_folder import FitsFolderSource

        return FitsFolderSource
    if any(n.lower().endswith(".parquet") for n in names) or (p / "data").is_dir():
        return _parquet_reader(p, kwargs)
    if _is_dataset_card(p / "README.md"):
        return HFDatasetSource
    from astroreason.data.readers.folder import ImageFolderSource

    return ImageFolderSource


_HF_OPTIONS = {"hf_split", "image_column", "label_column"}


def _parquet_reader(p: Path, kwargs: dict) -> type[SampleSource]:
    """A Galaxy10 export by its schema (and no Hugging Face option given), else the generic reader."""
    from astroreason.data.readers.parquet import ParquetGalaxySource, is_galaxy10_export

    if not _HF_OPTIONS & set(kwargs) and is_galaxy10_export(p):
        return ParquetGalaxySource
    from astroreason.data.readers.hf_dataset import HFDatasetSource

    return HFDatasetSource


def _has_fits_class_folders(p: Path) -> bool:
    """Whether a (non-hidden) subfolder of ``p`` holds a FITS file."""
    from astroreason.data.readers.spectra_formats import is_fits_name

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


def _spectra_reader(fmt: str) -> type[SampleSource]:
    if fmt == "desi":
        from astroreason.data.readers.desi import DESISpectraSource

        return DESISpectraSource
    if fmt == "lamost":
        from astroreason.data.readers.lamost import LAMOSTSpectraSource

        return LAMOSTSpectraSource
    from astroreason.data.readers.sdss import SDSSSpectraSource

    return SDSSSpectraSource
