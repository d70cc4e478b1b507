"""Local Hugging Face datasets of labelled images, read with ``datasets``, strictly offline.

Three layouts, one reader (:class:`HFDatasetSource`):

- a folder written by ``Dataset.save_to_disk`` (``state.json``, ``dataset_info.json``, ``*.arrow``)
  or ``DatasetDict.save_to_disk`` (``dataset_dict.json`` and one folder per split), read with
  ``datasets.load_from_disk``;
- a dataset repository folder (``README.md`` and ``data/train-*.parquet`` ..., or any files
  ``datasets`` can load), read with ``datasets.load_dataset(folder, split=...)``;
- one or more parquet files, read with ``datasets.load_dataset("parquet", data_files=...)``.

The split is ``hf_split`` (default: ``train`` when there is one, else the only split). The image column
is an ``Image`` feature (or a ``{bytes, path}`` struct, raw bytes or a path); the label column a
``ClassLabel`` (its names are the class names), integers (Galaxy10 DECaLS names when they span 0..9,
else ``"0"``, ``"1"``, ...) or strings (the sorted unique values). Every scalar column besides goes
into :meth:`~HFDatasetSource.metadata` for the leakage audit, never into a prompt.

Loading sets ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` for its duration (:func:`hf_offline`), so
nothing is fetched; ``datasets`` may write an Arrow copy into its cache (``cache_dir``). Images stay
encoded in the memory-mapped table until a sample is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from astroreason.data.base import Sample, SampleSource, check_image_size, file_fingerprint
from astroreason.data.classes import GALAXY10_DECALS
from astroreason.data.readers.folder import pil_to_rgb_array
from astroreason.errors import DataError

IMAGE_NAMES = ("image", "rgb_image", "img", "images", "picture")
"""Image column names tried when no column has the ``Image`` feature."""
LABEL_NAMES = ("label", "gz10_label", "labels", "class", "class_name", "target")
"""Label column names tried before any other ``ClassLabel`` column."""


def is_saved_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    p = Path(path)
    return p.is_dir() and (
        (p / "dataset_dict.json").is_file()
        or ((p / "state.json").is_file() and (p / "dataset_info.json").is_file())
    )


@contextlib.contextmanager
def hf_offline() -> Iterator[None]:
    """``datasets`` offline and quiet (no progress bars, no log lines) for the duration.

    Sets ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` in the environment and in the already imported
    ``datasets.config`` and ``huggingface_hub.constants``, whatever they were, and restores them after.
    """
    import datasets
    from datasets.utils import logging as ds_logging

    hub_constants = sys.modules.get("huggingface_hub.constants")  # loaded by datasets

    bars_were_on = not datasets.utils.are_progress_bars_disabled()
    verbosity = ds_logging.get_verbosity()
    env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    flags = [
        (datasets.config, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_DATASETS_OFFLINE"),
        (hub_constants, "HF_HUB_OFFLINE"),
    ]
    flags = [(mod, name) for mod, name in flags if mod is not None]
    saved = [(mod, name, getattr(mod, name)) for mod, name in flags if hasattr(mod, name)]
    datasets.disable_progress_bars()
    ds_logging.set_verbosity(ds_logging.CRITICAL)  # errors come back as DataError
    os.environ.update(dict.fromkeys(env, "1"))
    for mod, name, _ in saved:
        setattr(mod, name, True)
    try:
        yield
    finally:
        for mod, name, value in saved:
            setattr(mod, name, value)
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        ds_logging.set_verbosity(verbosity)
        if bars_were_on:
            datasets.enable_progress_bars()


def hf_load(path: str | os.PathLike, what: str, load: Callable[[], Any]) -> Any:
    """Run ``load()`` under :func:`hf_offline`, turning its errors into one-line DataErrors.

    The message is ``not readable as <what>: <last line of the cause>``, naming ``path``.
    """
    import pyarrow as pa
    from datasets.exceptions import DatasetGenerationError

    try:
        with hf_offline():
            return load()
    except DataError:
        raise
    except (
        OSError,
        ValueError,
        TypeError,
        KeyError,
        pa.ArrowException,
        DatasetGenerationError,
    ) as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        cause = e.__cause__
        if cause is not None and str(cause).strip():
            msg = str(cause).strip().splitlines()[-1]
        raise DataError(path, f"not readable as {what}: {msg}") from None


class HFDatasetSource(SampleSource):
    """Labelled images from a local Hugging Face dataset (see the module docstring for the layouts).

    Args:
        path: A ``save_to_disk`` folder, a dataset repository folder, or a parquet file.
        hf_split: The split to read (default: ``train`` when present, else the only split).
        image_column: The image column (default: the ``Image`` feature, else a known name).
        label_column: The label column (default: a known name, else the only ``ClassLabel``).
        cache_dir: Where ``datasets`` keeps its Arrow copy of parquet data (default: its cache).

    Attributes:
        class_source: How the class names were found (``ClassLabel``, ``Galaxy10 DECaLS``, ...).
        split_names: The splits the data offers; ``hf_split`` the one read.

    Raises:
        DataError: Unreadable data, an unknown split, no image or label column, null or invalid
            labels, no rows; at read time, image bytes that cannot be decoded (naming the row).
    """

    kind = "image"

    def __init__(
        self,
        path: str | os.PathLike,
        hf_split: str | None = None,
        image_column: str | None = None,
        label_column: str | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        p = Path(path)
        self.path = str(p)
        if not p.exists():
            raise DataError(p, "no such file or folder")
        ds, self.hf_split, self.split_names, dirs = _open_dataset(p, hf_split, cache_dir)
        columns = list(ds.column_names)
        found = ", ".join(columns) or "none"
        features = ds.features
        image_column = image_column or next(
            (c for c in columns if _feature_name(features[c]) == "Image"), None
        )
        image_column = image_column or next((c for c in IMAGE_NAMES if c in columns), None)
        if image_column is None or image_column not in columns:
            want = f"{image_column!r}" if image_column else f"an Image feature or {IMAGE_NAMES}"
            raise DataError(p, f"no image column (expected {want}; found {found})")
        class_labels = [c for c in columns if _feature_name(features[c]) == "ClassLabel"]
        label_column = label_column or next((c for c in LABEL_NAMES if c in columns), None)
        if label_column is None and len(class_labels) == 1:
            label_column = class_labels[0]
        if label_column is None or label_column not in columns:
            want = f"{label_column!r}" if label_column else f"a ClassLabel or one of {LABEL_NAMES}"
            raise DataError(p, f"no label column (expected {want}; found {found})")
        if len(ds) == 0:
            raise DataError(p, f"split {self.hf_split!r} has no rows")
        labels, names, self.class_source = _labels(p, ds, label_column)
        self._setup(ds, image_column, label_column, labels, names, dirs)

    def _setup(self, ds, image_column: str, label_column: str, labels, class_names, dirs) -> None:
        """Keep the table, the columns and the labels; read the scalar metadata columns once."""
        if getattr(ds, "_indices", None) is not None:  # a selection: rows must be table rows
            ds = ds.flatten_indices()
        self._ds = ds
        self.image_column = image_column
        self.label_column = label_column
        self.class_names = tuple(class_names)
        self._labels = np.asarray(labels, dtype=np.int64)
        self._dirs = [str(d) for d in dirs]
        self._meta = _scalar_columns(ds.data, exclude={image_column, label_column})

    def __len__(self) -> int:
        """Number of rows in the split."""
        return len(self._labels)

    def _load(self, i: int) -> Sample:
        cell = self._ds.data.column(self.image_column)[i].as_py()
        image = decode_image(cell, self.path, self.image_column, i, self._dirs)
        meta: dict[str, Any] = {k: _py(v[i]) for k, v in self._meta.items()}
        return Sample(row_id=i, label=int(self._labels[i]), image=image, meta=meta)

    def labels(self) -> np.ndarray:
        """The labels as int64 class indices, in row order."""
        return self._labels.copy()

    def metadata(self) -> dict[str, np.ndarray]:
        """Scalar columns other than image and label (ids, coordinates...: never in prompts)."""
        return {k: v.copy() for k, v in self._meta.items()}

    def fingerprint(self) -> str:
        """The files' hash; with several splits on offer, the split read is part of it."""
        base = file_fingerprint(self.path)
        if self.hf_split is None or len(self.split_names) < 2:
            return base
        return hashlib.blake2b(f"{base}:{self.hf_split}".encode(), digest_size=8).hexdigest()


def _open_dataset(p: Path, hf_split: str | None, cache_dir):
    """(Dataset, split read, splits offered, folders that relative image paths are relative to)."""
    import datasets

    cache = None if cache_dir is None else str(cache_dir)
    if is_saved_dataset(p):
        obj = hf_load(p, "a saved dataset", lambda: datasets.load_from_disk(str(p)))
        if isinstance(obj, datasets.DatasetDict):
            name = _choose_split(p, hf_split, list(obj))
            return obj[name], name, list(obj), [p / name, p]
        own = str(obj.split) if obj.split is not None else None
        if hf_split is not None and own is not None and hf_split != own:
            raise DataError(p, f"no split {hf_split!r}: this dataset is split {own!r}", "hf_split")
        return obj, own, [own] if own else [], [p]
    if p.is_file():
        if not p.name.lower().endswith(".parquet"):
            raise DataError(p, f"unrecognised file type {p.suffix!r}: expected .parquet")
        names = ["train"]  # load_dataset puts data_files into "train"
        name = _choose_split(p, hf_split, names)
        ds = hf_load(
            p,
            "parquet",
            lambda: datasets.load_dataset(
                "parquet", data_files=[str(p)], split=name, cache_dir=cache
            ),
        )
        return ds, name, names, [p.parent]
    target = str(p.resolve())  # an absolute local path is never taken for a Hub repo id
    names = hf_load(p, "a dataset folder", lambda: datasets.get_dataset_split_names(target))
    name = _choose_split(p, hf_split, list(names))
    ds = hf_load(
        p,
        "a dataset folder",
        lambda: datasets.load_dataset(target, split=name, cache_dir=cache),
    )
    dirs = [p, *sorted({f.parent for f in p.rglob("*.parquet")} - {p})]
    return ds, name, list(names), dirs


def _choose_split(p: Path, hf_split: str | None, names: list[str]) -> str:
    if hf_split is not None:
        if hf_split not in names:
            raise DataError(p, f"no split {hf_split!r} (splits: {', '.join(names)})", "hf_split")
        return hf_split
    if "train" in names or not names:
        return "train"
    if len(names) == 1:
        return names[0]
    raise DataError(p, f"several splits ({', '.join(names)}): choose one with hf_split", "hf_split")


def _feature_name(feature: Any) -> str:
    return type(feature).__name__


def _labels(p: Path, ds, column: str) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Class indices, class names and where the names came from."""
    import pyarrow as pa

    feature = ds.features[column]
    col = ds.data.column(column)
    if col.null_count:
        r = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(p, f"null label at row {r}", field=column)
    t = col.type
    if _feature_name(feature) == "ClassLabel":
        names = tuple(str(n) for n in feature.names)
        labels = col.to_numpy().astype(np.int64)
        _check_range(p, column, labels, len(names))
        return labels, names, "ClassLabel"
    if pa.types.is_integer(t):
        labels = col.to_numpy().astype(np.int64)
        if labels.min() >= 0 and labels.max() == len(GALAXY10_DECALS) - 1:
            return labels, GALAXY10_DECALS, "Galaxy10 DECaLS (10 integer labels, no ClassLabel)"
        _check_range(p, column, labels, int(labels.max()) + 1)
        names = tuple(str(k) for k in range(int(labels.max()) + 1))
        return labels, names, "integer labels (no ClassLabel)"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        values = np.array(col.to_pylist(), dtype=object).astype(str)
        names_arr, labels = np.unique(values, return_inverse=True)
        return labels.astype(np.int64), tuple(names_arr.tolist()), "sorted string labels"
    raise DataError(p, f"type {t}, expected a ClassLabel, integers or strings", field=column)


def _check_range(p: Path, column: str, labels: np.ndarray, k: int) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= k))
    if bad.size:
        r = int(bad[0])
        raise DataError(
            p,
            f"label {labels[r]} at row {r} out of range 0..{k - 1} ({bad.size} bad rows)",
            field=column,
        )


def _scalar_columns(table, exclude: set[str]) -> dict[str, np.ndarray]:
    """Numeric, boolean and string columns as arrays (numbers with nulls: float64 with NaN)."""
    import pyarrow as pa

    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        if name in exclude:
            continue
        col = table.column(name)
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            arr = col.to_numpy()
            if col.null_count and arr.dtype.kind != "f":
                arr = arr.astype(np.float64)  # pyarrow already gave NaN for nulls when needed
            out[name] = arr
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            out[name] = np.array(col.to_pylist(), dtype=object)
    return out


def decode_image(cell: Any, path: str, column: str, row: int, dirs: list[str]) -> np.ndarray:
    """Decode one image cell (``{bytes, path}`` struct, raw bytes, or a path) to HxWx3 uint8.

    A relative path is looked up as given, then under each of ``dirs``.

    Raises:
        DataError: Empty cell, missing file, undecodable bytes, or an image side over
            :data:`~astroreason.data.base.MAX_IMAGE_SIDE` (checked before decoding; naming ``path``,
            ``column``, row).
    """
    data: bytes | None = None
    file: str | None = None
    if isinstance(cell, dict):
        data, file = cell.get("bytes"), cell.get("path")
    elif isinstance(cell, (bytes, bytearray)):
        data = bytes(cell)
    elif isinstance(cell, str):
        file = cell
    elif cell is not None:
        raise DataError(
            path,
            f"row {row}: image cell of type {type(cell).__name__}, expected encoded bytes or a path",
            field=column,
        )
    if not data and file:
        candidates = [Path(file)] + [Path(d) / file for d in dirs]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(path, f"row {row}: image file {file!r} not found", field=column)
        data = found.read_bytes()
    if not data:
        raise DataError(path, f"row {row}: empty image cell", field=column)
    try:
        with Image.open(io.BytesIO(data)) as im:
            check_image_size(path, im.height, im.width, field=f"{column} (row {row})")
            return pil_to_rgb_array(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataError(
            path, f"row {row}: cannot decode image bytes: {err}", field=column
        ) from None


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
