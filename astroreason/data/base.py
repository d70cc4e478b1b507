"""The one interface every labelled data source implements.

A *source* is a random-access sequence of :class:`Sample` objects plus whole-column views that splits and
the leakage audit read without touching pixels. What a model may see (``image`` or ``spectrum``) is kept
apart from what it must never see (``meta``: coordinates, redshift, pixel scale, ids, file names, ground
truth boxes). Only the environment decides what is rendered into a prompt, and it renders pixels only.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from astroreason.errors import DataError

Kind = Literal["image", "spectrum"]


@dataclass(frozen=True)
class Spectrum:
    """A 1-D spectrum on an observed-frame vacuum wavelength grid.

    Attributes:
        wavelength: Observed wavelength in Angstrom, increasing, float64, shape (n,).
        flux: Flux in 1e-17 erg/s/cm^2/A, float32, shape (n,).
        ivar: Inverse variance of ``flux``, float32, shape (n,); 0 marks a bad pixel.
        mask: True where the pixel is bad (``ivar == 0`` or non-finite flux), shape (n,).
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray


MIN_SPECTRUM_PIXELS = 16
"""Fewer pixels than this is no spectrum to classify (readers refuse it when it is loaded)."""
MAX_SPECTRUM_PIXELS = 1_000_000
"""More pixels than this is no single spectrum (SDSS has ~4,600, DESI ~7,800): refused."""
MIN_WAVELENGTH_A, MAX_WAVELENGTH_A = 1000.0, 100000.0
"""The plausible median observed wavelength in Angstrom (far UV to mid infrared)."""


def check_wavelength(path: object, wavelength: np.ndarray, field: str) -> np.ndarray:
    """Check a spectrum's wavelength grid in Angstrom and return it as float64.

    Units are refused, never guessed: a grid whose median is 100..1000 is taken for nm, one of
    2.5..5 for log10(Angstrom) and 0.1..2.5 for micron, and named so in the error.

    Raises:
        DataError: naming ``path`` and ``field``: fewer than :data:`MIN_SPECTRUM_PIXELS` pixels
            or more than :data:`MAX_SPECTRUM_PIXELS`,
            values not finite and strictly increasing, or a median outside
            :data:`MIN_WAVELENGTH_A` .. :data:`MAX_WAVELENGTH_A`.
    """
    wl = np.asarray(wavelength, dtype=np.float64).reshape(-1)
    n = wl.size
    if n < MIN_SPECTRUM_PIXELS:
        raise DataError(
            path,
            f"too short: {n} pixel{'s' * (n != 1)}, a spectrum needs at least "
            f"{MIN_SPECTRUM_PIXELS}",
            field,
        )
    if n > MAX_SPECTRUM_PIXELS:
        raise DataError(path, f"too long: {n} pixels, at most {MAX_SPECTRUM_PIXELS}", field)
    if not np.all(np.isfinite(wl)) or np.any(np.diff(wl) <= 0):
        raise DataError(path, "not finite and strictly increasing", field)
    median = float(np.median(wl))
    if not MIN_WAVELENGTH_A <= median <= MAX_WAVELENGTH_A:
        unit = (
            "nm"
            if 100 <= median < 1000
            else "log10(Angstrom)"
            if 2.5 <= median <= 5.0
            else "micron"
            if 0.1 <= median < 2.5
            else None
        )
        hint = f"looks like {unit}; " if unit else ""
        raise DataError(
            path,
            f"median wavelength {median:.6g} {hint}expected Angstrom "
            f"({MIN_WAVELENGTH_A:g}..{MAX_WAVELENGTH_A:g})",
            field,
        )
    return wl


MAX_IMAGE_SIDE = 4096
"""Largest image side in pixels a source serves (a view is padded to a square of the longer side)."""
MIN_IMAGE_SIDE = 2
"""Smallest image side in pixels."""


def check_image_size(path: object, height: int, width: int, field: str | None = None) -> None:
    """Refuse an image side outside :data:`MIN_IMAGE_SIDE` .. :data:`MAX_IMAGE_SIDE` (before decoding).

    Raises:
        DataError: naming ``path`` and ``field``, with the size and the limit.
    """
    h, w = int(height), int(width)
    if max(h, w) > MAX_IMAGE_SIDE:
        raise DataError(
            path,
            f"images of {h} x {w} pixels: over the limit of {MAX_IMAGE_SIDE} pixels a side "
            "(downsample or cut out the data first)",
            field,
        )
    if min(h, w) < MIN_IMAGE_SIDE:
        raise DataError(
            path, f"images of {h} x {w} pixels: need at least {MIN_IMAGE_SIDE} a side", field
        )


@dataclass(frozen=True)
class Sample:
    """One labelled sample.

    Attributes:
        row_id: Position in the source (stable across runs); never shown to a model.
        label: Class index into the source's ``class_names``.
        image: HxWx3 uint8 pixels for image sources, else None.
        spectrum: The spectrum for spectrum sources, else None.
        meta: Everything else (ra, dec, redshift, pxscale, object_id, file name, ground-truth box, ...).
            Never rendered into a prompt.
    """

    row_id: int
    label: int
    image: np.ndarray | None = None
    spectrum: Spectrum | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


class SampleSource(abc.ABC, Sequence[Sample]):
    """A labelled, random-access collection of samples read from user files.

    Subclasses set ``path``, ``kind`` and ``class_names`` and implement ``__len__``, ``_load`` and
    ``labels``. Reads are lazy: ``__getitem__`` loads one sample, never the whole pixel array.
    """

    path: str
    kind: Kind
    class_names: tuple[str, ...]

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abc.abstractmethod
    def _load(self, i: int) -> Sample:
        """Load sample ``i`` (0 <= i < len)."""

    @abc.abstractmethod
    def labels(self) -> np.ndarray:
        """All labels as an int64 array, in row order, without loading pixels."""

    def metadata(self) -> dict[str, np.ndarray]:
        """Whole metadata columns (e.g. ``ra``, ``dec``, ``redshift``, ``pxscale``, ``object_id``).

        Used by splits (sky positions) and the audit (columns that predict the label). Default: none.
        """
        return {}

    def pixel_hashes(self) -> list[str]:
        """A content hash per sample (exact-duplicate detection); reads every sample once."""
        out = []
        for i in range(len(self)):
            s = self[i]
            arr = s.image if s.image is not None else s.spectrum.flux  # type: ignore[union-attr]
            out.append(
                hashlib.blake2b(np.ascontiguousarray(arr).tobytes(), digest_size=16).hexdigest()
            )
        return out

    def fingerprint(self) -> str:
        """A short hash identifying the source's content (file bytes), stored with persisted splits."""
        return file_fingerprint(self.path)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"sample index must be an int, got {type(i).__name__}")
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sample {i} out of range for {n} samples")
        return self._load(i)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self._load(i)

    def class_counts(self) -> np.ndarray:
        """Number of samples per class, shape (n_classes,)."""
        return np.bincount(self.labels(), minlength=len(self.class_names))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.path!r}, n={len(self)}, classes={len(self.class_names)})"
        )


def cache_home() -> Path:
    """``$ASTROREASON_HOME``, default ``~/.cache/astroreason``: split fallbacks and the fingerprint cache."""
    return Path(os.environ.get("ASTROREASON_HOME") or Path.home() / ".cache" / "astroreason")


# Fingerprints by (absolute path, size, mtime_ns, inode) of every file hashed: in memory, and on disk for
# data large enough that hashing it is slow (the 2.5 GB Galaxy10 file would otherwise be read in full by
# every command). A file rewritten in place at the same size within the file system's timestamp resolution
# keeps its old fingerprint: the price of not reading it.
_FINGERPRINTS: dict[str, str] = {}
_DISK_CACHE_MIN_BYTES = 64 * 2**20
_DISK_CACHE_MAX_ENTRIES = 256


def file_fingerprint(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hash a file's bytes (or, for a folder, its sorted file names, sizes and bytes); 16 hex chars.

    Results are cached by each file's absolute path, size, mtime and inode (in memory, and for data of
    64 MB or more in ``cache_home() / "fingerprints.json"``), so an unchanged file is read once.
    """
    p = os.path.abspath(os.fspath(path))
    key, total = _stat_key(p)
    if key in _FINGERPRINTS:
        return _FINGERPRINTS[key]
    on_disk = total >= _DISK_CACHE_MIN_BYTES
    if on_disk and (hit := _read_disk_cache().get(key)):
        _FINGERPRINTS[key] = hit
        return hit
    h = hashlib.blake2b(digest_size=8)
    if os.path.isdir(p):
        for fp in _folder_files(p):
            h.update(os.path.relpath(fp, p).encode())
            _hash_file(h, fp, chunk)
    else:
        _hash_file(h, p, chunk)
    digest = h.hexdigest()
    _FINGERPRINTS[key] = digest
    if on_disk:
        _write_disk_cache(key, digest)
    return digest


def _stat_key(p: str) -> tuple[str, int]:
    """A cache key from the stat of every file under ``p``, and their total size in bytes."""
    if os.path.isdir(p):
        entries = []
        for fp in _folder_files(p):
            st = _stat(fp)
            entries.append((os.path.relpath(fp, p), st.st_size, st.st_mtime_ns, st.st_ino))
    else:
        st = _stat(p)
        entries = [("", st.st_size, st.st_mtime_ns, st.st_ino)]
    sig = hashlib.blake2b(repr(entries).encode(), digest_size=16).hexdigest()
    return f"{p}|{sig}", sum(e[1] for e in entries)


def _read_disk_cache() -> dict[str, str]:
    try:
        data = json.loads((cache_home() / "fingerprints.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_disk_cache(key: str, digest: str) -> None:
    """Best effort: a cache that cannot be written only costs a re-read next time."""
    cache = _read_disk_cache()
    cache.pop(key, None)
    cache[key] = digest
    cache = dict(list(cache.items())[-_DISK_CACHE_MAX_ENTRIES:])
    target = cache_home() / "fingerprints.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=0))
        os.replace(tmp, target)
    except OSError:
        pass


def _folder_files(p: str) -> Iterator[str]:
    """The files under folder ``p`` in sorted order, without broken symlinks (loops, dangling).

    Symlinks to folders are not followed (``os.walk``), so a looping folder link ends nowhere;
    a broken file link holds no data, and the folder readers skip it too (with a warning).
    """
    for root, dirs, files in os.walk(p):
        dirs.sort()
        for name in sorted(files):
            fp = os.path.join(root, name)
            if os.path.islink(fp) and not os.path.exists(fp):
                continue
            yield fp


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as err:
        raise DataError(path, f"cannot read: {err.strerror or err}") from None


def _hash_file(h, path: str, chunk: int) -> None:
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    except OSError as err:
        raise DataError(path, f"cannot read: {err.strerror or err}") from None
