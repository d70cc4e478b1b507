"""Hugging Face parquet exports of Galaxy10 DECaLS, read from local files with ``datasets``.

Two schemas are known: ``image`` + ``label`` (e.g. ``matthieulel/galaxy10_decals``), and ``rgb_image`` +
``gz10_label`` with ``object_id``, ``ra``, ``dec``, ``redshift``, ``rgb_pixel_scale``
(``MultimodalUniverse/gz10``). All ``*.parquet`` files under the path are concatenated in sorted path
order into one memory-mapped Arrow table (``datasets`` writes it to its cache on first open; nothing is
downloaded). Images stay encoded until a sample is read; labels and scalar columns are read once.

Leakage: in the second export ``object_id`` is the row number in the class-sorted Galaxy10 file, so it
predicts the label almost perfectly. It is kept in :meth:`metadata` precisely so the audit can flag it;
like every metadata column it must never reach a prompt.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from astroreason.data.base import Sample, SampleSource
from astroreason.data.classes import GALAXY10_DECALS
from astroreason.data.folder import pil_to_rgb_array
from astroreason.errors import DataError

IMAGE_COLUMNS = ("image", "rgb_image")
LABEL_COLUMNS = ("label", "gz10_label")


class ParquetGalaxySource(SampleSource):
    """Galaxy10 DECaLS rows from one ``.parquet`` file or a folder of them (searched recursively).

    Args:
        path: A parquet file, or a folder holding parquet files (e.g. under ``data/``).
        cache_dir: Where ``datasets`` keeps its Arrow copy (default: its usual cache folder).

    Every scalar column other than the image and the label (``object_id``, ``ra``, ``dec``, ``redshift``,
    ...) goes into :meth:`metadata` and ``Sample.meta``; nulls become NaN (numbers) or None (strings).

    Raises:
        DataError: No parquet files, unreadable parquet, no image or label column, null or out-of-range
            labels; at read time, image bytes that cannot be decoded (naming the row).
    """

    kind = "image"

    def __init__(self, path: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
        p = Path(path)
        self.path = str(p)
        if not p.exists():
            raise DataError(p, "no such file or folder")
        if p.is_dir():
            files = sorted(f for f in p.rglob("*.parquet") if f.is_file())
            if not files:
                raise DataError(p, "no .parquet files in this folder (searched recursively)")
        else:
            files = [p]
        self.files = [str(f) for f in files]
        self.class_names = GALAXY10_DECALS
        self._ds = _load_parquet(p, self.files, cache_dir)

        columns = list(self._ds.column_names)
        found = ", ".join(columns) or "none"
        self.image_column = next((c for c in IMAGE_COLUMNS if c in columns), None)
        if self.image_column is None:
            raise DataError(p, f"no image column (expected one of {IMAGE_COLUMNS}; found {found})")
        self.label_column = next((c for c in LABEL_COLUMNS if c in columns), None)
        if self.label_column is None:
            raise DataError(p, f"no label column (expected one of {LABEL_COLUMNS}; found {found})")
        if len(self._ds) == 0:
            raise DataError(p, "no rows")

        table = self._ds.data
        label_col = table.column(self.label_column)
        if label_col.null_count:
            r = int(np.flatnonzero(label_col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(p, f"null label at row {r}", field=self.label_column)
        raw = label_col.to_numpy()
        if not np.issubdtype(raw.dtype, np.integer):
            raise DataError(p, f"type {label_col.type}, expected integers", field=self.label_column)
        labels = raw.astype(np.int64)
        bad = np.flatnonzero((labels < 0) | (labels >= len(self.class_names)))
        if bad.size:
            r = int(bad[0])
            raise DataError(
                p,
                f"label {labels[r]} at row {r} out of range 0..{len(self.class_names) - 1} "
                f"({bad.size} bad rows)",
                field=self.label_column,
            )
        self._labels = labels
        self._meta = _scalar_columns(table, exclude={self.image_column, self.label_column})

    def __len__(self) -> int:
        """Number of rows in all files."""
        return len(self._labels)

    def _load(self, i: int) -> Sample:
        cell = self._ds.data.column(self.image_column)[i].as_py()
        image = _decode(cell, self.path, self.image_column, i, self.files)
        meta: dict[str, Any] = {k: _py(v[i]) for k, v in self._meta.items()}
        return Sample(row_id=i, label=int(self._labels[i]), image=image, meta=meta)

    def labels(self) -> np.ndarray:
        """The label column as int64, in row order."""
        return self._labels.copy()

    def metadata(self) -> dict[str, np.ndarray]:
        """Scalar columns other than image and label (``object_id`` leaks the label: see module doc)."""
        return {k: v.copy() for k, v in self._meta.items()}


def _load_parquet(path: Path, files: list[str], cache_dir: str | os.PathLike | None):
    import datasets
    import pyarrow as pa
    from datasets.exceptions import DatasetGenerationError
    from datasets.utils import logging as ds_logging

    bars_were_on = not datasets.utils.are_progress_bars_disabled()
    verbosity = ds_logging.get_verbosity()
    offline = datasets.config.HF_HUB_OFFLINE
    datasets.disable_progress_bars()
    ds_logging.set_verbosity(ds_logging.CRITICAL)  # the error comes back as DataError
    datasets.config.HF_HUB_OFFLINE = True  # local files only, whatever the environment says
    try:
        return datasets.Dataset.from_parquet(
            files, cache_dir=None if cache_dir is None else str(cache_dir), keep_in_memory=False
        )
    except (OSError, ValueError, pa.ArrowException, DatasetGenerationError) as err:
        msg = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        cause = err.__cause__
        if cause is not None and str(cause).strip():
            msg = str(cause).strip().splitlines()[-1]
        raise DataError(path, f"not readable as parquet: {msg}") from None
    finally:
        datasets.config.HF_HUB_OFFLINE = offline
        ds_logging.set_verbosity(verbosity)
        if bars_were_on:
            datasets.enable_progress_bars()


def _scalar_columns(table, exclude: set[str]) -> dict[str, np.ndarray]:
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


def _decode(cell: Any, path: str, column: str, row: int, files: list[str]) -> np.ndarray:
    """Decode one image cell (HF Image struct, raw bytes, or a path) to HxWx3 uint8."""
    data: bytes | None = None
    file: str | None = None
    if isinstance(cell, dict):
        data, file = cell.get("bytes"), cell.get("path")
    elif isinstance(cell, (bytes, bytearray)):
        data = bytes(cell)
    elif isinstance(cell, str):
        file = cell
    if not data and file:
        candidates = [Path(file)] + [Path(f).parent / file for f in files]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(path, f"row {row}: image file {file!r} not found", field=column)
        data = found.read_bytes()
    if not data:
        raise DataError(path, f"row {row}: empty image cell", field=column)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return pil_to_rgb_array(im)
    except (OSError, ValueError, SyntaxError) as err:
        raise DataError(
            path, f"row {row}: cannot decode image bytes: {err}", field=column
        ) from None


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
