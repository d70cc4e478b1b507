"""Persisted, seeded, stratified train/val/test splits that keep duplicates and sky neighbours together.

Why this module exists: the real Galaxy10 files are sorted by class, so any split that follows file order
(or any prompt that carries a row id) lets a model learn row -> class. Here a split is made like this:

1. Rows are grouped (connected components of a graph, i.e. union-find): identical pixels
   (:meth:`~astroreason.data.base.SampleSource.pixel_hashes`) and, when ``metadata()`` has ``ra`` and
   ``dec`` in degrees, sky positions closer than ``sky_radius_arcsec`` (a ``cKDTree`` on 3-D unit
   vectors) join one group. A group always lands on one side of the split.
2. Each group takes its majority label (ties: the smallest label). Per class, the groups are shuffled
   with the seed and cut by cumulative sample count into test, val and train, so every class keeps the
   requested fractions (up to group sizes and rounding). File order never decides anything.
3. A class with at least 3 samples gets at least one sample in each split whose fraction is above 0;
   a repair pass moves the smallest group that can be spared when the cut left a split without it
   (impossible only when the class sits in fewer groups than there are splits).

Row ids are stored sorted, for stable files and easy diffs; take a prefix (``--limit``) only of
``rows(name, seed=...)``, which is shuffled, or a class-sorted file hands you one class.

A split is saved as JSON beside the data (``<file>.split-seed<seed>.json``; for a folder, beside the
folder) or, where that directory is not writable, in ``$ASTROREASON_HOME/splits/``. Loading checks the
data's fingerprint and the fractions, and refuses a split made for other data or other settings.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from astroreason.data.base import SampleSource, cache_home
from astroreason.errors import AstroReasonWarning, ConfigError, DataError

SplitName = Literal["train", "val", "test", "all"]
SPLIT_NAMES = ("train", "val", "test")
FORMAT = "astroreason-split/1"
# Sources with more rows than this show a progress bar while every image is hashed.
PROGRESS_MIN_ROWS = 2000
# Sky positions are ignored when one sky group holds more than this fraction of the rows (and at
# least DEGENERATE_SKY_MIN_ROWS rows): the coordinates are placeholders, not positions.
DEGENERATE_SKY_FRACTION = 0.5
DEGENERATE_SKY_MIN_ROWS = 10


@dataclass(frozen=True)
class SplitConfig:
    """How a split is made; stored with it and checked when it is loaded."""

    seed: int = 0
    """Seed of the shuffle; part of the split file's name."""
    val: float = 0.1
    """Fraction of each class for validation (0 allowed)."""
    test: float = 0.2
    """Fraction of each class for test (0 allowed); ``val + test`` must stay below 1."""
    sky_radius_arcsec: float = 1.0
    """Rows whose ``ra``/``dec`` lie closer than this are kept on one side (0 turns it off)."""

    def __post_init__(self) -> None:
        for name in ("val", "test"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v < 1):
                raise ConfigError(f"{name}: must be a fraction in [0, 1), got {v!r}")
        if self.val + self.test >= 1:
            raise ConfigError(
                f"val + test: must leave rows for training, got {self.val} + {self.test}"
            )
        if not (math.isfinite(self.sky_radius_arcsec) and self.sky_radius_arcsec >= 0):
            raise ConfigError(
                f"sky_radius_arcsec: must be >= 0 arcsec, got {self.sky_radius_arcsec!r}"
            )


@dataclass(frozen=True, eq=False)
class Split:
    """A train/val/test partition of a source's rows, with what it was made from."""

    train: np.ndarray
    """Sorted row ids (int64, read-only) of the training split."""
    val: np.ndarray
    """Sorted row ids of the validation split."""
    test: np.ndarray
    """Sorted row ids of the test split."""
    fingerprint: str
    """``source.fingerprint()`` when the split was made; a different value means the data changed."""
    source_path: str
    """Path of the data file or folder (informative; the fingerprint is what is checked)."""
    n: int
    """Number of rows in the source; the three splits partition ``range(n)``."""
    config: SplitConfig
    """The settings the split was made with."""
    class_names: tuple[str, ...]
    """The source's class names, for :meth:`summary`."""
    class_counts: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Samples per class in each of ``train``, ``val`` and ``test``."""
    n_groups_merged: int = 0
    """Groups of two or more rows (duplicates, sky neighbours) that were kept on one side."""
    notes: tuple[str, ...] = ()
    """Warnings about how the split was made (e.g. degenerate sky coordinates ignored)."""

    def __post_init__(self) -> None:
        for name in SPLIT_NAMES:
            arr = np.array(getattr(self, name), dtype=np.int64).reshape(-1)
            arr.sort()
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "notes", tuple(self.notes))
        parts = np.concatenate([self.train, self.val, self.test])
        if parts.size != self.n or (
            self.n and (parts.min() < 0 or parts.max() >= self.n or np.unique(parts).size != self.n)
        ):
            raise ValueError(
                f"split rows must partition range({self.n}): got {self.train.size} train, "
                f"{self.val.size} val, {self.test.size} test rows"
            )

    def rows(self, name: SplitName, *, seed: int | None = None) -> np.ndarray:
        """Row ids of ``train``, ``val``, ``test`` or ``all``.

        Args:
            name: Which split.
            seed: None for sorted ids; an int for a seeded permutation of them (use it whenever you
                take a prefix or iterate in order: sorted ids of a class-sorted file come class by class).

        Raises:
            ConfigError: Unknown split name.
        """
        if name == "all":
            rows = np.arange(self.n, dtype=np.int64)
        elif name in SPLIT_NAMES:
            rows = getattr(self, name)
        else:
            raise ConfigError(f"split: unknown {name!r}; choose train, val, test or all")
        if seed is None:
            return rows
        return np.random.default_rng(seed).permutation(rows)

    def summary(self) -> str:
        """A few lines for people: counts per split and per class."""
        c = self.config
        lines = [
            f"split seed {c.seed} of {self.source_path} ({self.n} samples, fingerprint "
            f"{self.fingerprint}): train {self.train.size}, val {self.val.size}, "
            f"test {self.test.size} (asked val {c.val:g}, test {c.test:g})"
        ]
        if self.class_counts:
            width = max([len(s) for s in self.class_names] + [5]) + 4
            lines.append(f"{'class':<{width}} {'train':>7} {'val':>7} {'test':>7}")
            for k, name in enumerate(self.class_names):
                tr, va, te = (self.class_counts[s][k] for s in SPLIT_NAMES)
                lines.append(f"{f'{k} {name}':<{width}} {tr:>7} {va:>7} {te:>7}")
        if self.n_groups_merged:
            lines.append(
                f"{self.n_groups_merged} groups of duplicate images or sky neighbours "
                f"(< {c.sky_radius_arcsec:g} arcsec) kept on one side"
            )
        lines += [f"warning: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> str:
        """The split as a JSON document (read back by :meth:`from_json`)."""
        doc = {
            "format": FORMAT,
            "source_path": self.source_path,
            "fingerprint": self.fingerprint,
            "n": self.n,
            "config": asdict(self.config),
            "class_names": list(self.class_names),
            "class_counts": {k: list(v) for k, v in self.class_counts.items()},
            "n_groups_merged": self.n_groups_merged,
            "notes": list(self.notes),
        }
        doc.update({name: getattr(self, name).tolist() for name in SPLIT_NAMES})
        return json.dumps(doc, indent=1)

    @classmethod
    def from_json(cls, text: str, where: str | os.PathLike = "<split>") -> Split:
        """Parse :meth:`to_json` output.

        Raises:
            DataError: Not a split document, or one whose rows do not partition ``range(n)``
                (``where`` names the file in the message).
        """
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT!r}")
            return cls(
                train=np.asarray(doc["train"], dtype=np.int64),
                val=np.asarray(doc["val"], dtype=np.int64),
                test=np.asarray(doc["test"], dtype=np.int64),
                fingerprint=str(doc["fingerprint"]),
                source_path=str(doc["source_path"]),
                n=int(doc["n"]),
                config=SplitConfig(**doc["config"]),
                class_names=tuple(doc["class_names"]),
                class_counts={k: tuple(int(x) for x in v) for k, v in doc["class_counts"].items()},
                n_groups_merged=int(doc.get("n_groups_merged", 0)),
                notes=tuple(str(x) for x in doc.get("notes", [])),
            )
        except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as err:
            raise DataError(
                where,
                f"not a valid split file ({err}); delete it or rerun `astroreason data split "
                "FILE --force`",
            ) from None


# --------------------------------------------------------------------------- making a split


def make_split(source: SampleSource, cfg: SplitConfig | None = None) -> Split:
    """Split a source's rows: seeded, stratified by label, duplicates and sky neighbours together.

    Reads every image once (pixel hashes); see the module docstring for the algorithm, and for
    degenerate sky coordinates (ignored with a ``UserWarning`` and a note in the split).
    """
    return _make_split(source, cfg or SplitConfig(), source.fingerprint())


def _make_split(source: SampleSource, cfg: SplitConfig, fingerprint: str) -> Split:
    labels = np.asarray(source.labels(), dtype=np.int64)
    n = labels.size
    k = max(len(source.class_names), int(labels.max()) + 1 if n else 0)
    groups, note = _row_groups(source, cfg.sky_radius_arcsec)
    n_groups = int(groups.max()) + 1 if n else 0
    sizes = np.bincount(groups, minlength=n_groups)
    # per-group label counts (groups x classes) and majority label
    gl = np.zeros((n_groups, k), dtype=np.int64)
    np.add.at(gl, (groups, labels), 1)
    majority = gl.argmax(axis=1)

    fracs = {"test": cfg.test, "val": cfg.val}
    assign = np.full(n_groups, 2, dtype=np.int64)  # 0 test, 1 val, 2 train
    rng = np.random.default_rng(cfg.seed)
    for c in range(k):
        members = rng.permutation(np.flatnonzero(majority == c))
        if members.size == 0:
            continue
        n_c = int(sizes[members].sum())
        t_test, t_val = _targets(n_c, fracs["test"], fracs["val"])
        start = np.cumsum(sizes[members]) - sizes[members]
        assign[members[start < t_test]] = 0
        assign[members[(start >= t_test) & (start < t_test + t_val)]] = 1
    _repair(assign, gl, labels, cfg, rng)

    row_split = assign[groups]
    parts = {
        name: np.flatnonzero(row_split == i) for i, name in enumerate(("test", "val", "train"))
    }
    counts = {
        name: tuple(int(x) for x in np.bincount(labels[parts[name]], minlength=k))
        for name in SPLIT_NAMES
    }
    return Split(
        train=parts["train"],
        val=parts["val"],
        test=parts["test"],
        fingerprint=fingerprint,
        source_path=str(source.path),
        n=n,
        config=cfg,
        class_names=tuple(source.class_names),
        class_counts=counts,
        n_groups_merged=int((sizes > 1).sum()),
        notes=(note,) if note else (),
    )


def _targets(n_c: int, test: float, val: float) -> tuple[int, int]:
    """Samples of a class to put in test and val: rounded, at least one each when n_c >= 3."""
    t_test, t_val = round(test * n_c), round(val * n_c)
    if n_c >= 3:
        t_test = max(t_test, 1) if test > 0 else 0
        t_val = max(t_val, 1) if val > 0 else 0
    while t_test + t_val > max(n_c - 1, 0):
        if t_test >= t_val:
            t_test -= 1
        else:
            t_val -= 1
    return t_test, t_val


def _repair(assign: np.ndarray, gl: np.ndarray, labels: np.ndarray, cfg: SplitConfig, rng) -> None:
    """Give every split with a positive fraction at least one sample of each class of >= 3 samples."""
    wanted = [s for s, f in ((0, cfg.test), (1, cfg.val), (2, 1.0)) if f > 0]
    totals = np.bincount(labels, minlength=gl.shape[1])
    for c in np.flatnonzero(totals >= 3):
        holders = np.flatnonzero(gl[:, c] > 0)
        for s in wanted:
            per_split = np.bincount(assign[holders], weights=gl[holders, c], minlength=3)
            if per_split[s] > 0:
                continue
            # groups of this class elsewhere whose split keeps at least one sample of it without them
            spare = holders[
                (assign[holders] != s) & (per_split[assign[holders]] - gl[holders, c] >= 1)
            ]
            if spare.size == 0:
                continue  # the class sits in too few groups
            sizes = gl[spare].sum(axis=1)
            order = np.lexsort((rng.random(spare.size), sizes))
            assign[spare[order[0]]] = s


def row_groups(source: SampleSource, sky_radius_arcsec: float = 1.0) -> np.ndarray:
    """Group id per row: identical pixels and sky neighbours (< radius) share a group.

    Degenerate sky coordinates (see :func:`degenerate_sky`) are ignored, with a ``UserWarning``.

    Returns:
        int64 array of length ``len(source)``; ids are 0..n_groups-1, numbered by first row.
    """
    return _row_groups(source, sky_radius_arcsec)[0]


def _row_groups(source: SampleSource, sky_radius_arcsec: float) -> tuple[np.ndarray, str | None]:
    """:func:`row_groups` and the warning about degenerate sky coordinates (None if none)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(source)
    if n == 0:
        return np.zeros(0, dtype=np.int64), None
    pairs = [duplicate_pairs(source_pixel_hashes(source))]
    note = None
    if sky_radius_arcsec > 0:
        sky = sky_groups(source.metadata(), sky_radius_arcsec)
        if sky is not None:
            problem = degenerate_sky(sky, sky_radius_arcsec)
            if problem:
                note = f"{source.path}: {problem}; the split ignores sky positions"
                warnings.warn(note, AstroReasonWarning, stacklevel=3)
            else:
                pairs.append(duplicate_pairs(sky))
    edges = np.concatenate(pairs)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    return _renumber(comp), note


def _renumber(comp: np.ndarray) -> np.ndarray:
    """Component ids renumbered 0.. by first occurrence (independent of scipy's numbering)."""
    _, first, inv = np.unique(comp, return_index=True, return_inverse=True)
    order = np.argsort(first)
    renum = np.empty_like(order)
    renum[order] = np.arange(order.size)
    return renum[inv.reshape(-1)].astype(np.int64)


def duplicate_pairs(hashes: Sequence[str] | np.ndarray) -> np.ndarray:
    """(m, 2) row pairs chaining together rows with equal hashes (or equal integer group ids)."""
    keys = np.asarray(hashes)
    if keys.dtype.kind not in "iu":
        keys = np.asarray(hashes, dtype=object).astype(str)
    _, inv = np.unique(keys, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    same = inv[order][1:] == inv[order][:-1]
    return np.stack([order[:-1][same], order[1:][same]], axis=1).astype(np.int64)


def _sky_positions(
    meta: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Rows with finite numeric ``ra``/``dec`` and their coordinates; None without such columns."""
    ra, dec = meta.get("ra"), meta.get("dec")
    if ra is None or dec is None:
        return None
    ra, dec = np.asarray(ra), np.asarray(dec)
    if ra.ndim != 1 or ra.shape != dec.shape or ra.dtype.kind not in "iuf":
        return None
    if dec.dtype.kind not in "iuf":
        return None
    ok = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    return ok, ra[ok].astype(np.float64), dec[ok].astype(np.float64)


def _chord(radius_arcsec: float) -> float:
    return 2 * math.sin(math.radians(radius_arcsec / 3600) / 2)


def sky_pairs(meta: Mapping[str, np.ndarray], radius_arcsec: float) -> np.ndarray:
    """(m, 2) row pairs closer than ``radius_arcsec`` on the sky; empty without numeric ``ra``/``dec``.

    Every pair is listed, so rows piled on one position cost O(rows^2): call :func:`sky_groups` and
    :func:`degenerate_sky` first where coordinates may be placeholders.
    """
    from scipy.spatial import cKDTree

    empty = np.zeros((0, 2), dtype=np.int64)
    pos = _sky_positions(meta)
    if pos is None or pos[0].size < 2:
        return empty
    ok, ra, dec = pos
    found = cKDTree(radec_to_unit(ra, dec)).query_pairs(
        _chord(radius_arcsec), output_type="ndarray"
    )
    return ok[found].astype(np.int64) if len(found) else empty


def sky_groups(meta: Mapping[str, np.ndarray], radius_arcsec: float) -> np.ndarray | None:
    """Group id per row: rows closer than ``radius_arcsec`` (chained) share one; None without ra/dec.

    Rows without finite coordinates are alone in their group. Identical positions are merged before
    the neighbour search, so placeholder coordinates (every row at ``0, 0``) cost O(rows).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pos = _sky_positions(meta)
    if pos is None:
        return None
    ok, ra, dec = pos
    n = np.asarray(meta["ra"]).shape[0]
    comp = np.arange(n, dtype=np.int64)
    if ok.size >= 2:
        uniq, inv = np.unique(np.stack([ra, dec], axis=1), axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        edges = cKDTree(radec_to_unit(uniq[:, 0], uniq[:, 1])).query_pairs(
            _chord(radius_arcsec), output_type="ndarray"
        )
        m = len(uniq)
        graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(m, m))
        _, ucomp = connected_components(graph, directed=False)
        comp[ok] = n + ucomp[inv]  # above every lone row's id
    return _renumber(comp)


def degenerate_sky(groups: np.ndarray, radius_arcsec: float = 1.0) -> str | None:
    """A sentence when one sky group (:func:`sky_groups`) holds too many rows to be real, else None.

    Too many: more than ``DEGENERATE_SKY_FRACTION`` of the rows and at least
    ``DEGENERATE_SKY_MIN_ROWS``: placeholder coordinates, not positions.
    """
    n = groups.size
    if n == 0:
        return None
    sizes = np.bincount(groups)
    big = int(sizes.max())
    if big < DEGENERATE_SKY_MIN_ROWS or big <= DEGENERATE_SKY_FRACTION * n:
        return None
    what = "all" if big == n else f"{big} of"
    return (
        f"ra/dec put {what} {n} rows into one sky group (each within {radius_arcsec:g} arcsec "
        "of another): the coordinates look like placeholders (e.g. ra = dec = 0 on every row)"
    )


def radec_to_unit(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(n, 3) unit vectors for right ascension and declination in degrees."""
    ra, dec = np.radians(np.asarray(ra_deg, float)), np.radians(np.asarray(dec_deg, float))
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)


def source_pixel_hashes(source: SampleSource, progress: bool | None = None) -> list[str]:
    """``source.pixel_hashes()``, with a progress bar (on stderr) for large sources.

    Sources that keep the default implementation are hashed here, identically, so the bar can advance;
    sources that override it are called as they are.

    Args:
        source: The source.
        progress: Show the bar; None: when the source has more than ``PROGRESS_MIN_ROWS`` rows and
            stderr is a terminal.
    """
    n = len(source)
    if progress is None:
        progress = n > PROGRESS_MIN_ROWS
    if not progress or type(source).pixel_hashes is not SampleSource.pixel_hashes:
        return list(source.pixel_hashes())
    import hashlib

    from rich.console import Console
    from rich.progress import track

    out = []
    console = Console(stderr=True)
    for i in track(
        range(n),
        description=f"hashing {n} images",
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ):
        s = source[i]
        arr = s.image if s.image is not None else s.spectrum.flux  # type: ignore[union-attr]
        out.append(hashlib.blake2b(np.ascontiguousarray(arr).tobytes(), digest_size=16).hexdigest())
    return out


# --------------------------------------------------------------------------- persistence


def split_path(source: SampleSource, seed: int) -> Path:
    """Where a split lives beside the data: ``<file>.split-seed<seed>.json`` (folders: beside the folder)."""
    p = Path(source.path)
    return p.parent / f"{p.name}.split-seed{seed}.json"


def fallback_split_path(fingerprint: str, seed: int) -> Path:
    """Where a split lives when the data's folder is not writable."""
    return cache_home() / "splits" / f"{fingerprint}-seed{seed}.json"


def load_or_create_split(
    source: SampleSource,
    cfg: SplitConfig | None = None,
    overwrite: bool = False,
    path: str | os.PathLike | None = None,
) -> Split:
    """Load the persisted split of a source, or make and save it.

    Args:
        source: The data.
        cfg: Settings; the seed picks the file, the rest must match a stored split.
        overwrite: Make a new split even if one is stored, and replace it.
        path: An explicit split file instead of the default places (beside the data, else
            ``$ASTROREASON_HOME/splits/<fingerprint>-seed<seed>.json``).

    Raises:
        DataError: A stored split was made for other data (fingerprint) or other settings, or is not a
            split file; the message names the file and the command that replaces it.
    """
    cfg = cfg or SplitConfig()
    fingerprint = source.fingerprint()
    if path is not None:
        candidates = [Path(path)]
    else:
        candidates = [split_path(source, cfg.seed), fallback_split_path(fingerprint, cfg.seed)]
    if not overwrite:
        first_error: DataError | None = None
        for cand in candidates:
            if not cand.is_file():
                continue
            try:
                return _load_checked(cand, source, cfg, fingerprint)
            except DataError as err:
                first_error = first_error or err
        if first_error is not None:
            raise first_error
    split = _make_split(source, cfg, fingerprint)
    text = split.to_json()
    if path is None and not _writable_dir(candidates[0].parent):
        candidates = candidates[1:]
    problems = []
    for cand in candidates:
        try:
            _write_atomic(cand, text)
            return split
        except OSError as err:
            problems.append(f"{cand}: {err.strerror or err}")
    raise DataError(candidates[-1], "cannot write the split file (" + "; ".join(problems) + ")")


def split_for(source: SampleSource, seed: int = 0) -> Split:
    """The split that consumers (environments, training, evaluation) use for ``source``.

    The stored split of this seed, whatever ``val``/``test``/``sky_radius_arcsec`` it was made
    with by ``astroreason data split`` (its fingerprint and row count are still checked), else a
    new one with the default settings, saved like :func:`load_or_create_split` does.
    """
    fingerprint = source.fingerprint()
    first_error: DataError | None = None
    for cand in (split_path(source, seed), fallback_split_path(fingerprint, seed)):
        if cand.is_file():
            try:
                return _load_checked(cand, source, None, fingerprint, seed)
            except DataError as err:
                first_error = first_error or err
    if first_error is not None:
        raise first_error
    return load_or_create_split(source, SplitConfig(seed=seed))


def _load_checked(
    path: Path, source: SampleSource, cfg: SplitConfig | None, fingerprint: str, seed: int = 0
) -> Split:
    """The split in ``path``, checked against the data and ``cfg`` (None: its own settings, ``seed``)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise DataError(path, f"cannot read the split file: {err}") from None
    split = Split.from_json(text, where=path)
    cfg = cfg or replace(split.config, seed=seed)
    redo = _redo_command(source, cfg)
    if split.fingerprint != fingerprint:
        raise DataError(
            path,
            f"this split was made for other data (fingerprint {split.fingerprint}, the data's is now "
            f"{fingerprint}): the file changed since; rerun `{redo}` to replace the split",
        )
    if split.n != len(source):
        raise DataError(
            path, f"this split covers {split.n} rows but the data has {len(source)}; rerun `{redo}`"
        )
    s = split.config
    if not (
        s.seed == cfg.seed
        and math.isclose(s.val, cfg.val, abs_tol=1e-9)
        and math.isclose(s.test, cfg.test, abs_tol=1e-9)
        and math.isclose(s.sky_radius_arcsec, cfg.sky_radius_arcsec, abs_tol=1e-9)
    ):
        raise DataError(
            path,
            f"this split was made with seed={s.seed} val={s.val:g} test={s.test:g} "
            f"sky_radius_arcsec={s.sky_radius_arcsec:g}, but seed={cfg.seed} val={cfg.val:g} "
            f"test={cfg.test:g} sky_radius_arcsec={cfg.sky_radius_arcsec:g} was asked for; "
            f"rerun `{redo}` to replace it",
        )
    return split


def _redo_command(source: SampleSource, cfg: SplitConfig) -> str:
    opts = [] if cfg.seed == 0 else [f"--seed {cfg.seed}"]
    defaults = SplitConfig()
    if cfg.val != defaults.val:
        opts.append(f"--val {cfg.val:g}")
    if cfg.test != defaults.test:
        opts.append(f"--test {cfg.test:g}")
    return " ".join(["astroreason data split", str(source.path), *opts, "--force"])


def _writable_dir(d: Path) -> bool:
    return d.is_dir() and os.access(d, os.W_OK | os.X_OK)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
