"""The leakage audit: look for anything other than pixels that predicts the label.

An overnight run once reached 95-99% on Galaxy10 because the prompt carried the row index of a
class-sorted file. This module looks for such shortcuts before any training, from labels, metadata
columns and pixel hashes alone (no model):

- ``row_order``: does the row index predict the label? The rate at which neighbouring rows share a
  label (all rows), against its distribution under random order (64 seeded permutations); the
  cross-validated accuracy of a k-nearest-neighbour classifier on the row index alone; and row-index
  patterns: the label predicted by the majority label of the row index modulo each period 2..32 and of
  2, 4, 8, 16 or 32 equal row-index bins, on held-out folds (HIGH when the best beats the majority
  baseline by ``max(margin, 7 standard errors)``: the stricter bound pays for the 36 patterns tried and
  for the lookup tables' extra variance). Catches sorted files, files in repeated class blocks,
  drifting class mixes and periodic orders (``label = row % 10``).
- ``id_column``: columns that look like identifiers (by name, or integers or strings unique per row).
  Each is turned into numbers (its values' rank; for strings also the number made of their digits) and
  tested like the row index (integer ids also modulo 2..32). A predictive id is HIGH, naming the column
  (the Hugging Face export whose ``object_id`` is the row number of the sorted file).
- ``metadata_column``: every other column on its own (NaN becomes a missing indicator plus a median
  fill; strings become category codes), with a small decision tree and a kNN, the better of the two
  under stratified, shuffled K-fold cross-validation. MEDIUM when it beats the majority baseline by the
  margin (never put it in a prompt), HIGH when near-deterministic (accuracy > 0.9 and > baseline + 0.3).
  Also MEDIUM when its values are distributed differently across classes (chi-square test of
  independence on its values, at most 20 levels, or 10 quantile bins; p < 1e-6 and Cramer's V >= 0.05):
  a weak correlate that never makes a class the likeliest (so no accuracy gain alone) still adds to
  what the pixels give a model.
  The columns (:func:`audit_columns`): the source's ``metadata()`` and, for an HDF5 file, every other
  numeric or string dataset of one row per sample anywhere in the file (groups walked: ``meta/redshift``),
  except the Galaxy10 ``images`` and ``ans``. Each column of a 2-D dataset is tested alone, named
  ``features[:,3]``; a dataset wider than ``MAX_WIDTH`` columns is screened by the chi-square test and
  its ``WIDE_TESTED`` most associated columns are tested fully, the rest summed up as ``name[:,*]``.
- ``duplicate_conflict`` / ``duplicates`` / ``sky_neighbours``: identical pixels with different labels
  (HIGH), identical pixels (MEDIUM), distinct rows within 1 arcsec on the sky (MEDIUM). Splits keep all of
  these on one side.
- ``sky_coordinates``: ``ra``/``dec`` that put more than half the rows into one sky group (placeholders
  such as 0, 0): MEDIUM; sky neighbours are then not searched and splits ignore sky positions.
- ``empty_class`` / ``imbalance`` / ``class_counts``: classes with no samples or a max/min count ratio
  above 10 (MEDIUM), else the counts (INFO).

"Beats the baseline" means accuracy > majority + margin, margin = max(3 standard errors of a
proportion at the majority rate, min(0.05, half the gap between the majority rate and 1)): sampling noise
alone crosses it with probability well under 1% for all the checks together (checked in the tests on
shuffled data over many seeds). Simplifications: columns are tested one at a time (not in
combination); datasets of more than two dimensions and compound HDF5 types are not tested.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from astroreason.data.base import SampleSource, cache_home
from astroreason.data.quality.splits import (
    degenerate_sky,
    sky_groups,
    sky_pairs,
    source_pixel_hashes,
)
from astroreason.jsonutil import jsonable

Severity = Literal["high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("high", "medium", "low", "info")

# Column names (lower case, separators removed) that mark an identifier.
ID_NAMES = frozenset(
    {
        "id",
        "objid",
        "objectid",
        "specobjid",
        "uid",
        "index",
        "idx",
        "row",
        "rowid",
        "rownum",
        "file",
        "filename",
        "filepath",
        "fname",
        "name",
        "path",
        "key",
    }
)
ID_SUFFIXES = ("id", "idx", "index", "file", "filename", "name", "path")
KNN_NEIGHBOURS = 7
N_PERMUTATIONS = 64
ADJACENCY_Z = 6.0
MIN_ROWS = 10
IMBALANCE_RATIO = 10.0
ASSOCIATION_P = 1e-6
ASSOCIATION_V = 0.05
# Row-index patterns: periods of the modulo lookups, numbers of equal row-index bins.
PERIODS = tuple(range(2, 33))
BINS = (2, 4, 8, 16, 32)
PATTERN_SE = 7.0
# 2-D datasets: up to MAX_WIDTH columns are each tested fully; wider ones are screened by chi-square
# and their WIDE_TESTED most associated columns tested fully.
MAX_WIDTH = 32
WIDE_TESTED = 8
# Galaxy10 HDF5 datasets that are the pixels and the labels, not metadata.
HDF5_SKIP = frozenset({"images", "ans"})
# HDF5 datasets larger than this are read in blocks of rows, keeping only the audited rows.
READ_BLOCK_BYTES = 64 * 2**20
# sky_neighbours lists pairs only when sky groups allow at most this many.
MAX_SKY_PAIRS = 2_000_000
# Bumped when the checks change, so cached audits are redone.
AUDIT_VERSION = 2


@dataclass(frozen=True)
class Finding:
    """One result of the audit."""

    severity: Severity
    """``high`` (a shortcut to the label: fix before training), ``medium`` (keep it out of prompts,
    or check it), ``low`` or ``info``."""
    code: str
    """Which check: ``row_order``, ``id_column``, ``metadata_column``, ``duplicate_conflict``,
    ``duplicates``, ``sky_neighbours``, ``sky_coordinates``, ``empty_class``, ``imbalance``,
    ``class_counts``, ``skipped``."""
    sentence: str
    """One plain sentence with the numbers."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """The numbers behind the sentence (JSON-serialisable)."""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON."""
        return {
            "severity": self.severity,
            "code": self.code,
            "sentence": self.sentence,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class AuditReport:
    """All findings of one audit, most severe first."""

    source_path: str
    """The audited file or folder."""
    n: int
    """Rows in the source."""
    n_checked: int
    """Rows used by the classifier checks (fewer than ``n`` with ``max_rows``)."""
    class_names: tuple[str, ...]
    """The source's class names."""
    findings: tuple[Finding, ...]
    """The findings, sorted by severity."""
    seconds: float = 0.0
    """Wall time of the audit."""

    @property
    def has_high(self) -> bool:
        """Whether any finding is high severity (``data audit --strict`` then exits 1)."""
        return any(f.severity == "high" for f in self.findings)

    @property
    def has_medium(self) -> bool:
        """Whether any finding is medium severity."""
        return any(f.severity == "medium" for f in self.findings)

    def by_code(self, code: str) -> list[Finding]:
        """The findings of one check."""
        return [f for f in self.findings if f.code == code]

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AuditReport:
        """Inverse of :meth:`to_json` (after ``json.loads``)."""
        return cls(
            source_path=str(doc["source_path"]),
            n=int(doc["n"]),
            n_checked=int(doc["n_checked"]),
            class_names=tuple(doc["class_names"]),
            findings=tuple(
                Finding(f["severity"], f["code"], f["sentence"], f.get("details", {}))
                for f in doc["findings"]
            ),
            seconds=float(doc.get("seconds", 0.0)),
        )

    def to_json(self) -> str:
        """The report as a JSON document."""
        doc = {
            "source_path": self.source_path,
            "n": self.n,
            "n_checked": self.n_checked,
            "class_names": list(self.class_names),
            "has_high": self.has_high,
            "seconds": round(self.seconds, 3),
            "findings": [f.to_dict() for f in self.findings],
        }
        return json.dumps(doc, indent=1, default=jsonable)


def audit_source(
    source: SampleSource,
    *,
    cv_folds: int = 5,
    seed: int = 0,
    max_rows: int | None = None,
    pixels: bool = True,
    progress: bool | None = None,
) -> AuditReport:
    """Look for shortcuts to the label in a source (see the module docstring for each check).

    Args:
        source: The data.
        cv_folds: Folds of the stratified, shuffled cross-validation of the classifier checks.
        seed: Seed of the folds, the permutations and the subsample.
        max_rows: Run the classifier checks on a seeded subsample of this many rows (the adjacency
            statistic, duplicates and class counts always use every row).
        pixels: Hash every image to find duplicates (reads each image once).
        progress: Progress bar while hashing; None: for sources of more than 2000 rows on a terminal.
    """
    t0 = time.perf_counter()
    labels = np.asarray(source.labels(), dtype=np.int64)
    n = labels.size
    k = max(len(source.class_names), int(labels.max()) + 1 if n else 0)
    names = tuple(source.class_names) + tuple(
        f"class {c}" for c in range(len(source.class_names), k)
    )
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    if max_rows is not None and n > max_rows:
        rows = np.sort(rng.choice(n, size=max_rows, replace=False))
    meta = {key: _numeric_if_possible(np.asarray(v)) for key, v in source.metadata().items()}

    findings: list[Finding] = []
    findings += _class_balance(labels, names)
    present = np.unique(labels)
    if n < MIN_ROWS or present.size < 2:
        findings.append(
            Finding(
                "info",
                "skipped",
                f"Shortcut checks skipped: {n} rows in {present.size} class(es) is too few to test.",
                {"n": n, "classes_present": int(present.size)},
            )
        )
    else:
        cv = _CV(labels[rows], cv_folds, seed)
        findings += _row_order(labels, rows, cv, rng)
        for key, values in audit_columns(source, rows, meta).items():
            if values.ndim == 1:
                full = meta.get(key)
                whole = full if full is not None and full.shape == (n,) else values
                findings += _column_findings(key, values, whole, cv)
            else:
                findings += _dataset_findings(key, values, cv)
    hashes = source_pixel_hashes(source, progress) if pixels and n else None
    findings += _duplicates(labels, hashes, meta, names)

    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: order[f.severity])
    return AuditReport(
        source_path=str(source.path),
        n=n,
        n_checked=int(rows.size),
        class_names=names,
        findings=tuple(findings),
        seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- columns


def column_name(dataset: str, j: int | str) -> str:
    """The name of column ``j`` of a 2-D dataset: ``features[:,3]`` (``[:,*]`` for all of them)."""
    return f"{dataset}[:,{j}]"


def audit_columns(
    source: SampleSource,
    rows: np.ndarray | None = None,
    meta: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Every per-row column the audit tests, at ``rows``: 1-D arrays, or 2-D (rows, width) ones.

    The 1-D and 2-D columns of ``source.metadata()`` (object columns of numbers as float64) and, for an
    HDF5 file, every other numeric or string dataset with ``len(source)`` rows and one or two
    dimensions, in groups too (named by path: ``meta/redshift``), except ``HDF5_SKIP`` at the top.
    Large datasets are read in blocks, keeping ``rows`` only.

    Args:
        source: The data.
        rows: Sorted row ids (default: all).
        meta: ``source.metadata()`` if already read.
    """
    n = len(source)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    if meta is None:
        meta = source.metadata()
    out: dict[str, np.ndarray] = {}
    for key, v in meta.items():
        v = _numeric_if_possible(np.asarray(v))
        if v.ndim in (1, 2) and v.shape[0] == n and (v.ndim == 1 or v.shape[1] > 0):
            out[key] = v[rows]
    for key, v in _hdf5_columns(source.path, n, rows, set(meta)).items():
        out.setdefault(key, v)
    return out


def _hdf5_columns(path: Any, n: int, rows: np.ndarray, skip: set[str]) -> dict[str, np.ndarray]:
    p = Path(str(path))
    if n == 0 or not p.is_file() or p.suffix.lower() not in (".h5", ".hdf5"):
        return {}
    import h5py

    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(p, "r") as f:
            found: list[str] = []
            f.visititems(
                lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None
            )
            for name in found:
                try:
                    ds = f[name]
                except (KeyError, OSError):
                    continue
                if name in HDF5_SKIP or name in skip or ds.ndim not in (1, 2) or ds.shape[0] != n:
                    continue
                if ds.dtype.kind not in "biufSOU" or (ds.ndim == 2 and ds.shape[1] == 0):
                    continue
                try:
                    arr = _read_rows(ds, rows, n)
                except (OSError, TypeError, ValueError):
                    continue  # unreadable: the reader reports broken files
                if arr.dtype.kind in "SOU":
                    arr = np.array(
                        [
                            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                            for v in arr.reshape(-1)
                        ],
                        dtype=object,
                    ).reshape(arr.shape)
                out[name] = arr
    except OSError:
        pass  # not readable as HDF5: the reader has said so already
    return out


def _read_rows(ds: Any, rows: np.ndarray, n: int) -> np.ndarray:
    """``ds[rows]`` of an h5py dataset; whole when small, else in blocks of rows."""
    if rows.size <= 64 and rows.size < n:
        return np.asarray(ds[np.unique(rows).tolist()])[np.searchsorted(np.unique(rows), rows)]
    row_bytes = max(1, ds.dtype.itemsize * (ds.shape[1] if ds.ndim == 2 else 1))
    if n * row_bytes <= READ_BLOCK_BYTES:
        arr = ds[()]
        return arr if rows.size == n else arr[rows]
    block = max(1, READ_BLOCK_BYTES // row_bytes)
    parts = []
    for start in range(0, n, block):
        sel = rows[(rows >= start) & (rows < start + block)]
        if sel.size:
            parts.append(ds[start : min(start + block, n)][sel - start])
    return np.concatenate(parts)


# --------------------------------------------------------------------------- statistics


def beats_baseline(accuracy: float, majority: float, n: int) -> bool:
    """Whether an accuracy is clearly above the majority baseline (see the module docstring)."""
    return accuracy - majority > margin(majority, n)


def margin(majority: float, n: int) -> float:
    """How far above the majority rate an accuracy must be to count as a signal."""
    se = math.sqrt(max(majority * (1 - majority), 1e-12) / max(n, 1))
    return max(3 * se, min(0.05, 0.5 * (1 - majority)))


class _CV:
    """Stratified, shuffled K-fold cross-validated accuracy on a fixed set of labels."""

    def __init__(self, y: np.ndarray, folds: int, seed: int):
        from sklearn.model_selection import StratifiedKFold

        self.y = y
        self.n = y.size
        counts = np.bincount(y)
        self.majority = float(counts.max() / self.n)
        n_splits = int(min(max(folds, 2), counts.max(), self.n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # classes smaller than the number of folds
            splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            self.folds = list(splitter.split(np.zeros(self.n), y))
        self.seed = seed

    def accuracy(self, x: np.ndarray, model: str) -> float:
        """Accuracy of ``model`` ("knn" or "tree") on features ``x`` (n, d)."""
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.tree import DecisionTreeClassifier

        correct = 0
        for train, test in self.folds:
            if model == "knn":
                clf = KNeighborsClassifier(n_neighbors=min(KNN_NEIGHBOURS, train.size))
            else:
                clf = DecisionTreeClassifier(
                    max_leaf_nodes=32,
                    min_samples_leaf=max(3, self.n // 500),
                    random_state=self.seed,
                )
            clf.fit(x[train], self.y[train])
            correct += int((clf.predict(x[test]) == self.y[test]).sum())
        return correct / self.n


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def pattern_margin(majority: float, n: int) -> float:
    """How far above the majority rate the best row-index pattern must score (module docstring)."""
    se = math.sqrt(max(majority * (1 - majority), 1e-12) / max(n, 1))
    return max(margin(majority, n), PATTERN_SE * se)


def lookup_accuracy(codes: np.ndarray, cv: _CV) -> float:
    """Held-out accuracy of predicting each row's label by the majority label of its code.

    ``codes`` are small non-negative integers (row index modulo a period, a bin number); the table of
    labels per code is counted on the training folds, codes unseen there get their majority label.
    """
    codes = np.asarray(codes, dtype=np.int64)
    k = int(cv.y.max()) + 1
    m = int(codes.max()) + 1
    correct = 0
    for train, test in cv.folds:
        table = np.bincount(codes[train] * k + cv.y[train], minlength=m * k).reshape(m, k)
        fallback = int(np.bincount(cv.y[train], minlength=k).argmax())
        pred = np.where(table.sum(axis=1) > 0, table.argmax(axis=1), fallback)
        correct += int((pred[codes[test]] == cv.y[test]).sum())
    return correct / cv.n


def best_pattern(index: np.ndarray, n: int, cv: _CV, bins: bool = True) -> tuple[float, str]:
    """Best :func:`lookup_accuracy` over ``index`` modulo ``PERIODS`` and (``bins``) ``BINS`` bins.

    Args:
        index: Non-negative integers per checked row (the row index, an integer id).
        n: The index's range (rows in the source) for the equal-width bins.
        cv: The folds.
        bins: Also try the equal-width bins (not for ids, whose range is arbitrary).

    Returns:
        The accuracy and the pattern, e.g. ``row index modulo 10``.
    """
    index = np.asarray(index, dtype=np.int64)
    best = (-1.0, "")
    views = [(index % p, f"modulo {p}") for p in PERIODS]
    if bins:
        views += [(index * b // max(n, 1), f"in {b} equal bins") for b in BINS]
    for codes, what in views:
        acc = lookup_accuracy(codes, cv)
        if acc > best[0]:
            best = (acc, what)
    return best


# --------------------------------------------------------------------------- checks


def _class_balance(labels: np.ndarray, names: Sequence[str]) -> list[Finding]:
    counts = np.bincount(labels, minlength=len(names))
    details = {"counts": {names[c]: int(counts[c]) for c in range(len(names))}}
    out = []
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        listed = ", ".join(f"{c} {names[c]!r}" for c in empty)
        out.append(
            Finding(
                "medium",
                "empty_class",
                f"{empty.size} of {len(names)} classes have no samples ({listed}): accuracy and "
                "per-class metrics will not cover them.",
                {**details, "empty": empty.tolist()},
            )
        )
    nonzero = np.flatnonzero(counts)
    if nonzero.size:
        big, small = nonzero[counts[nonzero].argmax()], nonzero[counts[nonzero].argmin()]
        ratio = counts[big] / counts[small]
        if ratio > IMBALANCE_RATIO:
            out.append(
                Finding(
                    "medium",
                    "imbalance",
                    f"Classes are imbalanced: {names[big]!r} has {counts[big]} samples and "
                    f"{names[small]!r} {counts[small]} (ratio {ratio:.1f} > {IMBALANCE_RATIO:g}); "
                    "report per-class and balanced accuracy next to plain accuracy.",
                    {**details, "ratio": float(ratio)},
                )
            )
        elif not empty.size:
            listed = ", ".join(f"{c}: {counts[c]}" for c in range(len(names)))
            out.append(
                Finding(
                    "info",
                    "class_counts",
                    f"Class counts ({listed}); largest/smallest ratio {ratio:.1f}.",
                    {**details, "ratio": float(ratio)},
                )
            )
    return out


def _adjacency(labels: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """Rate of neighbouring rows with equal labels, its mean and sd under random order."""
    same = float(np.mean(labels[1:] == labels[:-1]))
    n = labels.size
    counts = np.bincount(labels).astype(np.float64)
    expected = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    perms = np.array(
        [np.mean(p[1:] == p[:-1]) for p in (rng.permutation(labels) for _ in range(N_PERMUTATIONS))]
    )
    sd = max(float(perms.std(ddof=1)), 1.0 / n)
    return same, expected, sd


def _row_order(
    labels: np.ndarray, rows: np.ndarray, cv: _CV, rng: np.random.Generator
) -> list[Finding]:
    same, expected, sd = _adjacency(labels, rng)
    z = (same - expected) / sd
    clumped = z > ADJACENCY_Z and same - expected > min(0.05, 0.5 * (1 - expected))
    periodic = z < -ADJACENCY_Z and expected - same > min(0.05, 0.5 * expected)
    acc = cv.accuracy(rows.astype(np.float64)[:, None], "knn")
    predictive = beats_baseline(acc, cv.majority, cv.n)
    p_acc, p_what = best_pattern(rows, labels.size, cv)
    patterned = p_acc - cv.majority > pattern_margin(cv.majority, cv.n)
    details = {
        "index_knn_accuracy": acc,
        "majority_baseline": cv.majority,
        "margin": margin(cv.majority, cv.n),
        "adjacent_same_label": same,
        "adjacent_same_label_random": expected,
        "adjacent_z": z,
        "pattern": f"row index {p_what}",
        "pattern_accuracy": p_acc,
        "pattern_margin": pattern_margin(cv.majority, cv.n),
        "rows_checked": int(rows.size),
    }
    numbers = (
        f"a nearest-neighbour classifier on the row index alone scores {_pct(acc)} "
        f"(majority baseline {_pct(cv.majority)}), the majority label of the row index {p_what} "
        f"{_pct(p_acc)} on held-out rows, and {_pct(same)} of neighbouring rows share a "
        f"label ({_pct(expected)} expected in random order)"
    )
    if predictive or clumped or periodic or patterned:
        repeating = (periodic or (patterned and p_what.startswith("modulo"))) and not (
            predictive or clumped
        )
        kind = "in a repeating pattern" if repeating else "by class"
        return [
            Finding(
                "high",
                "row_order",
                f"Rows are ordered {kind}, so the row index predicts the label: {numbers}; never "
                "put a row id in a prompt and never train or take a prefix in file order "
                "(splits shuffle).",
                details,
            )
        ]
    return [
        Finding("info", "row_order", f"Row order does not predict the label: {numbers}.", details)
    ]


def is_id_like(name: str, values: np.ndarray) -> bool:
    """Whether a column looks like an identifier: by name, or integers/strings unique per row."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    tokens = [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]
    if key in ID_NAMES or (tokens and tokens[-1] in ID_SUFFIXES) or key.endswith("objid"):
        return True
    if values.dtype.kind in "iuOSU" and values.size > 1:
        vals = values.astype(str) if values.dtype.kind in "OSU" else values
        return np.unique(vals).size == values.size
    return False


def id_features(values: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Numeric views of an id column: value rank; for strings also the rank of their digits."""
    from scipy.stats import rankdata

    if values.dtype.kind in "iufb":
        x = values.astype(np.float64)
        ok = np.isfinite(x)
        r = np.full(x.size, -1.0)
        r[ok] = rankdata(x[ok])
        return [("value", r)]
    strings = values.astype(str)
    out = [("string order", rankdata(strings).astype(np.float64))]
    digits = [re.sub(r"\D", "", s)[-15:] for s in strings]
    if any(digits):
        num = np.array([float(d) if d else np.nan for d in digits])
        ok = np.isfinite(num)
        r = np.full(num.size, -1.0)
        r[ok] = rankdata(num[ok])
        out.append(("digits", r))
    return out


def _id_column(name: str, values: np.ndarray, cv: _CV) -> Finding:
    best = (-1.0, "", "")
    for view, x in id_features(values):
        for model in ("knn", "tree"):
            acc = cv.accuracy(x[:, None], model)
            if acc > best[0]:
                best = (acc, view, model)
    acc, view, model = best
    hit = beats_baseline(acc, cv.majority, cv.n)
    if values.dtype.kind in "iu" and values.size and values.min() >= 0:
        p_acc, p_what = best_pattern(values, 0, cv, bins=False)
        if not hit and p_acc - cv.majority > pattern_margin(cv.majority, cv.n):
            acc, view, model, hit = p_acc, f"value {p_what}", "lookup", True
    details = {
        "column": name,
        "accuracy": acc,
        "majority_baseline": cv.majority,
        "margin": margin(cv.majority, cv.n),
        "feature": view,
        "model": model,
    }
    if hit:
        return Finding(
            "high",
            "id_column",
            f"Identifier column {name!r} predicts the label: {_pct(acc)} cross-validated accuracy "
            f"from its {view} alone (majority baseline {_pct(cv.majority)}); it encodes the "
            "position in a class-sorted file or the class itself: never let it reach a prompt.",
            details,
        )
    return Finding(
        "info",
        "id_column",
        f"Identifier column {name!r} does not predict the label ({_pct(acc)} vs majority "
        f"{_pct(cv.majority)}); still keep it out of prompts.",
        details,
    )


def _column_findings(name: str, values: np.ndarray, whole: np.ndarray, cv: _CV) -> list[Finding]:
    """The id or metadata finding of one column (``values`` at the checked rows, ``whole`` for ids)."""
    if is_id_like(name, whole):
        return [_id_column(name, values, cv)]
    f = _metadata_column(name, values, cv)
    return [] if f is None else [f]


def _dataset_findings(key: str, values: np.ndarray, cv: _CV) -> list[Finding]:
    """Each column of a 2-D dataset on its own; wide ones screened first (module docstring)."""
    width = values.shape[1]
    if width <= MAX_WIDTH:
        return [
            f
            for j in range(width)
            for f in _column_findings(column_name(key, j), values[:, j], values[:, j], cv)
        ]
    screen = [association(_categories(values[:, j]), cv.y) for j in range(width)]
    order = sorted(range(width), key=lambda j: (-screen[j][0], j))
    tested, rest = order[:WIDE_TESTED], order[WIDE_TESTED:]
    out = [
        f
        for j in sorted(tested)
        for f in _column_findings(column_name(key, j), values[:, j], values[:, j], cv)
    ]
    linked = [j for j in rest if screen[j][1] < ASSOCIATION_P and screen[j][0] >= ASSOCIATION_V]
    v_max = max((screen[j][0] for j in rest), default=0.0)
    details = {
        "column": column_name(key, "*"),
        "width": width,
        "tested": sorted(tested),
        "associated": len(linked),
        "cramers_v": v_max,
        "majority_baseline": cv.majority,
    }
    tried = f"its {WIDE_TESTED} most associated columns are tested above"
    if linked:
        out.append(
            Finding(
                "medium",
                "metadata_column",
                f"Dataset {key!r} ({width} columns): {len(linked)} more columns are associated "
                f"with the label (chi-square screen, largest Cramer's V {v_max:.2f}); {tried}; "
                "never put any of it in a prompt.",
                details,
            )
        )
    else:
        out.append(
            Finding(
                "info",
                "metadata_column",
                f"Dataset {key!r} ({width} columns): the other {len(rest)} columns show no "
                f"association with the label (chi-square screen, largest Cramer's V {v_max:.2f}); "
                f"{tried}.",
                details,
            )
        )
    return out


def _metadata_column(name: str, values: np.ndarray, cv: _CV) -> Finding | None:
    if values.dtype.kind in "iufb":
        x = values.astype(np.float64)
        missing = ~np.isfinite(x)
        if missing.all():
            return None
        filled = np.where(missing, np.median(x[~missing]), x)
        if np.ptp(filled) == 0 and not missing.any():
            return None  # constant
        feats = np.stack([filled, missing.astype(np.float64)], axis=1)
    else:
        _, codes = np.unique(values.astype(str), return_inverse=True)
        if codes.max() == 0:
            return None
        feats = codes.astype(np.float64)[:, None]
        missing = np.zeros(values.size, dtype=bool)
    accs = {model: cv.accuracy(feats, model) for model in ("tree", "knn")}
    model = max(accs, key=accs.__getitem__)
    acc = accs[model]
    v, p = association(_categories(values), cv.y)
    details = {
        "column": name,
        "accuracy": acc,
        "majority_baseline": cv.majority,
        "margin": margin(cv.majority, cv.n),
        "model": model,
        "missing_fraction": float(missing.mean()),
        "cramers_v": v,
        "chi2_p": p,
    }
    numbers = f"{_pct(acc)} cross-validated accuracy from it alone vs {_pct(cv.majority)} majority baseline"
    assoc = f"Cramer's V {v:.2f}, chi-square p = {p:.1g}"
    if acc > 0.9 and acc > cv.majority + 0.3:
        return Finding(
            "high",
            "metadata_column",
            f"Column {name!r} nearly determines the label: {numbers}; it is a label in disguise: "
            "never put it in a prompt or a model input.",
            details,
        )
    if beats_baseline(acc, cv.majority, cv.n):
        return Finding(
            "medium",
            "metadata_column",
            f"Column {name!r} predicts the label: {numbers} ({assoc}); never put it in a prompt.",
            details,
        )
    if p < ASSOCIATION_P and v >= ASSOCIATION_V:
        return Finding(
            "medium",
            "metadata_column",
            f"Column {name!r} is associated with the label ({assoc}), though alone it scores only "
            f"{_pct(acc)} vs {_pct(cv.majority)} majority baseline; next to the pixels it still "
            "helps a model cheat: never put it in a prompt.",
            details,
        )
    return Finding(
        "info",
        "metadata_column",
        f"Column {name!r} does not predict the label on its own ({numbers}; {assoc}); keep it "
        "out of prompts anyway.",
        details,
    )


def _categories(values: np.ndarray, max_levels: int = 20, n_bins: int = 10) -> np.ndarray:
    """Category codes of a column, for the chi-square test.

    Numbers: their values when at most ``max_levels`` are distinct, else ``n_bins`` quantile bins;
    strings: the ``max_levels`` most frequent values plus "other"; NaN: a category of its own.
    """
    if values.dtype.kind in "iufb":
        x = values.astype(np.float64)
        ok = np.isfinite(x)
        codes = np.full(x.size, -1, dtype=np.int64)
        uniq = np.unique(x[ok])
        if uniq.size <= max_levels:
            codes[ok] = np.searchsorted(uniq, x[ok])
        else:
            edges = np.unique(np.quantile(x[ok], np.linspace(0, 1, n_bins + 1)[1:-1]))
            codes[ok] = np.searchsorted(edges, x[ok], side="right")
        return codes
    uniq, inv, counts = np.unique(values.astype(str), return_inverse=True, return_counts=True)
    keep = np.argsort(-counts, kind="stable")[:max_levels]
    remap = np.full(uniq.size, max_levels, dtype=np.int64)
    remap[keep] = np.arange(keep.size)
    return remap[inv]


def association(codes: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Cramer's V and the chi-square p-value of independence between category codes and labels."""
    from scipy.stats import chi2_contingency

    _, ci = np.unique(codes, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    table = np.zeros((ci.max() + 1, yi.max() + 1), dtype=np.int64)
    np.add.at(table, (ci, yi), 1)
    if min(table.shape) < 2:
        return 0.0, 1.0
    chi2, p, _, _ = chi2_contingency(table, correction=False)
    v = math.sqrt(chi2 / (table.sum() * (min(table.shape) - 1)))
    return float(v), float(p)


def _duplicates(
    labels: np.ndarray,
    hashes: Sequence[str] | None,
    meta: Mapping[str, np.ndarray],
    names: Sequence[str],
) -> list[Finding]:
    out = []
    n = labels.size
    if hashes is not None:
        _, inv, counts = np.unique(
            np.asarray(hashes, dtype=object).astype(str), return_inverse=True, return_counts=True
        )
        multi = np.flatnonzero(counts > 1)
        if multi.size:
            # distinct labels per hash group
            pairs = np.unique(np.stack([inv, labels], axis=1), axis=0)
            n_labels = np.bincount(pairs[:, 0], minlength=counts.size)
            conflict = np.flatnonzero(n_labels > 1)
            rows_in_dups = int(counts[multi].sum())
            if conflict.size:
                g = conflict[0]
                ex = np.flatnonzero(inv == g)[:4]
                example = ", ".join(f"row {r} = {names[labels[r]]!r}" for r in ex)
                out.append(
                    Finding(
                        "high",
                        "duplicate_conflict",
                        f"{conflict.size} groups of identical images carry different labels "
                        f"({int(counts[conflict].sum())} rows; e.g. {example}): the labels are "
                        "noisy and no model can get them all right.",
                        {
                            "groups": int(conflict.size),
                            "rows": int(counts[conflict].sum()),
                            "example_rows": ex.tolist(),
                        },
                    )
                )
            out.append(
                Finding(
                    "medium",
                    "duplicates",
                    f"{multi.size} images appear more than once ({rows_in_dups} rows, "
                    f"{rows_in_dups - multi.size} extra copies); splits keep each group on one side, "
                    "but deduplicate before comparing with published numbers.",
                    {"groups": int(multi.size), "rows": rows_in_dups},
                )
            )
        else:
            out.append(
                Finding("info", "duplicates", f"No identical images among {n} rows.", {"rows": 0})
            )
    groups = sky_groups(meta, 1.0)
    problem = degenerate_sky(groups, 1.0) if groups is not None else None
    near = np.zeros((0, 2), dtype=np.int64)
    if problem:
        out.append(
            Finding(
                "medium",
                "sky_coordinates",
                f"{problem}; sky neighbours cannot be told apart, and splits ignore sky positions.",
                {"rows": n, "largest_sky_group": int(np.bincount(groups).max())},
            )
        )
    elif groups is not None:
        sizes = np.bincount(groups)
        if int((sizes * (sizes - 1) // 2).sum()) <= MAX_SKY_PAIRS:
            near = sky_pairs(meta, 1.0)
        else:
            near = np.zeros((0, 2), dtype=np.int64)
            big = sizes[sizes > 1]
            out.append(
                Finding(
                    "medium",
                    "sky_neighbours",
                    f"{int(big.sum())} rows lie in {big.size} groups of rows within 1 arcsec on "
                    f"the sky (largest {int(big.max())} rows); splits keep each group on one side.",
                    {"groups": int(big.size), "rows": int(big.sum())},
                )
            )
    if near.size:
        if hashes is not None:
            h = np.asarray(hashes, dtype=object).astype(str)
            near = near[h[near[:, 0]] != h[near[:, 1]]]
        if near.size:
            differ = int((labels[near[:, 0]] != labels[near[:, 1]]).sum())
            out.append(
                Finding(
                    "medium",
                    "sky_neighbours",
                    f"{len(near)} pairs of {'distinct ' if hashes is not None else ''}rows lie "
                    f"within 1 arcsec on the sky (the same object twice?), {differ} of them with "
                    "different labels; splits keep them on one side.",
                    {"pairs": int(len(near)), "label_conflicts": differ},
                )
            )
    return out


# --------------------------------------------------------------------------- display

_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def audit_path(source: SampleSource) -> Path:
    """Where an audit is cached beside the data: ``<file>.audit.json`` (folders: beside the folder)."""
    p = Path(source.path)
    return p.parent / f"{p.name}.audit.json"


def cached_audit(
    source: SampleSource, *, max_rows: int | None = 5000, progress: bool | None = None
) -> AuditReport:
    """:func:`audit_source` of ``source``, cached beside the data (else under ``$ASTROREASON_HOME``).

    The cache is tied to the data's fingerprint, its labels (a spectra file read for another task has
    other labels), ``max_rows`` and ``AUDIT_VERSION``; any change reruns the audit. Training and
    evaluation read it, so the pixels of a large file are hashed once.
    """
    labels = np.ascontiguousarray(np.asarray(source.labels(), dtype=np.int64))
    key = {
        "fingerprint": source.fingerprint(),
        "labels": hashlib.blake2b(labels.tobytes(), digest_size=8).hexdigest(),
        "class_names": list(source.class_names),
        "max_rows": max_rows,
        "audit": AUDIT_VERSION,
    }
    places = [audit_path(source), cache_home() / "audits" / f"{key['fingerprint']}.json"]
    for cand in places:
        try:
            doc = json.loads(cand.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("key") == key:
            try:
                return AuditReport.from_dict(doc["report"])
            except (KeyError, TypeError, ValueError):
                continue
    report = audit_source(source, max_rows=max_rows, progress=progress)
    text = json.dumps({"key": key, "report": json.loads(report.to_json())}, default=jsonable)
    for cand in places:
        try:
            cand.parent.mkdir(parents=True, exist_ok=True)
            tmp = cand.with_name(f"{cand.name}.{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, cand)
            break
        except OSError:
            continue
    return report


def print_report(report: AuditReport, console=None) -> None:
    """Print the findings as a table (severity coloured) and a last line saying whether it is safe.

    Args:
        report: The audit.
        console: A ``rich.console.Console`` (default: a new one on stdout).
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    sub = "" if report.n_checked == report.n else f", classifier checks on {report.n_checked}"
    table = Table(
        title=f"Leakage audit of {escape(report.source_path)} ({report.n} rows{sub}, "
        f"{report.seconds:.1f} s)",
        show_lines=False,
    )
    table.add_column("severity")
    table.add_column("check")
    table.add_column("finding", overflow="fold")
    for f in report.findings:  # sentences carry file-derived names: never read them as markup
        table.add_row(
            Text(f.severity.upper(), style=_STYLE[f.severity]), Text(f.code), Text(f.sentence)
        )
    console.print(table)
    highs = sum(f.severity == "high" for f in report.findings)
    if highs:
        console.print(
            f"[bold red]NOT SAFE: {highs} high-severity finding{'s' if highs > 1 else ''}.[/] "
            "A model can reach the label without looking at the pixels; fix the data or make sure "
            "none of it reaches a prompt or a training order before trusting any accuracy."
        )
    elif report.has_medium:
        console.print(
            "[yellow]No high-severity findings.[/] Review the medium ones: keep those columns out "
            "of prompts and use the shuffled, grouped splits."
        )
    else:
        console.print(
            "[green]Safe: no shortcut to the label found.[/] Keep prompts to pixels only and use "
            "the shuffled splits."
        )


def _numeric_if_possible(values: np.ndarray) -> np.ndarray:
    """Object columns holding numbers (and None) as float64; anything else unchanged."""
    if values.dtype.kind != "O":
        return values
    try:
        return np.array([np.nan if v is None else float(v) for v in values.reshape(-1)]).reshape(
            values.shape
        )
    except (TypeError, ValueError):
        return values
