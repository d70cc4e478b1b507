"""Image encoding for the wire and for trace files.

Encoding is the largest cost of a turn on our side of the wire. Views are small (the tiny model sees
64-128 px; Qwen3-VL-8B 256-512 px), so the default ``auto`` keeps them lossless (PNG, fast compression)
up to 128x128 pixels and switches to JPEG quality 95 without chroma subsampling above, where PNG of
a noisy image costs several milliseconds (``make bench`` measures both, and JPEG's error on galaxy
views: a mean of 2-3 grey levels).
"""

from __future__ import annotations

import base64
import io
from collections import OrderedDict
from typing import Literal

import numpy as np
from PIL import Image

ImageFormat = Literal["auto", "png", "jpeg"]
LOSSLESS_MAX_PIXELS = 128 * 128


def to_pil(image) -> Image.Image:
    """An HxWx3 uint8 array (or a PIL image) as an RGB PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


_CACHE: OrderedDict[tuple[int, str], tuple[np.ndarray, bytes, str]] = OrderedDict()
_CACHE_SIZE = 1024


def encode_image(image, fmt: ImageFormat = "auto") -> tuple[bytes, str]:
    """Encode an image; returns (bytes, mime type).

    Read-only arrays (the environment's views) are encoded once: a conversation re-sends every
    earlier image at each turn, and traces save the same images again.
    """
    if fmt == "auto":
        h, w = np.shape(image)[:2]
        fmt = "png" if h * w <= LOSSLESS_MAX_PIXELS else "jpeg"
    cacheable = isinstance(image, np.ndarray) and not image.flags.writeable
    if cacheable:
        hit = _CACHE.get((id(image), fmt))
        if hit is not None and hit[0] is image:
            _CACHE.move_to_end((id(image), fmt))
            return hit[1], hit[2]
    data, mime = _encode(image, fmt)
    if cacheable:
        _CACHE[(id(image), fmt)] = (image, data, mime)
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return data, mime


def _encode(image, fmt: ImageFormat) -> tuple[bytes, str]:
    pil = to_pil(image)
    if fmt == "auto":
        fmt = "png" if pil.width * pil.height <= LOSSLESS_MAX_PIXELS else "jpeg"
    buf = io.BytesIO()
    if fmt == "png":
        pil.save(buf, format="PNG", compress_level=1)
        return buf.getvalue(), "image/png"
    if fmt == "jpeg":
        pil.save(buf, format="JPEG", quality=95, subsampling=0)
        return buf.getvalue(), "image/jpeg"
    raise ValueError(f"unknown image format {fmt!r}")


def data_url(image, fmt: ImageFormat = "auto") -> str:
    """A ``data:`` URL for an OpenAI-style ``image_url`` content block."""
    data, mime = encode_image(image, fmt)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
