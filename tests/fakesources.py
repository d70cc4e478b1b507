"""In-memory sources for split and audit tests, and a tiny Galaxy10-format file writer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np

from astroreason.data.base import Sample, SampleSource


class FakeImageSource(SampleSource):
    """A SampleSource held in memory: labels, optional metadata columns, optional images.

    Images default to 8x8 RGB noise from a seeded rng plus a class-dependent bright row (so no two rows
    collide by chance). The fingerprint hashes labels, images and metadata, so changing any of them
    changes it. ``path`` defaults to a location that does not exist (split files then fall back to
    ``$ASTROREASON_HOME``); pass a path in a temporary folder to store splits beside it.
    """

    kind = "image"

    def __init__(
        self,
        labels,
        metadata: dict[str, np.ndarray] | None = None,
        images: np.ndarray | None = None,
        *,
        n_classes: int | None = None,
        seed: int = 0,
        path: str | Path = "/nonexistent/astroreason-fake/fake.h5",
    ):
        self._labels = np.asarray(labels, dtype=np.int64)
        n = self._labels.size
        k = n_classes if n_classes is not None else int(self._labels.max()) + 1
        self.class_names = tuple(f"class {c}" for c in range(k))
        self.path = str(path)
        self._meta = {key: np.asarray(v) for key, v in (metadata or {}).items()}
        for key, v in self._meta.items():
            assert v.shape[0] == n, f"metadata {key!r} has {v.shape[0]} rows, labels {n}"
        if images is None:
            images = fake_images(self._labels, seed)
        self._images = np.asarray(images, dtype=np.uint8)
        assert self._images.shape[0] == n

    def __len__(self) -> int:
        return self._labels.size

    def _load(self, i: int) -> Sample:
        meta = {k: v[i].item() if hasattr(v[i], "item") else v[i] for k, v in self._meta.items()}
        return Sample(row_id=i, label=int(self._labels[i]), image=self._images[i].copy(), meta=meta)

    def labels(self) -> np.ndarray:
        return self._labels.copy()

    def metadata(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._meta.items()}

    def fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=8)
        h.update(self._labels.tobytes())
        h.update(self._images.tobytes())
        for k in sorted(self._meta):
            h.update(k.encode())
            h.update(repr(self._meta[k].tolist()).encode())
        return h.hexdigest()


def fake_images(labels, seed: int = 0, side: int = 8) -> np.ndarray:
    """(n, side, side, 3) uint8 noise with a bright row at ``label % side``; rows differ by chance."""
    labels = np.asarray(labels)
    n = labels.size
    images = np.random.default_rng(seed).integers(0, 120, (n, side, side, 3), dtype=np.uint8)
    images[np.arange(n), labels % side, :, :] = 255
    return images


def sorted_labels(counts) -> np.ndarray:
    """Labels sorted by class, like the real Galaxy10 files: ``counts[c]`` rows of class c in a block."""
    return np.repeat(np.arange(len(counts)), counts)


def clustered_labels(n_classes: int, block: int, repeats: int) -> np.ndarray:
    """Blocks of ``block`` rows per class, cycling through the classes ``repeats`` times."""
    return np.tile(np.repeat(np.arange(n_classes), block), repeats)


def shuffled_labels(counts, seed: int = 0) -> np.ndarray:
    """The same class counts in a random order."""
    return np.random.default_rng(seed).permutation(sorted_labels(counts))


GALAXY10_COUNTS = (1081, 1853, 2645, 2027, 334, 2043, 1829, 2628, 1423, 1873)


def scaled_galaxy10_counts(n: int) -> list[int]:
    """Galaxy10 DECaLS class proportions scaled to about ``n`` rows (each class at least 3)."""
    total = sum(GALAXY10_COUNTS)
    return [max(3, round(c * n / total)) for c in GALAXY10_COUNTS]


def write_galaxy10_h5(path: Path, labels, side: int = 16, seed: int = 0, **extra) -> Path:
    """Write a tiny Galaxy10 DECaLS-format file (images, ans, ra, dec, redshift, pxscale, extras)."""
    labels = np.asarray(labels)
    n = labels.size
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 200, (n, side, side, 3), dtype=np.uint8)
    images[np.arange(n), labels % side, :, :] = 255
    cols = {
        "ra": rng.uniform(0, 360, n),
        "dec": rng.uniform(-30, 30, n),
        "redshift": rng.uniform(0.01, 0.2, n),
        "pxscale": np.full(n, 0.262),
    }
    cols.update(extra)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(1, side, side, 3))
        f.create_dataset("ans", data=labels.astype(np.uint8))
        for k, v in cols.items():
            f.create_dataset(k, data=v)
    return Path(path)


def cli_eval(out: Path, data, policy: str, *extra: str, conditions: str = "tools,no-tools") -> Path:
    """``astroreason eval`` of a scripted policy, small and fast (32 px views, no audit); returns out."""
    from astroreason.cli import main

    main(
        ["eval", "--data", str(data), "--policy", policy, "--conditions", conditions,
         "--view-size", "32", "--concurrency", "2", "--no-audit", "--out", str(out), *extra]
    )  # fmt: skip
    return Path(out)
