"""What a user must know about a data set before a run (``astroreason data info``).

:func:`describe` reads the labels and metadata columns whole, and pixels from a seeded sample of
rows only (sizes, value range, dtype), then asks the leakage audit
(:func:`~astroreason.data.quality.audit.audit_source` without pixel hashing, its classifier checks
on a seeded subsample) which columns, and whether the row order, could leak the label. The columns
listed are the audit's (:func:`~astroreason.data.quality.audit.audit_columns`): each column of a 2-D
dataset on its own line (``features[:,3]``), datasets inside HDF5 groups by path
(``meta/redshift``). :func:`print_info` renders the result with rich, every file-derived string
escaped (a class folder named ``[red]X`` prints as such); :meth:`DataInfo.to_json` gives it to
scripts.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from astroreason.data.base import SampleSource
from astroreason.data.quality.audit import (
    MAX_WIDTH,
    AuditReport,
    Finding,
    audit_columns,
    audit_source,
    beats_baseline,
    column_name,
    is_id_like,
    jsonable,
)
from astroreason.errors import DataError


@dataclass(frozen=True)
class ColumnInfo:
    """One metadata column and whether it could leak the label."""

    name: str
    """Column name; ``features[:,3]`` for a column of a 2-D dataset, ``meta/z`` inside an HDF5 group."""
    dtype: str
    """``int64``, ``float64``, ``str``, ..."""
    example: str
    """Its value in the first sampled row."""
    leak: str
    """``could leak: ...`` with the audit's numbers, ``id-like, keep out of prompts``, or ``no``."""
    severity: str
    """The audit's severity for the column (``high``, ``medium``, ``info``), or ``-`` if unchecked."""


@dataclass(frozen=True)
class DataInfo:
    """A summary of one data source (see :func:`describe`)."""

    path: str
    """The file or folder."""
    reader: str
    """The reader class, e.g. ``Galaxy10Source``."""
    kind: str
    """``image`` or ``spectrum``."""
    rows: int
    """Number of samples."""
    class_names: tuple[str, ...]
    """Class names, in label order."""
    class_counts: tuple[int, ...]
    """Samples per class."""
    bands: str
    """What the pixels are: RGB and, where the reader knows them, the source bands."""
    sample_rows: int
    """Rows read for sizes and values (seeded)."""
    sizes: tuple[str, ...]
    """Image sizes (``HxW``) or spectrum lengths seen in the sample, most common first."""
    wavelength_range: tuple[float, float] | None
    """Spectra: smallest and largest wavelength in the sample (Angstrom); else None."""
    value_dtype: str
    """dtype of the pixels (images) or flux (spectra)."""
    value_range: tuple[float, float]
    """Smallest and largest pixel (or good flux) value in the sample."""
    value_mean: float
    """Mean pixel (or good flux) value in the sample."""
    columns: tuple[ColumnInfo, ...]
    """The metadata columns."""
    row_order: str
    """Whether the row order could leak the label (``could leak: ...`` or ``no``)."""
    audit_rows: int
    """Rows used by the audit's classifier checks."""
    notes: tuple[str, ...]
    """Anything else worth knowing (class-name source, split, imbalance, unreadable rows)."""
    seconds: float
    """Wall time of :func:`describe`."""

    @property
    def leaks(self) -> tuple[str, ...]:
        """Names of the columns that could leak the label."""
        return tuple(c.name for c in self.columns if c.leak.startswith("could leak"))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON (NaN becomes None)."""
        return _finite(asdict(self))

    def to_json(self) -> str:
        """The summary as a JSON document."""
        return json.dumps(self.to_dict(), indent=1, default=jsonable)


def describe(
    source: SampleSource | str | os.PathLike,
    sample_rows: int = 64,
    seed: int = 0,
    audit_rows: int = 2000,
) -> DataInfo:
    """Summarise a source: rows, classes, sizes, values, bands, columns and what could leak.

    Args:
        source: A source, or a path :func:`~astroreason.data.open_source` opens.
        sample_rows: Rows read (drawn with ``seed``) for sizes and value ranges.
        seed: Seed of the sample and of the audit.
        audit_rows: The audit's classifier checks run on a seeded subsample of this many rows.
    """
    from astroreason.data import open_source

    t0 = time.perf_counter()
    src = open_source(source)
    n = len(src)
    counts = tuple(int(c) for c in src.class_counts())
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, max(sample_rows, 0)), replace=False)) if n else []
    stats = _Sample()
    for r in rows:
        try:
            stats.add(src[int(r)])
        except DataError as err:
            stats.errors.append(str(err))
    notes = [f"class names: {src.class_source}"] if getattr(src, "class_source", None) else []
    if n and max(counts) < 2:  # the audit's cross-validation needs two rows in some class
        notes.append("leakage checks skipped: no class has two samples")
        report = AuditReport(str(src.path), n, 0, tuple(src.class_names), ())
    else:
        report = audit_source(src, pixels=False, max_rows=audit_rows, seed=seed, progress=False)
    meta = src.metadata()
    first = int(rows[0]) if len(rows) else 0
    columns = tuple(_columns(src, meta, first, report))
    if getattr(src, "hf_split", None):
        offered = ", ".join(getattr(src, "split_names", []) or [src.hf_split])
        notes.append(f"Hugging Face split {src.hf_split!r} (offered: {offered})")
    if getattr(src, "task", None):
        notes.append(f"labels: spectral {src.task}")
    for f in report.findings:
        if f.code in ("imbalance", "empty_class", "sky_neighbours", "sky_coordinates", "skipped"):
            notes.append(f.sentence)
    if stats.errors:
        notes.append(
            f"{len(stats.errors)} of {len(rows)} sampled rows could not be read; first: "
            f"{stats.errors[0]}"
        )
    return DataInfo(
        path=str(src.path),
        reader=type(src).__name__,
        kind=src.kind,
        rows=n,
        class_names=tuple(src.class_names),
        class_counts=counts,
        bands=_bands(src),
        sample_rows=stats.count,
        sizes=tuple(s for s, _ in stats.sizes.most_common()),
        wavelength_range=stats.wavelength_range(),
        value_dtype=", ".join(sorted(stats.dtypes)) or "-",
        value_range=(stats.lo, stats.hi) if stats.count else (math.nan, math.nan),
        value_mean=stats.total / stats.values if stats.values else math.nan,
        columns=columns,
        row_order=_row_order(report),
        audit_rows=report.n_checked,
        notes=tuple(notes),
        seconds=time.perf_counter() - t0,
    )


class _Sample:
    """Running sizes, dtypes and value range of the sampled rows."""

    def __init__(self) -> None:
        self.count = 0
        self.sizes: Counter[str] = Counter()
        self.dtypes: set[str] = set()
        self.lo, self.hi, self.total, self.values = math.inf, -math.inf, 0.0, 0
        self.wl_lo, self.wl_hi = math.inf, -math.inf
        self.errors: list[str] = []

    def add(self, s) -> None:
        if s.image is not None:
            arr = np.asarray(s.image)
            self.sizes[f"{arr.shape[0]}x{arr.shape[1]}"] += 1
            values = arr
        else:
            sp = s.spectrum
            self.sizes[f"{sp.flux.size} pixels"] += 1
            values = np.asarray(sp.flux)[~np.asarray(sp.mask) & np.isfinite(sp.flux)]
            wl = np.asarray(sp.wavelength)
            if wl.size:
                self.wl_lo, self.wl_hi = min(self.wl_lo, wl.min()), max(self.wl_hi, wl.max())
            arr = sp.flux
        self.dtypes.add(str(arr.dtype))
        self.count += 1
        if values.size:
            self.lo = min(self.lo, float(values.min()))
            self.hi = max(self.hi, float(values.max()))
            self.total += float(values.sum(dtype=np.float64))
            self.values += values.size

    def wavelength_range(self) -> tuple[float, float] | None:
        return (float(self.wl_lo), float(self.wl_hi)) if self.wl_lo <= self.wl_hi else None


def _bands(src: SampleSource) -> str:
    if src.kind != "image":
        return "1-D spectrum (flux, ivar, mask on an observed vacuum wavelength grid)"
    known = getattr(src, "bands", None)
    if known:
        return (
            f"RGB from {', '.join(known)} (asinh stretch in sky-noise units, "
            f"{known[2]}, {known[1]}, {known[0]} -> R, G, B)"
        )
    variant = getattr(src, "variant", None)
    if variant == "decals" or getattr(src, "class_source", None) == "Galaxy10 DECaLS export":
        return "RGB from g, r, z (Galaxy10 DECaLS)"
    if variant == "sdss":
        return "RGB from g, r, i (Galaxy10 SDSS)"
    return "RGB (source bands unknown)"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _leak(f: Finding) -> str:
    d = f.details
    acc, maj = d.get("accuracy", math.nan), d.get("majority_baseline", math.nan)
    sev = f.severity.upper()
    if f.code == "id_column":
        if f.severity == "high":
            return f"could leak: predicts the label ({sev}, {_pct(acc)} vs {_pct(maj)} majority)"
        return "id-like, keep out of prompts"
    if f.severity in ("high", "medium"):
        if f.severity == "high" or acc - maj > d.get("margin", 0.0):
            return f"could leak: predicts the label ({sev}, {_pct(acc)} vs {_pct(maj)} majority)"
        return f"could leak: associated with the label ({sev}, Cramer's V {d['cramers_v']:.2f})"
    return "no"


def _columns(src: SampleSource, meta: dict, first: int, report: AuditReport) -> list[ColumnInfo]:
    """The 1-D metadata columns (whole), then the audit's other columns (read at row ``first``)."""
    n = len(src)
    extra = audit_columns(src, np.array([first], dtype=np.int64), meta) if n else {}
    tested = {f.details.get("column") for f in report.findings}
    out = []
    for name, v in meta.items():
        v = np.asarray(v)
        if v.ndim != 1 and name in extra:
            continue  # listed column by column below
        out.append(_column(name, v, first, report))
    for key, v in extra.items():
        if key in meta and np.asarray(meta[key]).ndim == 1:
            continue
        if v.ndim == 1:
            out.append(_column(key, v, 0, report, per_row=True))
            continue
        for j in range(v.shape[1]):
            name = column_name(key, j)
            if v.shape[1] <= MAX_WIDTH or name in tested:
                out.append(_column(name, v[:, j], 0, report, per_row=True))
        if v.shape[1] > MAX_WIDTH:
            out.append(_column(column_name(key, "*"), v[:, 0], 0, report, per_row=True))
    return out


def _column(
    name: str, values: np.ndarray, row: int, report: AuditReport, per_row: bool = False
) -> ColumnInfo:
    """One column; ``per_row``: ``values`` hold only some rows (read from the file for the audit)."""
    finding = next(
        (
            f
            for f in report.findings
            if f.code in ("id_column", "metadata_column") and f.details.get("column") == name
        ),
        None,
    )
    if values.dtype.kind == "O":
        kinds = {type(v).__name__ for v in values[:256] if v is not None}
        dtype = "str" if kinds <= {"str"} else "object"
    else:
        dtype = str(values.dtype)
    example = "-"
    if values.ndim >= 1 and values.shape[0]:
        v = values[min(row, values.shape[0] - 1)]
        example = f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v)
        example = example if len(example) <= 40 else example[:37] + "..."
    if values.ndim != 1 or (values.shape[0] != report.n and not per_row):
        return ColumnInfo(name, dtype, example, f"not checked ({values.ndim}-D)", "-")
    if finding is None:
        checked = report.n_checked > 0 and not report.by_code("skipped")
        leak = "id-like, keep out of prompts" if is_id_like(name, values) else "no (constant)"
        return ColumnInfo(
            name, dtype, example, leak if checked else "not checked (too few rows)", "-"
        )
    return ColumnInfo(name, dtype, example, _leak(finding), finding.severity)


def _row_order(report: AuditReport) -> str:
    found = report.by_code("row_order")
    if not found:
        return "not checked (too few rows)"
    f = found[0]
    if f.severity != "high":
        return "no"
    acc, maj = f.details["index_knn_accuracy"], f.details["majority_baseline"]
    n = report.n_checked
    how = "predicts" if beats_baseline(acc, maj, n) else "is patterned by"
    pattern = ""
    p_acc = f.details.get("pattern_accuracy", -1.0)
    if p_acc - maj > f.details.get("pattern_margin", math.inf) and p_acc >= acc:
        acc, how, pattern = p_acc, "predicts", f", {f.details['pattern']}"
    return (
        f"could leak: the row index {how} the label (HIGH, {_pct(acc)} vs {_pct(maj)} "
        f"majority{pattern}); "
        "splits shuffle, never put a row id in a prompt"
    )


_STYLE = {"high": "bold red", "medium": "yellow"}


def print_info(info: DataInfo, console=None) -> None:
    """Print the summary as rich tables: overview, classes, metadata columns, notes.

    Strings from the data (path, class and column names, examples, notes) are escaped, never markup.

    Args:
        info: The summary.
        console: A ``rich.console.Console`` (default: a new one on stdout).
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    over = Table(
        title=f"{escape(info.path)}  ({escape(info.reader)}, {info.rows} samples)",
        show_header=False,
    )
    over.add_column("what", style="bold")
    over.add_column("value", overflow="fold")
    sample = f"(sample of {info.sample_rows} rows)"
    lo, hi = info.value_range
    over.add_row("rows", str(info.rows))
    over.add_row("classes", f"{len(info.class_names)} (counts below)")
    over.add_row(
        "image size" if info.kind == "image" else "length", Text(", ".join(info.sizes) or "-")
    )
    if info.wavelength_range is not None:
        a, b = info.wavelength_range
        over.add_row("wavelength", f"{a:.1f} .. {b:.1f} A")
    label = "pixel values" if info.kind == "image" else "flux (good pixels)"
    over.add_row(
        label,
        Text(f"{lo:.6g} .. {hi:.6g}, mean {info.value_mean:.4g}, {info.value_dtype} {sample}"),
    )
    over.add_row("bands", Text(info.bands))
    row_style = "bold red" if info.row_order.startswith("could leak") else None
    over.add_row("row order", Text(info.row_order, style=row_style or ""))
    console.print(over)

    classes = Table(title="classes")
    classes.add_column("label", justify="right")
    classes.add_column("class")
    classes.add_column("count", justify="right")
    classes.add_column("share", justify="right")
    total = max(sum(info.class_counts), 1)
    for i, (name, c) in enumerate(zip(info.class_names, info.class_counts, strict=True)):
        classes.add_row(str(i), Text(name), str(c), f"{100 * c / total:.1f}%")
    console.print(classes)

    if info.columns:
        cols = Table(title=f"metadata columns (never in prompts; audit on {info.audit_rows} rows)")
        cols.add_column("column")
        cols.add_column("dtype")
        cols.add_column("example", overflow="fold")
        cols.add_column("could leak", overflow="fold")
        for c in info.columns:
            cols.add_row(
                Text(c.name),
                Text(c.dtype),
                Text(c.example),
                Text(c.leak, style=_STYLE.get(c.severity, "")),
            )
        console.print(cols)
    else:
        console.print("metadata columns: none")
    for note in info.notes:
        console.print(Text(f"note: {note}"))
    leaks = info.leaks
    if leaks or info.row_order.startswith("could leak"):
        what = ", ".join(leaks + (("row order",) if info.row_order.startswith("could") else ()))
        console.print(
            f"[bold red]Could leak the label: {escape(what)}.[/] Keep them out of prompts; "
            "`astroreason data audit` has the details."
        )
    console.print(f"[dim]{info.seconds:.1f} s[/]")


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
