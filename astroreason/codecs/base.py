"""The codec interface: an image becomes a grid of discrete token ids, and back.

The ``tokens`` observation (``--obs tokens``) shows the model an image as the ids of an image codec
written as text (``[3513, 3555, 3548, ...]``), as the overnight experiment behind this project did
with AION-1's Legacy Survey tokenizer. Every codec maps an RGB ``uint8`` image whose sides are
multiples of ``patch`` to a ``(H // patch, W // patch)`` grid of ids in ``[0, vocab_size)``, and a
grid back to an image for people to look at (the trace viewer). Codecs work on the pixels the env
would otherwise show (the overview, a zoom, a crop), so a token budget is a pixel budget divided by
``patch**2``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class ImageCodec(ABC):
    """Image -> token grid -> image. Subclasses set ``name``, ``vocab_size`` and ``patch``."""

    name: str = ""
    """Short name shown in reports and cards (``tiny-vq``, ``aion-legacysurvey``)."""

    vocab_size: int = 0
    """Token ids are ``0 .. vocab_size - 1``."""

    patch: int = 1
    """Pixels per token along each side of the image the codec reads."""

    @abstractmethod
    def encode(self, image: np.ndarray) -> np.ndarray:
        """Token ids of an ``(H, W, 3)`` uint8 image: an ``(H // patch, W // patch)`` int64 grid.

        Raises:
            ValueError: The image is not RGB uint8, or a side is not a multiple of ``patch``.
        """

    @abstractmethod
    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """The ``(h * patch, w * patch, 3)`` uint8 image a token grid stands for."""

    def describe(self) -> dict[str, Any]:
        """What reports, traces and the experiment log say about this codec."""
        return {"name": self.name, "vocab_size": int(self.vocab_size), "patch": int(self.patch)}

    def check_image(self, image: np.ndarray) -> np.ndarray:
        """``image`` as a contiguous RGB uint8 array whose sides are multiples of ``patch``."""
        a = np.asarray(image)
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: expected an (H, W, 3) uint8 image, got {a.shape} {a.dtype}"
            )
        if a.shape[0] % self.patch or a.shape[1] % self.patch:
            raise ValueError(
                f"{self.name}: image sides {a.shape[:2]} are not multiples of the patch {self.patch}"
            )
        return np.ascontiguousarray(a)


ID_TOKEN = "<v{}>"
"""How one codec id is written in the text a model reads (``<v12>``): a tokenizer that holds these
strings as tokens (the tiny Qwen3-VL holds ``<v0>``-``<v255>``) reads one token per id; digits with
separators cost about three and a half."""


def tokens_text(tokens: np.ndarray) -> str:
    """A token grid as the text the model reads: ids in row-major order, ``<v12><v7><v201>...``."""
    return "".join(ID_TOKEN.format(int(t)) for t in np.asarray(tokens).ravel())


def parse_tokens_text(text: str, shape: tuple[int, int]) -> np.ndarray:
    """The inverse of :func:`tokens_text` for a grid of ``shape`` (the viewer decodes with it).

    Raises:
        ValueError: The text is not ``shape[0] * shape[1]`` ids written as :data:`ID_TOKEN`.
    """
    import re

    body = text.strip()
    if re.fullmatch(r"(?:<v\d+>)*", body) is None:
        raise ValueError("token text must be ids written as <vN>, nothing else")
    ids = [int(t) for t in re.findall(r"<v(\d+)>", body)]
    if len(ids) != shape[0] * shape[1]:
        raise ValueError(f"expected {shape[0] * shape[1]} token ids, got {len(ids)}")
    return np.asarray(ids, dtype=np.int64).reshape(shape)
