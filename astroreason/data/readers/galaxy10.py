"""Galaxy10 HDF5 files (DECaLS ``Galaxy10_DECals.h5`` and SDSS ``Galaxy10.h5``), read lazily.

One h5py handle stays open and ``_load(i)`` reads ``images[i]`` only, so a 2.5 GB file costs a few MB
of memory. Labels and the small per-row columns (``ra``, ``dec``, ``redshift``, ``pxscale``, ``bbox``,
``object_id``, ...) are read once at construction, validated, and kept in memory. Every problem with the
file is reported as a one-line :class:`~astroreason.errors.DataError` before any sample is served.

Layout matters: with one image per chunk (our synthetic writer) or a contiguous array a random read
takes well under a millisecond, but a compressed file chunked the h5py-automatic way (chunks spanning
hundreds of rows and a 16x16 pixel tile) decompresses tens of MB per image (0.1-0.2 s). For such files the
chunk cache is sized to hold one row's chunks (passes in row order then decompress each chunk once), a
warning is raised, and :func:`repack` rewrites the file with one image per chunk.

Remember that the real files are sorted by class: row ids and any id column predict the label.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from astroreason.data.base import Sample, SampleSource, check_image_size
from astroreason.data.classes import GALAXY10_DECALS, GALAXY10_SDSS
from astroreason.errors import AstroReasonWarning, ConfigError, DataError

Variant = Literal["auto", "decals", "sdss"]

SDSS_SIDE = 69
# Columns that must be finite (the real DECaLS file has NaN redshifts, so redshift may be NaN).
_FINITE_COLUMNS = ("ra", "dec", "pxscale")
COMPRESSIONS = (None, "lzf", "gzip")
"""What :func:`repack` may compress the images with (None: not at all)."""
# Chunk cache: the default fits images stored one per chunk; files whose chunks span many rows get one
# that holds all chunks of a row, up to the maximum.
_CHUNK_CACHE_BYTES = 16 * 2**20
MAX_CHUNK_CACHE_BYTES = 256 * 2**20


def _nested_datasets(f: h5py.File) -> list[str]:
    """Paths of the datasets inside groups (``meta/redshift``): columns like the top-level ones."""
    found: list[str] = []

    def visit(name: str, obj) -> None:
        if "/" in name and isinstance(obj, h5py.Dataset):
            found.append(name)

    for key in f:
        try:
            obj = f[key]
        except (KeyError, OSError):  # a dangling link: the column loop names it
            continue
        if isinstance(obj, h5py.Group):
            obj.visititems(lambda name, o, key=key: visit(f"{key}/{name}", o))
    return found


class Galaxy10Source(SampleSource):
    """A Galaxy10 DECaLS or SDSS HDF5 file.

    Args:
        path: The ``.h5`` file: ``images`` (N, H, W, 3) uint8, ``ans`` (N,) integer labels, optional
            per-row columns such as ``ra``, ``dec``, ``redshift``, ``pxscale`` and ``bbox`` (N, 4)
            ground-truth boxes ``x0, y0, x1, y1`` in pixels. A ``bbox`` that is NaN in every row is
            dropped with a warning (the boxes are then detected, as for files without one).
        variant: ``"decals"``, ``"sdss"``, or ``"auto"`` (69-pixel images are SDSS, else DECaLS);
            picks the class names.

    Every other dataset with N rows and one or two dimensions goes into ``Sample.meta``; the 1-D numeric
    and string ones also into :meth:`metadata`, where the leakage audit tests whether they predict the
    label. The source pickles without its file handle and reopens the file on first use, also after a
    fork, so it can go to multiprocessing workers. :meth:`close` releases the handle (a later read
    reopens it); the source is also a context manager.

    Raises:
        DataError: The file is missing, not HDF5, or malformed (missing keys, a link to a missing
            file, wrong shape or dtype, images over
            :data:`~astroreason.data.base.MAX_IMAGE_SIDE` pixels a side, length mismatch, labels out
            of range, NaN coordinates, a ``bbox`` not (N, 4) or NaN in some rows only, no rows).
        ConfigError: ``variant`` is not one of the above.
    """

    kind = "image"

    def __init__(self, path: str | os.PathLike, variant: Variant = "auto"):
        if variant not in ("auto", "decals", "sdss"):
            raise ConfigError(f"variant must be 'auto', 'decals' or 'sdss', got {variant!r}")
        self.path = str(path)
        self._file: h5py.File | None = None
        self._dset: h5py.Dataset | None = None  # kept open: the chunk cache lives with the dataset
        self._pid = -1
        self._cache = {"rdcc_nbytes": _CHUNK_CACHE_BYTES}
        f = self._open()
        try:
            self._read_header(f, variant)
            self._tune_chunk_cache(f["images"])
        except OSError as err:
            self.close()
            raise DataError(self.path, f"unreadable HDF5 data (truncated?): {err}") from None
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- validation
    def _open(self) -> h5py.File:
        p = Path(self.path)
        if not p.exists():
            raise DataError(p, "no such file")
        if p.is_dir():
            raise DataError(p, "is a folder, expected a Galaxy10 .h5 file")
        try:
            f = h5py.File(p, "r", **self._cache)
        except OSError as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise DataError(
                p, f"not a readable HDF5 file (truncated, or another format): {reason}"
            ) from None
        self._file = f
        self._pid = os.getpid()
        return f

    def _read_header(self, f: h5py.File, variant: Variant) -> None:
        path = self.path
        for key in ("images", "ans"):
            if key not in f:
                raise DataError(path, f"missing dataset (keys found: {_keys(f)})", field=key)
            if not isinstance(_get(path, f, key), h5py.Dataset):
                raise DataError(path, "is a group, expected a dataset", field=key)
        images, ans = f["images"], f["ans"]
        if images.ndim != 4 or images.shape[-1] != 3:
            raise DataError(
                path, f"shape {images.shape}, expected (N, H, W, 3) RGB images", field="images"
            )
        check_image_size(path, images.shape[1], images.shape[2], field="images")
        if images.dtype != np.uint8:
            raise DataError(path, f"dtype {images.dtype}, expected uint8", field="images")
        n = int(images.shape[0])
        if n == 0:
            raise DataError(path, "no rows (0 images)", field="images")
        if ans.ndim != 1:
            raise DataError(path, f"shape {ans.shape}, expected (N,) labels", field="ans")
        if not np.issubdtype(ans.dtype, np.integer):
            raise DataError(path, f"dtype {ans.dtype}, expected integer labels", field="ans")
        if ans.shape[0] != n:
            raise DataError(path, f"{ans.shape[0]} labels but {n} images", field="ans")

        side = int(images.shape[1])
        if variant == "auto":
            variant = "sdss" if side == SDSS_SIDE else "decals"
        self.variant: str = variant
        self.class_names = GALAXY10_SDSS if variant == "sdss" else GALAXY10_DECALS

        labels = ans[()].astype(np.int64)
        bad = np.flatnonzero((labels < 0) | (labels >= len(self.class_names)))
        if bad.size:
            r = int(bad[0])
            raise DataError(
                path,
                f"label {labels[r]} at row {r} out of range 0..{len(self.class_names) - 1} "
                f"({bad.size} of {n} rows bad)",
                field="ans",
            )
        self._labels = labels
        self._n = n
        self._image_shape = tuple(int(s) for s in images.shape[1:])
        self._meta = self._read_columns(f, n)

    def _read_columns(self, f: h5py.File, n: int) -> dict[str, np.ndarray]:
        cols: dict[str, np.ndarray] = {}
        for key in [*f, *_nested_datasets(f)]:
            if key in ("images", "ans"):
                continue
            ds = _get(self.path, f, key)
            if not isinstance(ds, h5py.Dataset) or ds.ndim == 0:
                continue
            if ds.ndim > 2 and key != "bbox":  # e.g. masks: not a per-row value; left in the file
                continue
            if "/" in key and ds.shape[0] != n:  # inside a group: per-row columns only
                continue
            if ds.shape[0] != n:
                raise DataError(self.path, f"{ds.shape[0]} rows but {n} images", field=key)
            arr = ds[()]
            if arr.dtype.kind in ("S", "O"):
                arr = np.array([_to_str(v) for v in arr.reshape(-1)], dtype=object).reshape(
                    arr.shape
                )
            if key in _FINITE_COLUMNS:
                if arr.ndim != 1 or arr.dtype.kind not in "iuf":
                    raise DataError(
                        self.path,
                        f"shape {arr.shape} dtype {arr.dtype}, expected (N,) numbers",
                        field=key,
                    )
                nan = np.flatnonzero(~np.isfinite(arr.astype(np.float64)))
                if nan.size:
                    r = int(nan[0])
                    raise DataError(
                        self.path,
                        f"non-finite value {arr[r]} at row {r} ({nan.size} of {n} rows bad)",
                        field=key,
                    )
            if key == "bbox":
                arr = self._check_boxes(arr, n)
                if arr is None:
                    continue
            cols[key] = arr
        return cols

    def _check_boxes(self, arr: np.ndarray, n: int) -> np.ndarray | None:
        """The ``bbox`` column checked: (N, 4), finite; None (with a warning) when no row is finite."""
        if arr.ndim != 2 or arr.shape[1] != 4 or arr.dtype.kind not in "iuf":
            raise DataError(
                self.path,
                f"shape {arr.shape} dtype {arr.dtype}, expected (N, 4) numbers x0, y0, x1, y1",
                field="bbox",
            )
        bad = np.flatnonzero(~np.isfinite(arr.astype(np.float64)).all(axis=1))
        if bad.size == n:
            warnings.warn(
                f"{self.path}: bbox: no finite box in any row; ignored, so the target boxes "
                "are detected from the pixels",
                AstroReasonWarning,
                stacklevel=5,
            )
            return None
        if bad.size:
            r = int(bad[0])
            raise DataError(
                self.path,
                f"non-finite box {arr[r].tolist()} at row {r} ({bad.size} of {n} rows bad); give "
                "every row a box, or NaN in all rows to have them detected",
                field="bbox",
            )
        return arr

    def _tune_chunk_cache(self, images: h5py.Dataset) -> None:
        """Size the chunk cache to one row's chunks when chunks span rows; warn if reads are costly."""
        chunks, compression = images.chunks, images.compression
        image_bytes = math.prod(images.shape[1:]) * images.dtype.itemsize
        self._bytes_per_read = image_bytes
        if not chunks or chunks[0] == 1:
            return
        n_chunks = math.prod(
            math.ceil(s / c) for s, c in zip(images.shape[1:], chunks[1:], strict=True)
        )
        row_bytes = n_chunks * math.prod(chunks) * images.dtype.itemsize
        self._bytes_per_read = row_bytes
        if row_bytes <= MAX_CHUNK_CACHE_BYTES and row_bytes > _CHUNK_CACHE_BYTES:
            self._cache = {
                "rdcc_nbytes": row_bytes + row_bytes // 16,
                "rdcc_nslots": _prime_at_least(20 * n_chunks),
            }
            self.close()
            self._open()
        if row_bytes >= 8 * image_bytes:
            warnings.warn(
                f"{self.path}: images are stored in chunks of {chunks}"
                f"{' compressed with ' + compression if compression else ''}: "
                f"one random read touches {row_bytes / 1e6:.0f} MB; "
                "astroreason.data.readers.galaxy10.repack() rewrites the file with one image per chunk",
                AstroReasonWarning,
                stacklevel=3,
            )

    # ----------------------------------------------------------------- access
    def _images(self) -> h5py.Dataset:
        if self._dset is None or self._pid != os.getpid():
            self._file = self._dset = None  # a handle inherited through fork is not ours to close
            f = self._open()
            dset = f["images"]
            if not isinstance(dset, h5py.Dataset) or dset.shape[0] != self._n:
                shape = getattr(dset, "shape", None)
                self.close()
                raise DataError(self.path, f"file changed on disk: images now {shape}", "images")
            self._dset = dset
        return self._dset

    def __len__(self) -> int:
        """Number of images."""
        return self._n

    def _load(self, i: int) -> Sample:
        try:
            image = np.asarray(self._images()[i])  # one row only, never the whole array
        except OSError as err:
            raise DataError(
                self.path, f"cannot read row {i} (truncated file?): {err}", "images"
            ) from None
        meta: dict[str, Any] = {k: _scalar(v[i]) for k, v in self._meta.items()}
        return Sample(row_id=i, label=int(self._labels[i]), image=image, meta=meta)

    def labels(self) -> np.ndarray:
        """The ``ans`` labels as int64, in row order."""
        return self._labels.copy()

    def metadata(self) -> dict[str, np.ndarray]:
        """The 1-D numeric and string columns (``ra``, ``dec``, ``redshift``, ``pxscale``, ids...)."""
        return {
            k: v.copy() for k, v in self._meta.items() if v.ndim == 1 and v.dtype.kind in "biufO"
        }

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, 3) of every image."""
        return self._image_shape  # type: ignore[return-value]

    # ----------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Close the file handle (a later read reopens it)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = self._dset = None

    def __enter__(self) -> Galaxy10Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = state["_dset"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._file = self._dset = None
        self._pid = -1


def repack(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    compression: str | None = None,
    overwrite: bool = False,
    shuffle_seed: int | None = None,
) -> Path:
    """Rewrite a Galaxy10 file with one image per chunk (fast random access); other keys are copied.

    With ``shuffle_seed`` the rows are written in a seeded random order (every per-row key alike),
    so a class-sorted file no longer has a row order that predicts the label; the seed is kept in
    the file's attributes (``astroreason_shuffle_seed``), the original row numbers are not.

    Args:
        src: A valid Galaxy10 file (checked as :class:`Galaxy10Source` checks it).
        dst: The new file; written under a temporary name, then renamed.
        compression: One of :data:`COMPRESSIONS`: ``None`` (or ``"none"``; fastest to read, the
            DECaLS file grows to ~3.5 GB), ``"lzf"`` or ``"gzip"``.
        overwrite: Replace ``dst`` if it exists.
        shuffle_seed: Write the rows in this seed's random order (None: file order). Reads the
            images into memory once (about 3.5 GB for Galaxy10 DECaLS).

    Returns:
        The path of the new file.

    Raises:
        ConfigError: ``compression`` is not one of :data:`COMPRESSIONS`.
        DataError: ``src`` is not a valid Galaxy10 file, ``dst`` is a folder, or ``dst`` exists and
            ``overwrite`` is False.
    """
    if isinstance(compression, str):
        compression = compression.strip().lower()
        compression = None if compression == "none" else compression
    if compression not in COMPRESSIONS:
        raise ConfigError(f"compression: unknown {compression!r}; choose None, lzf or gzip")
    dst = Path(dst)
    if dst.is_dir():
        raise DataError(dst, "is a folder, expected the path of the new .h5 file")
    if dst.exists() and not overwrite:
        raise DataError(dst, "already exists (pass overwrite=True to replace it)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check = Galaxy10Source(src)
    check.close()
    tmp = dst.with_name(dst.name + ".tmp")
    with h5py.File(src, "r", rdcc_nbytes=check._cache["rdcc_nbytes"]) as fin:
        images = fin["images"]
        n = images.shape[0]
        block = images.chunks[0] if images.chunks else 256
        with h5py.File(tmp, "w") as fout:
            out = fout.create_dataset(
                "images",
                shape=images.shape,
                dtype=images.dtype,
                chunks=(1, *images.shape[1:]),
                compression=compression,
            )
            if shuffle_seed is None:
                for start in range(0, n, block):
                    out[start : start + block] = images[start : start + block]
            else:
                order = np.random.default_rng(shuffle_seed).permutation(n)
                every = np.empty(images.shape, dtype=images.dtype)  # in file order, then permuted
                for start in range(0, n, block):
                    every[start : start + block] = images[start : start + block]
                out[...] = every[order]
                del every
            for key in fin:
                if key == "images":
                    continue
                ds = fin[key]
                if (
                    shuffle_seed is not None
                    and isinstance(ds, h5py.Dataset)
                    and ds.shape[:1] == (n,)
                ):
                    fout.create_dataset(key, data=ds[()][order])
                else:
                    fin.copy(ds, fout, name=key)
            for k, v in fin.attrs.items():
                fout.attrs[k] = v
            if shuffle_seed is not None:
                fout.attrs["astroreason_shuffle_seed"] = int(shuffle_seed)
    os.replace(tmp, dst)
    return dst


def _prime_at_least(n: int) -> int:
    """The smallest prime >= n (HDF5 wants a prime number of chunk-cache slots)."""
    n = max(n, 2)
    while any(n % d == 0 for d in range(2, math.isqrt(n) + 1)):
        n += 1
    return n


def _get(path: str, f: h5py.File, key: str) -> h5py.Dataset | h5py.Group:
    """``f[key]``, or a DataError naming ``key`` when it is a link that cannot be followed."""
    try:
        obj = f.get(key)
    except (KeyError, OSError, ValueError):
        obj = None
    if obj is not None:
        return obj
    link = f.get(key, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        what = f"external link to {link.filename}:{link.path}"
    elif isinstance(link, h5py.SoftLink):
        what = f"soft link to {link.path}"
    else:
        what = "link"
    raise DataError(path, f"{what} cannot be opened (missing file or object?)", field=key)


def _keys(f: h5py.File) -> str:
    return ", ".join(sorted(f.keys())) or "none"


def _to_str(v: object) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _scalar(v: Any) -> Any:
    """A numpy element as a plain Python value (arrays stay arrays)."""
    if isinstance(v, np.ndarray):
        return v.copy()
    return v.item() if isinstance(v, np.generic) else v
