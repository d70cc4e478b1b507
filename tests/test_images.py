"""Image encoding: lossless PNG of any input, caching of the environment's read-only views."""

import io

import numpy as np
import pytest
from PIL import Image

from astroreason.images import data_url, encode_image


def _decode(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 1, 3), (5, 7, 3), (64, 64, 3), (100, 128, 3)])
def test_png_is_lossless_for_noise_flat_and_repeated_pixels(shape):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    flat = np.zeros(shape, np.uint8)
    runs = np.repeat(noise[:, :1], shape[1], axis=1)  # the LZ77 path
    for img in (noise, flat, runs, noise[::-1], np.asfortranarray(noise)):
        data, mime = encode_image(img, "png")
        assert mime == "image/png" and (_decode(data) == img).all()
    data, _ = encode_image(Image.fromarray(noise), "png")
    assert (_decode(data) == noise).all()
    data, _ = encode_image(noise.astype(float) + 0.2, "png")
    assert (_decode(data) == noise).all()


def test_auto_format_and_cache():
    small = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    big = np.random.default_rng(2).integers(0, 256, (129, 128, 3), dtype=np.uint8)
    assert encode_image(small)[1] == "image/png" and encode_image(big)[1] == "image/jpeg"
    small.setflags(write=False)
    url = data_url(small)
    assert url.startswith("data:image/png;base64,") and data_url(small) is url  # cached
    writable = small.copy()
    assert data_url(writable) == url and data_url(writable) is not data_url(writable)


def test_cache_is_bounded_in_bytes(monkeypatch):
    from astroreason import images

    monkeypatch.setattr(images, "_CACHE_MAX_BYTES", 200_000)
    rng = np.random.default_rng(3)
    arrays = []
    for _ in range(20):
        a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        a.setflags(write=False)
        arrays.append(a)
        data_url(a)
    sizes = [e[4] for e in images._CACHE.values()]
    assert images._cache_bytes == sum(sizes) <= 200_000 and all(sizes)
    assert (id(arrays[-1]), "png") in images._CACHE and (id(arrays[0]), "png") not in images._CACHE
