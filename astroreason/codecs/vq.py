"""A small built-in codec: vector quantisation of non-overlapping RGB patches (numpy only).

Each ``patch x patch`` block of the image, read as a vector of ``patch * patch * 3`` pixel values
(0-255, no normalisation), becomes the id of its nearest codebook entry (squared Euclidean
distance); decoding pastes the entries back. The codebook is learned offline by k-means
(``astroreason.codecs.train``) and saved as a folder:

* ``codebook.npy``: ``(vocab_size, patch * patch * 3)`` float32, pixel values in 0-255, each row a
  patch in ``(row, column, channel)`` order;
* ``codec.json``: ``name``, ``kind`` (``"vq"``), ``patch``, ``vocab_size``, and what the training
  wrote about itself (recipe, measured quality, wall time).

Encoding a 64x64 view is one ``(64, 192) x (192, K)`` product (numpy ``einsum``, single-threaded)
and an argmin: about half a millisecond for ``K = 256``. Ties go to the lower id, so encoding is
deterministic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from astroreason.codecs.base import ImageCodec
from astroreason.errors import ConfigError

CODEC_FILE = "codec.json"
"""The file that marks a codec folder and says how to read it."""
CODEBOOK_FILE = "codebook.npy"
"""The codebook of a ``vq`` codec folder."""


def to_patches(image: np.ndarray, patch: int) -> np.ndarray:
    """``(H, W, 3)`` image as ``(H // patch * W // patch, patch * patch * 3)`` rows, row-major."""
    h, w = image.shape[0] // patch, image.shape[1] // patch
    blocks = image.reshape(h, patch, w, patch, 3).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(h * w, patch * patch * 3)


def from_patches(rows: np.ndarray, grid: tuple[int, int], patch: int) -> np.ndarray:
    """The inverse of :func:`to_patches`: rows back to an ``(h * patch, w * patch, 3)`` image."""
    h, w = grid
    blocks = rows.reshape(h, w, patch, patch, 3).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(h * patch, w * patch, 3)


class VQCodec(ImageCodec):
    """Nearest-codeword vector quantisation of ``patch x patch`` RGB blocks.

    Args:
        codebook: ``(vocab_size, patch * patch * 3)`` pixel values in 0-255.
        patch: Side of a block in pixels.
        name: Name shown in reports.
        meta: What ``codec.json`` says beyond name, patch and size (recipe, quality); kept for
            :meth:`describe` and :meth:`save`.
    """

    def __init__(
        self, codebook: np.ndarray, patch: int, name: str = "vq", meta: dict | None = None
    ):
        cb = np.asarray(codebook, dtype=np.float32)
        if cb.ndim != 2 or cb.shape[1] != patch * patch * 3 or cb.shape[0] < 2:
            raise ValueError(
                f"codebook must be (K >= 2, {patch * patch * 3}) for patch {patch}, got {cb.shape}"
            )
        if not np.isfinite(cb).all():
            raise ValueError("codebook holds non-finite values")
        self.codebook = np.ascontiguousarray(cb)
        self.patch = int(patch)
        self.vocab_size = int(cb.shape[0])
        self.name = name
        self.meta = dict(meta or {})
        self._half_norms = 0.5 * np.einsum("kd,kd->k", cb, cb)
        self._pixels = np.clip(np.rint(cb), 0, 255).astype(np.uint8)

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Token ids of an RGB uint8 image: the nearest codeword of each block."""
        a = self.check_image(image)
        rows = to_patches(a, self.patch).astype(np.float32)
        # argmin |x - c|^2 = argmin (|c|^2 / 2 - x.c). einsum rather than BLAS: single-threaded,
        # ~0.5 ms for a 64 px view, where a threaded BLAS product waited 16 ms for its threads
        # once galsim's OpenMP runtime was loaded (measured here).
        scores = np.einsum("nd,kd->nk", rows, self.codebook)
        np.subtract(self._half_norms, scores, out=scores)
        ids = scores.argmin(axis=1)
        return ids.reshape(a.shape[0] // self.patch, a.shape[1] // self.patch).astype(np.int64)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """The image of a token grid: each id's codeword, rounded to uint8.

        Raises:
            ValueError: ``tokens`` is not a 2-D integer grid of ids in ``[0, vocab_size)``.
        """
        t = np.asarray(tokens)
        if t.ndim != 2 or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(
                f"{self.name}: expected a 2-D integer token grid, got {t.shape} {t.dtype}"
            )
        if t.size and (t.min() < 0 or t.max() >= self.vocab_size):
            raise ValueError(
                f"{self.name}: token ids must be in [0, {self.vocab_size}), "
                f"got {int(t.min())}..{int(t.max())}"
            )
        return np.ascontiguousarray(from_patches(self._pixels[t.ravel()], t.shape, self.patch))

    def describe(self) -> dict[str, Any]:
        """Name, vocabulary, patch and the folder's measured quality, if it has one."""
        d = super().describe()
        d["kind"] = "vq"
        if "quality" in self.meta:
            d["quality"] = self.meta["quality"]
        return d

    def save(self, folder: str | os.PathLike, meta: dict | None = None) -> Path:
        """Write ``codebook.npy`` and ``codec.json`` into ``folder`` (made if missing).

        Args:
            folder: Output folder.
            meta: Extra fields for ``codec.json`` (merged over :attr:`meta`).

        Returns:
            The folder.
        """
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / CODEBOOK_FILE, self.codebook, allow_pickle=False)
        info = {**self.meta, **(meta or {})}
        info.update(
            name=self.name,
            kind="vq",
            patch=self.patch,
            vocab_size=self.vocab_size,
            codebook=CODEBOOK_FILE,
        )
        (out / CODEC_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike) -> VQCodec:
        """Read a folder written by :meth:`save`.

        Raises:
            ConfigError: The folder, ``codec.json`` or the codebook is missing or malformed.
        """
        folder = Path(folder)
        info = read_codec_json(folder)
        if info.get("kind", "vq") != "vq":
            raise ConfigError(
                f"{folder / CODEC_FILE}: unknown codec kind {info.get('kind')!r} (known: vq)"
            )
        try:
            patch = int(info["patch"])
            size = int(info["vocab_size"])
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"{folder / CODEC_FILE}: bad or missing field {err}") from None
        path = folder / str(info.get("codebook", CODEBOOK_FILE))
        try:
            cb = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: cannot read the codebook ({err})") from None
        if cb.shape[0] != size:
            raise ConfigError(f"{path}: {cb.shape[0]} codewords, codec.json says {size}")
        meta = {k: v for k, v in info.items() if k not in ("patch", "vocab_size", "name")}
        try:
            return cls(cb, patch, name=str(info.get("name") or folder.name), meta=meta)
        except ValueError as err:
            raise ConfigError(f"{path}: {err}") from None


def read_codec_json(folder: Path) -> dict:
    """``folder/codec.json`` as a dict.

    Raises:
        ConfigError: The folder or file is missing, or the file is not a JSON object.
    """
    if not folder.is_dir():
        raise ConfigError(f"codec: {folder} is not a folder")
    path = folder / CODEC_FILE
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"codec: {folder} has no {CODEC_FILE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(info, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return info
