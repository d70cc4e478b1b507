"""Hugging Face parquet exports of Galaxy10 DECaLS, read from local files with ``datasets``.

The Galaxy10 case of :mod:`~astroreason.data.readers.hf_dataset` (whose offline loading, metadata and image
decoding it shares); other parquet data (string labels, other class sets) goes to
:class:`~astroreason.data.readers.hf_dataset.HFDatasetSource`.

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

import os
from pathlib import Path

import numpy as np

from astroreason.data.classes import GALAXY10_DECALS
from astroreason.data.readers.hf_dataset import HFDatasetSource, hf_load
from astroreason.errors import DataError

IMAGE_COLUMNS = ("image", "rgb_image")
LABEL_COLUMNS = ("label", "gz10_label")


class ParquetGalaxySource(HFDatasetSource):
    """Galaxy10 DECaLS rows from one ``.parquet`` file or a folder of them (searched recursively).

    The Galaxy10 case of :class:`~astroreason.data.readers.hf_dataset.HFDatasetSource`: every parquet file
    under the path in one table (splits ignored: the project makes its own), the Galaxy10 DECaLS
    class names whatever the export calls them, integer labels 0..9 required.

    Args:
        path: A parquet file, or a folder holding parquet files (e.g. under ``data/``).
        cache_dir: Where ``datasets`` keeps its Arrow copy (default: its usual cache folder).

    Every scalar column other than the image and the label (``object_id``, ``ra``, ``dec``, ``redshift``,
    ...) goes into :meth:`metadata` and ``Sample.meta``; nulls become NaN (numbers) or None (strings).

    Raises:
        DataError: No parquet files, unreadable parquet, no image or label column, null or out-of-range
            labels; at read time, image bytes that cannot be decoded (naming the row).
    """

    def __init__(self, path: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
        import datasets

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
        self.hf_split, self.split_names, self.class_source = None, [], "Galaxy10 DECaLS export"
        cache = None if cache_dir is None else str(cache_dir)
        ds = hf_load(
            p,
            "parquet",
            lambda: datasets.Dataset.from_parquet(
                self.files, cache_dir=cache, keep_in_memory=False
            ),
        )

        columns = list(ds.column_names)
        found = ", ".join(columns) or "none"
        image_column = next((c for c in IMAGE_COLUMNS if c in columns), None)
        if image_column is None:
            raise DataError(p, f"no image column (expected one of {IMAGE_COLUMNS}; found {found})")
        label_column = next((c for c in LABEL_COLUMNS if c in columns), None)
        if label_column is None:
            raise DataError(p, f"no label column (expected one of {LABEL_COLUMNS}; found {found})")
        if len(ds) == 0:
            raise DataError(p, "no rows")

        label_col = ds.data.column(label_column)
        if label_col.null_count:
            r = int(np.flatnonzero(label_col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(p, f"null label at row {r}", field=label_column)
        raw = label_col.to_numpy()
        if not np.issubdtype(raw.dtype, np.integer):
            raise DataError(p, f"type {label_col.type}, expected integers", field=label_column)
        labels = raw.astype(np.int64)
        bad = np.flatnonzero((labels < 0) | (labels >= len(GALAXY10_DECALS)))
        if bad.size:
            r = int(bad[0])
            raise DataError(
                p,
                f"label {labels[r]} at row {r} out of range 0..{len(GALAXY10_DECALS) - 1} "
                f"({bad.size} bad rows)",
                field=label_column,
            )
        dirs = list(dict.fromkeys(str(Path(f).parent) for f in self.files))
        self._setup(ds, image_column, label_column, labels, GALAXY10_DECALS, dirs)


def is_galaxy10_export(path: str | os.PathLike) -> bool:
    """Whether a parquet file (or the first, by sorted path, under a folder) has a Galaxy10 schema.

    That is: an ``image``/``rgb_image`` and an integer ``label``/``gz10_label`` column, without a
    ``ClassLabel`` of other than 10 names. Reads the schema only.
    """
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    first = p if p.is_file() else next(iter(sorted(p.rglob("*.parquet"))), None)
    if first is None:
        return True  # nothing to look at: ParquetGalaxySource says what is missing
    try:
        schema = pq.read_schema(first)
    except (OSError, pa.ArrowException):
        return True  # unreadable: ParquetGalaxySource reports it
    names = set(schema.names)
    label = next((c for c in LABEL_COLUMNS if c in names), None)
    if not names & set(IMAGE_COLUMNS) or label is None:
        return False
    if not pa.types.is_integer(schema.field(label).type):
        return False
    try:
        info = json.loads((schema.metadata or {}).get(b"huggingface", b"{}"))
        feature = info.get("info", {}).get("features", {}).get(label, {})
    except (ValueError, AttributeError):
        feature = {}
    if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
        return len(feature.get("names", [])) == len(GALAXY10_DECALS)
    return True
