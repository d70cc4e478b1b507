"""Image encoding for the wire and for trace files.

Encoding is the largest cost of a turn on our side of the wire. Views are small (the tiny model sees
64-128 px; Qwen3-VL-8B 256-512 px), so the default ``auto`` keeps them lossless (PNG) up to 128x128
pixels and switches to JPEG quality 95 without chroma subsampling above (``make bench`` measures both,
and JPEG's error on galaxy views: a mean of 2-3 grey levels).

PNG is written here, not by Pillow: rows unfiltered, deflated at level 1 when many pixels repeat their
left neighbour (upsampled zooms, black margins: LZ77 finds the runs), else with Huffman coding only
(noise-dominated views, where LZ77 searches in vain). On galaxy views at 64-256 px this is 2-4x faster
than Pillow's fastest setting (``compress_level=1``, adaptive row filters) and about as small (128^2
noisy view: 0.3 ms and 27 kB instead of 1.7 ms and 34 kB; 256^2 zoomed crop: 18 kB instead of 14 kB);
the pixels are identical, any PNG reader decodes it.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections import OrderedDict
from typing import Literal

import numpy as np
from PIL import Image

ImageFormat = Literal["auto", "png", "jpeg"]
LOSSLESS_MAX_PIXELS = 128 * 128
# PNG: LZ77 pays off above this fraction of pixels equal to their left neighbour
REPEAT_FRACTION = 0.5


def to_pil(image) -> Image.Image:
    """An HxWx3 uint8 array (or a PIL image) as an RGB PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


# (id(array), format) -> [array, bytes, mime, data URL or None, size in bytes]; the array is kept so
# its id stays valid. Bounded in entries and bytes: a run needs its episodes in flight (concurrency x
# images per episode); an evicted image is only encoded again.
_CACHE: OrderedDict[tuple[int, str], list] = OrderedDict()
_CACHE_SIZE = 1024
_CACHE_MAX_BYTES = 256 * 2**20
_cache_bytes = 0


def _resolve(image, fmt: ImageFormat) -> str:
    if fmt == "auto":
        h, w = np.shape(image)[:2] if not isinstance(image, Image.Image) else image.size[::-1]
        return "png" if h * w <= LOSSLESS_MAX_PIXELS else "jpeg"
    return fmt


def _entry(image, fmt: ImageFormat) -> list:
    fmt = _resolve(image, fmt)
    cacheable = isinstance(image, np.ndarray) and not image.flags.writeable
    if cacheable:
        key = (id(image), fmt)
        hit = _CACHE.get(key)
        if hit is not None and hit[0] is image:
            _CACHE.move_to_end(key)
            return hit
    data, mime = _encode(image, fmt)
    entry = [image, data, mime, None, 0]
    if cacheable:
        old = _CACHE.pop(key, None)
        if old is not None:
            _account(old, -old[4])
        _CACHE[key] = entry
        _account(entry, image.nbytes + len(data))
    return entry


def _account(entry: list, size: int) -> None:
    """Add ``size`` bytes to a cached entry, then evict the oldest entries over the limits."""
    global _cache_bytes
    entry[4] += size
    _cache_bytes += size
    while _CACHE and (len(_CACHE) > _CACHE_SIZE or _cache_bytes > _CACHE_MAX_BYTES):
        _, old = _CACHE.popitem(last=False)
        _cache_bytes -= old[4]
        old[4] = 0


def encode_image(image, fmt: ImageFormat = "auto") -> tuple[bytes, str]:
    """Encode an image; returns (bytes, mime type).

    Read-only arrays (the environment's views) are encoded once: a conversation re-sends every
    earlier image at each turn, and traces save the same images again.
    """
    entry = _entry(image, fmt)
    return entry[1], entry[2]


def _encode(image, fmt: ImageFormat) -> tuple[bytes, str]:
    fmt = _resolve(image, fmt)
    if fmt == "png":
        arr = np.asarray(to_pil(image)) if not _is_rgb8(image) else image
        return png_bytes(arr), "image/png"
    if fmt == "jpeg":
        buf = io.BytesIO()
        to_pil(image).save(buf, format="JPEG", quality=95, subsampling=0)
        return buf.getvalue(), "image/jpeg"
    raise ValueError(f"unknown image format {fmt!r}")


def _is_rgb8(image) -> bool:
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
    )


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def png_bytes(rgb: np.ndarray) -> bytes:
    """A lossless RGB PNG of an HxWx3 uint8 array (see the module docstring)."""
    h, w, _ = rgb.shape
    raw = np.zeros((h, w * 3 + 1), np.uint8)  # a leading 0 per row: filter type None
    rows = raw[:, 1:]
    rows[:] = rgb.reshape(h, w * 3)
    sample = rows[::4]  # every 4th row is enough to tell
    same = np.count_nonzero(sample[:, 3:] == sample[:, :-3]) / max(1, sample[:, 3:].size)
    strategy = zlib.Z_DEFAULT_STRATEGY if same > REPEAT_FRACTION else zlib.Z_HUFFMAN_ONLY
    z = zlib.compressobj(1, zlib.DEFLATED, 15, 9, strategy)
    idat = z.compress(raw.data) + z.flush()
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)),
            _chunk(b"IDAT", idat),
            _chunk(b"IEND", b""),
        )
    )


def data_url(image, fmt: ImageFormat = "auto") -> str:
    """A ``data:`` URL for an OpenAI-style ``image_url`` content block (cached like the bytes)."""
    entry = _entry(image, fmt)
    if entry[3] is None:
        entry[3] = f"data:{entry[2]};base64,{base64.b64encode(entry[1]).decode('ascii')}"
        if entry[4]:  # still cached
            _account(entry, len(entry[3]))
    return entry[3]
