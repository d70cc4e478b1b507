"""Image codecs for the ``tokens`` observation: an image as discrete token ids, and back.

* :class:`ImageCodec` (``base.py``): the interface every codec implements.
* :class:`VQCodec` (``vq.py``): the built-in numpy codec (k-means over patches); the shipped
  ``checkpoints/tiny-vq`` is one (``astroreason model codec`` rebuilds it).
* ``aion.py``: AION-1's Legacy Survey image codec from weights on disk (needs ``polymathic-aion``).
* :func:`open_codec`: a codec by name or folder.
"""

from __future__ import annotations

from pathlib import Path

from astroreason.codecs.base import ID_TOKEN, ImageCodec, parse_tokens_text, tokens_text
from astroreason.codecs.vq import VQCodec
from astroreason.errors import ConfigError

TINY_VQ = Path(__file__).resolve().parents[2] / "checkpoints" / "tiny-vq"
"""The codec shipped in the repository (8x8 patches, 256 ids; ``astroreason model codec``)."""

BUILT_IN = {"tiny-vq": TINY_VQ}
"""Codec names :func:`open_codec` knows, and their folders."""


def open_codec(spec: str) -> ImageCodec:
    """A codec from a spec: a built-in name, a codec folder, or ``aion:FOLDER``.

    Args:
        spec: ``"tiny-vq"`` (the shipped codec), a folder holding a ``codec.json`` (written by
            ``astroreason model codec``), or ``"aion:FOLDER"``: AION-1's image codec from a local
            copy of its weights (see :mod:`astroreason.codecs.aion`; nothing is downloaded).

    Raises:
        ConfigError: The spec is empty or unknown, or its folder is missing or malformed (one
            line naming the path and the problem).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(
            f"codec: expected a name ({', '.join(BUILT_IN)}), a folder or aion:FOLDER, got {spec!r}"
        )
    spec = spec.strip()
    if spec.startswith("aion:"):
        from astroreason.codecs.aion import AionImageCodec

        folder = spec[len("aion:") :]
        if not folder:
            raise ConfigError("codec: aion: needs a folder, as in aion:/path/to/aion-base")
        return AionImageCodec.from_folder(folder)
    folder = BUILT_IN.get(spec, Path(spec).expanduser())
    if spec not in BUILT_IN and not folder.exists():
        raise ConfigError(
            f"codec: {spec!r} is neither a built-in codec ({', '.join(BUILT_IN)}) nor an existing folder"
        )
    return VQCodec.load(folder)  # checks the folder's kind


__all__ = [
    "BUILT_IN",
    "ID_TOKEN",
    "TINY_VQ",
    "ImageCodec",
    "VQCodec",
    "open_codec",
    "parse_tokens_text",
    "tokens_text",
]
