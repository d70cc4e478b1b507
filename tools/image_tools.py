"""Image tools over a full-resolution source: ``overview``, ``zoom``, ``crop`` and ``stretch``.

Pure functions of numpy arrays: a tool reads the *source* (the full-resolution ``uint8`` image,
``(H, W)`` or ``(H, W, 3)``), never the downsampled view the model saw, so a zoom or a crop shows
detail the overview could not. Each returns ``(view, footprint)``: a new ``(view_size, view_size, 3)``
``uint8`` array and the square of the source it shows (see ``geometry`` for coordinates, placement
and errors).

Resampling, chosen by the footprint's size against the view's:

* larger than the view (downsampling): PIL's ``BOX`` filter, an area average: antialiased (a
  1-pixel checkerboard becomes flat grey instead of aliasing into stripes) and flux-conserving,
  the way astronomers bin images. ``REDUCING_GAP = 1`` lets PIL block-average by the integer part
  of the ratio first, then area-resample the rest: about 2x faster for large footprints (a 1024 px
  footprint of a 2048^2 source), at the price of a slightly wider filter, never a shift (measured
  on a noisy synthetic galaxy: PSNR > 50 dB against the exact area average);
* the view's size or smaller (upsampling): ``NEAREST`` by default, so each source pixel shows as a
  crisp block, as in astronomical viewers: interpolation would invent smooth detail, and blocks
  let the model see that it has reached the native resolution. ``upsample="bicubic"`` is offered
  for comparison (about 10x slower per call here).

Zooming past ``MIN_SIDE`` source pixels across is a ``ToolError`` rather than a silent clamp: the
model asked for a view that cannot exist, and the message names the largest factor that can.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from PIL import Image

from astroreason.tools.geometry import Footprint, check_side, place_square
from astroreason.tools.schema import BBOX, CENTER, FACTOR, STRETCH_MODE

Upsample = Literal["nearest", "bicubic"]
_UPSAMPLE = {"nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC}
REDUCING_GAP = 1.0
"""PIL ``reducing_gap`` for downsampling: block-average first when the footprint is >= 2x the view."""

ASINH_SOFTENING = 0.05
"""``stretch(mode="asinh")``: fraction of the range below which the stretch is nearly linear."""

STRETCH_PERCENTILES = (0.5, 99.5)
"""``stretch``: intensity percentiles mapped to black and white."""


def _check_source(source: np.ndarray) -> tuple[int, int]:
    if not isinstance(source, np.ndarray) or source.dtype != np.uint8:
        raise TypeError(
            f"source must be a uint8 numpy array; got {type(source).__name__}"
            + (f" of {source.dtype}" if isinstance(source, np.ndarray) else "")
        )
    if not (source.ndim == 2 or (source.ndim == 3 and source.shape[2] == 3)) or 0 in source.shape:
        raise ValueError(f"source must have shape (H, W) or (H, W, 3); got {source.shape}")
    return source.shape[0], source.shape[1]


def _check_view_size(view_size: int) -> int:
    if isinstance(view_size, bool) or not isinstance(view_size, (int, np.integer)):
        raise TypeError(f"view_size must be an int; got {view_size!r}")
    if not 8 <= view_size <= 4096:
        raise ValueError(f"view_size must be between 8 and 4096; got {view_size}")
    return int(view_size)


def _check_parent(parent: Footprint) -> Footprint:
    if not isinstance(parent, Footprint):
        raise TypeError(f"parent must be a Footprint; got {type(parent).__name__}")
    return parent


def render_view(
    source: np.ndarray, footprint: Footprint, view_size: int, *, upsample: Upsample = "nearest"
) -> np.ndarray:
    """Resample the source inside ``footprint`` to a ``(view_size, view_size, 3)`` uint8 view.

    Parts of the footprint outside the source are black. See the module docstring for the filters.
    """
    h, w = _check_source(source)
    view_size = _check_view_size(view_size)
    if upsample not in _UPSAMPLE:
        raise ValueError(f"upsample must be one of {sorted(_UPSAMPLE)}; got {upsample!r}")
    fp = footprint
    ix0, iy0 = math.floor(fp.x0), math.floor(fp.y0)
    ix1, iy1 = math.ceil(fp.x1), math.ceil(fp.y1)
    cx0, cy0, cx1, cy1 = max(ix0, 0), max(iy0, 0), min(ix1, w), min(iy1, h)
    if (cx0, cy0, cx1, cy1) == (ix0, iy0, ix1, iy1):
        region = np.ascontiguousarray(source[iy0:iy1, ix0:ix1])
    else:  # the footprint leaves the source: pad with black
        region = np.zeros((iy1 - iy0, ix1 - ix0) + source.shape[2:], np.uint8)
        if cx1 > cx0 and cy1 > cy0:
            region[cy0 - iy0 : cy1 - iy0, cx0 - ix0 : cx1 - ix0] = source[cy0:cy1, cx0:cx1]
    box = (fp.x0 - ix0, fp.y0 - iy0, fp.x1 - ix0, fp.y1 - iy0)
    im = Image.fromarray(region)
    if max(fp.width, fp.height) > view_size:
        out = im.resize(
            (view_size, view_size), Image.Resampling.BOX, box=box, reducing_gap=REDUCING_GAP
        )
    else:
        out = im.resize((view_size, view_size), _UPSAMPLE[upsample], box=box)
    if out.mode != "RGB":
        out = out.convert("RGB")
    return np.array(out)


def overview(
    source: np.ndarray, view_size: int, *, upsample: Upsample = "nearest"
) -> tuple[np.ndarray, Footprint]:
    """The whole source as one square view: the first observation of an episode.

    A non-square source is centred in the square of its longer side, with black margins.

    Args:
        source: Full-resolution ``uint8`` image, ``(H, W)`` or ``(H, W, 3)``.
        view_size: Side of the returned view in pixels.
        upsample: Filter when the source is smaller than the view (see the module docstring).

    Returns:
        ``(view, footprint)``.
    """
    h, w = _check_source(source)
    fp = Footprint.full(h, w)
    return render_view(source, fp, view_size, upsample=upsample), fp


def zoom(
    source: np.ndarray,
    parent: Footprint,
    center: object,
    factor: object,
    view_size: int,
    *,
    upsample: Upsample = "nearest",
) -> tuple[np.ndarray, Footprint]:
    """Magnify a view around a point.

    The new footprint is the parent's side divided by ``factor``, centred on ``center`` (mapped to
    the source through the parent footprint) and slid inside the source when it would leave it.

    Args:
        source: Full-resolution ``uint8`` image, ``(H, W)`` or ``(H, W, 3)``.
        parent: Footprint of the view the model chose (``image_index``).
        center: ``[x, y]`` in 0-1000 coordinates of the parent view (as the model wrote it).
        factor: Magnification, ``1 < factor <= MAX_ZOOM`` (as the model wrote it).
        view_size: Side of the returned view in pixels.
        upsample: Filter when the footprint is smaller than the view.

    Returns:
        ``(view, footprint)``.

    Raises:
        ToolError: ``center`` or ``factor`` is invalid, or the view would be narrower than
            ``MIN_SIDE`` source pixels.
    """
    h, w = _check_source(source)
    parent = _check_parent(parent)
    x, y = CENTER.check("zoom", "center", center)
    f = FACTOR.check("zoom", "factor", factor)
    side = parent.side / f
    check_side("zoom", side, parent, f"factor {f:g}")
    cx, cy = parent.to_source(x, y)
    fp = place_square(cx, cy, side, h, w)
    return render_view(source, fp, view_size, upsample=upsample), fp


def crop(
    source: np.ndarray,
    parent: Footprint,
    bbox_2d: object,
    view_size: int,
    *,
    upsample: Upsample = "nearest",
) -> tuple[np.ndarray, Footprint]:
    """Show a box of a view at the view size.

    A box that is not square (in source pixels) is widened to the square of its longer side around
    its centre, then slid inside the source when it would leave it: the view is never distorted and
    always contains the whole box.

    Args:
        source: Full-resolution ``uint8`` image, ``(H, W)`` or ``(H, W, 3)``.
        parent: Footprint of the view the model chose (``image_index``).
        bbox_2d: ``[x1, y1, x2, y2]`` in 0-1000 coordinates of the parent view.
        view_size: Side of the returned view in pixels.
        upsample: Filter when the footprint is smaller than the view.

    Returns:
        ``(view, footprint)``.

    Raises:
        ToolError: ``bbox_2d`` is invalid (not 4 numbers, outside 0-1000, zero area, inverted), or
            spans fewer than ``MIN_SIDE`` source pixels.
    """
    h, w = _check_source(source)
    parent = _check_parent(parent)
    x1, y1, x2, y2 = BBOX.check("crop", "bbox_2d", bbox_2d)
    sx0, sy0 = parent.to_source(x1, y1)
    sx1, sy1 = parent.to_source(x2, y2)
    side = max(sx1 - sx0, sy1 - sy0)
    check_side("crop", side, parent, "this box")
    fp = place_square((sx0 + sx1) / 2, (sy0 + sy1) / 2, side, h, w)
    return render_view(source, fp, view_size, upsample=upsample), fp


def stretch(view: np.ndarray, mode: object = "asinh") -> np.ndarray:
    """Rescale a view's intensity to bring out faint structure; colours keep their ratios.

    The view's intensity (mean of the channels) between the ``STRETCH_PERCENTILES`` is mapped to
    0-1, then through ``asinh(t / s) / asinh(1 / s)`` (``s = ASINH_SOFTENING``) or linearly; each
    pixel's channels are scaled by the same factor. A flat view comes back unchanged. The
    footprint is the view's own.

    Args:
        view: A ``(h, w, 3)`` or ``(h, w)`` uint8 view.
        mode: ``"asinh"`` or ``"linear"`` (as the model wrote it).

    Returns:
        A new ``(h, w, 3)`` uint8 array.

    Raises:
        ToolError: ``mode`` is not one of the modes.
    """
    _check_source(view)
    mode = STRETCH_MODE.check("stretch", "mode", mode)
    v = view.astype(np.float32)
    if v.ndim == 2:
        v = np.repeat(v[:, :, None], 3, axis=2)
    inten = v.mean(axis=2)
    lo, hi = np.percentile(inten, STRETCH_PERCENTILES)
    if hi <= lo:
        return v.astype(np.uint8)
    t = np.clip((inten - lo) / (hi - lo), 0.0, 1.0)
    if mode == "asinh":
        g = np.arcsinh(t / ASINH_SOFTENING) / np.arcsinh(1.0 / ASINH_SOFTENING)
    else:
        g = t
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(t > 0, g / t, 0.0)
    out = (v - lo) / (hi - lo) * gain[:, :, None] * 255.0
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
