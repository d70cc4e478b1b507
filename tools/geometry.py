"""Footprints, the 0-1000 coordinate convention, and the one error type the model ever sees.

Coordinates. A tool call names points in 0-1000 coordinates of the image the model was shown
(Qwen3-VL's grounding convention): ``[0, 0]`` is the top-left corner of that image and
``[1000, 1000]`` its bottom-right corner, whatever its size in pixels. Every view remembers its
*footprint*: the square of the full-resolution source image it shows, in continuous source pixel
coordinates (pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``, x to the right, y down). A point
on view k therefore maps to the source through view k's footprint alone, so zooms and crops of
zooms compose without any bookkeeping of their own.

Placement. Views are square, so footprints are squares in source pixels. A footprint that would
show area outside the source slides inward just enough to stay inside it; along an axis where it
is larger than the source (only the overview of a non-square source) it is centred instead, and
the uncovered part of the view is black (the sky). Footprints may be fractional: views are
resampled, never cut on a pixel grid.

Errors. ``ToolError`` is raised for every invalid argument a model can write; its message is for
the model: what was wrong, what is allowed, and the value it gave. Mistakes of the calling code
(a source of the wrong dtype, a view size of zero) raise ``TypeError``/``ValueError`` instead, so an
environment that turns ``ToolError`` into a tool message still fails loudly on its own bugs.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass

COORD_MAX = 1000
"""Tool coordinates run from 0 to COORD_MAX across the image the model was shown."""

MIN_SIDE = 4.0
"""Smallest footprint side, in source pixels: past native resolution nothing new appears."""


class ToolError(ValueError):
    """An invalid tool argument; the message is written for the model and shown to it."""


class _ShortRepr(reprlib.Repr):
    """``repr`` with limits, safe for any JSON-like value (huge integers included)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxdict = 6
        self.maxstring = 40
        self.maxother = 40

    def repr_int(self, x: int, level: int) -> str:  # noqa: D102
        if abs(x).bit_length() > 64:
            return f"<an integer of about {int(abs(x).bit_length() * 0.30103) + 1} digits>"
        return repr(x)


_SHORT = _ShortRepr()


def show(value: object, limit: int = 80) -> str:
    """A short, always-printable rendering of a value for an error message."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Footprint:
    """The region of the full-resolution source that a view shows, in source pixel coordinates.

    Attributes:
        x0: Left edge (continuous source x; may be negative only for a padded overview).
        y0: Top edge.
        x1: Right edge, ``x1 > x0``.
        y1: Bottom edge, ``y1 > y0``.
    """

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        vals = (self.x0, self.y0, self.x1, self.y1)
        if not all(math.isfinite(v) for v in vals) or self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(f"Footprint needs finite x0 < x1 and y0 < y1; got {vals}")

    @classmethod
    def full(cls, height: int, width: int) -> Footprint:
        """The overview footprint: the square of side ``max(height, width)`` centred on the source."""
        side = float(max(height, width))
        return cls((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)

    @property
    def width(self) -> float:
        """Width in source pixels."""
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        """Height in source pixels."""
        return self.y1 - self.y0

    @property
    def side(self) -> float:
        """The longer side in source pixels (footprints made by the tools are square)."""
        return max(self.width, self.height)

    @property
    def center(self) -> tuple[float, float]:
        """Centre in source pixel coordinates."""
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def to_source(self, x: float, y: float) -> tuple[float, float]:
        """Map a point in 0-1000 coordinates of this view to source pixel coordinates."""
        return (
            self.x0 + x / COORD_MAX * self.width,
            self.y0 + y / COORD_MAX * self.height,
        )

    def from_source(self, x: float, y: float) -> tuple[float, float]:
        """Map a source pixel coordinate to 0-1000 coordinates of this view (inverse of to_source)."""
        return (
            (x - self.x0) / self.width * COORD_MAX,
            (y - self.y0) / self.height * COORD_MAX,
        )

    def as_tuple(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` as plain floats (for traces and JSON)."""
        return (float(self.x0), float(self.y0), float(self.x1), float(self.y1))


def _place(center: float, side: float, extent: int) -> float:
    """Start of an interval of length ``side`` near ``center`` that stays inside ``[0, extent]``."""
    if side >= extent:
        return (extent - side) / 2
    return min(max(center - side / 2, 0.0), extent - side)


def place_square(cx: float, cy: float, side: float, height: int, width: int) -> Footprint:
    """A square footprint of ``side`` source pixels centred on ``(cx, cy)``, slid inside the source.

    Along each axis the square is centred on the requested point unless it would then show area
    outside the source; it then slides inward just enough (the point stays in view, off-centre).
    Along an axis where the square is longer than the source it is centred on the source.
    """
    x0 = _place(cx, side, width)
    y0 = _place(cy, side, height)
    return Footprint(x0, y0, x0 + side, y0 + side)


def random_square(side: float, height: int, width: int, rng) -> Footprint:
    """A square footprint of ``side`` source pixels at a uniformly random place inside the source.

    Along each axis the start is uniform over the positions that keep the square inside the
    source; along an axis where the square is at least as long as the source it is centred, as in
    :func:`place_square`. ``rng`` is a ``numpy.random.Generator`` (the caller's seeded one).
    """

    def start(extent: int) -> float:
        if side >= extent:
            return (extent - side) / 2
        return float(rng.uniform(0.0, extent - side))

    x0 = start(width)
    y0 = start(height)
    return Footprint(x0, y0, x0 + side, y0 + side)


def check_side(tool: str, side: float, parent: Footprint, what: str) -> None:
    """Raise ToolError when a footprint of ``side`` source pixels would be below ``MIN_SIDE``."""
    if side >= MIN_SIDE * (1 - 1e-9):
        return
    parent_side = parent.side
    if tool == "zoom":
        limit = parent_side / MIN_SIDE
        hint = (
            f"the largest factor on this image is {limit:.3g}"
            if limit > 1
            else "this image cannot be magnified further; zoom on an earlier image instead"
        )
    else:
        units = math.ceil(MIN_SIDE / parent_side * COORD_MAX)
        hint = f"on this image a box must span at least {units} units of 0-{COORD_MAX}"
    raise ToolError(
        f"{tool}: {what} would show only {side:.3g} source pixels across; views must span at least "
        f"{_fmt(MIN_SIDE)} source pixels, because past the native resolution nothing new appears "
        f"({hint})"
    )
