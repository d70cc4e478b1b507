"""One declaration per tool: what the model reads, how a call runs, its caption, and where it exists.

Each tool is declared here once, by a model-facing signature (``Annotated`` argument specs and a
Google docstring, see :mod:`astroreason.tools.schema`) registered with :func:`_tool`, which adds

* ``run(state, args) -> (view, footprint, caption)``: the call on validated arguments, where
  ``state`` is what the environment holds (:class:`ImageState` or :class:`SpectrumState`);
* ``caption(args)``: the text that comes back with the view;
* ``envs``: the environments that have the tool (``galaxy``, ``spectrum``);
* ``looks``: whether a successful call shows new source data at a place the model chose (zoom, crop,
  window: scored by the on-target rule) or only re-renders an image (stretch);
* ``random_args(rng, ground_truth)``: a call drawn at random, for the ``random`` policy.

Everything else derives from :data:`TOOLS`: the environments' tool sets and schemas, the TRL
adapter's tool methods, the scripted policies, the metrics' view-tool set and the tiny tokenizer's
corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from astroreason.tools.geometry import Footprint, ToolError, show
from astroreason.tools.image_tools import crop, stretch, zoom
from astroreason.tools.schema import (
    BBOX,
    CENTER,
    FACTOR,
    IMAGE_INDEX,
    STRETCH_MODE,
    WAVELENGTH,
    Spec,
    check_arguments,
    describe,
)
from astroreason.tools.spectrum_tools import spectrum_window


@dataclass(frozen=True)
class ImageState:
    """What an image tool reads: the full-resolution source and the images shown so far.

    Attributes:
        source: The full-resolution ``uint8`` source image.
        footprints: The source square of each image shown so far (0 = the overview).
        images: The images shown so far, in order.
        view_size: Side in pixels of a new view.
    """

    source: np.ndarray
    footprints: Sequence[Footprint]
    images: Sequence[np.ndarray]
    view_size: int


@dataclass(frozen=True)
class SpectrumState:
    """What a spectrum tool reads: the spectrum and the size of a window's plot.

    Attributes:
        wavelength: Wavelengths in Angstrom, increasing.
        flux: Flux per sample.
        mask: True where a sample is bad (None: all good).
        width: Plot width in pixels.
        height: Plot height in pixels.
        table: Append the numeric table of the window to its caption.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    mask: np.ndarray | None
    width: int
    height: int
    table: bool = False


Run = Callable[[Any, dict[str, Any]], tuple[np.ndarray, Any, str]]


@dataclass(frozen=True)
class ToolDecl:
    """One declared tool (see the module docstring).

    Attributes:
        name: The tool name the model writes.
        schema: The OpenAI function-calling schema.
        specs: Argument name -> spec.
        defaults: Defaults of the optional arguments.
        example: A valid argument dict, quoted in error messages.
        signature: The model-facing signature (TRL's adapter methods copy it).
        envs: Environments that have the tool.
        looks: A successful call shows source data at a place the model chose.
        run: ``run(state, args) -> (view, footprint, caption)`` on validated arguments.
        caption: ``caption(args)``, the text returned with the view.
        random_args: ``random_args(rng, ground_truth)``, a call drawn at random.
    """

    name: str
    schema: dict[str, Any]
    specs: dict[str, Spec]
    defaults: dict[str, Any]
    example: dict[str, Any]
    signature: Callable
    envs: tuple[str, ...]
    looks: bool
    run: Run
    caption: Callable[[dict[str, Any]], str]
    random_args: Callable[[np.random.Generator, dict[str, Any]], dict[str, Any]]

    def check(self, args: Any) -> dict[str, Any]:
        """The call's arguments checked, coerced and completed; see :func:`validate_arguments`."""
        return check_arguments(self.name, self.specs, self.defaults, self.example, args)


TOOLS: dict[str, ToolDecl] = {}


def _tool(
    name: str,
    *,
    envs: tuple[str, ...],
    looks: bool,
    example: dict[str, Any],
    run: Run,
    caption: Callable[[dict[str, Any]], str],
    random_args: Callable[[np.random.Generator, dict[str, Any]], dict[str, Any]],
) -> Callable[[Callable], Callable]:
    """Register a model-facing signature as tool ``name`` with how it runs."""

    def register(signature: Callable) -> Callable:
        schema, specs, defaults = describe(name, signature)
        decl = ToolDecl(
            name,
            schema,
            specs,
            defaults,
            example,
            signature,
            envs,
            looks,
            run,
            caption,
            random_args,
        )
        decl.check(example)  # the example quoted in error messages must itself be valid
        TOOLS[name] = decl
        return signature

    return register


# ------------------------------------------------------------------------------------ captions
def _zoom_caption(args: dict[str, Any]) -> str:
    cx, cy = (round(v) for v in args["center"])
    return f"zoom x{args['factor']:g} of image {args['image_index']} around ({cx}, {cy})."


def _crop_caption(args: dict[str, Any]) -> str:
    box = ", ".join(str(round(v)) for v in args["bbox_2d"])
    return f"crop of image {args['image_index']}, box [{box}]."


def _stretch_caption(args: dict[str, Any]) -> str:
    return f"{args['mode']} stretch of image {args['image_index']}."


def _window_caption(args: dict[str, Any]) -> str:
    return f"spectrum {args['lambda_min']:.1f}-{args['lambda_max']:.1f} A"


# ------------------------------------------------------------------------------------- runners
def _run_zoom(s: ImageState, args: dict[str, Any]):
    parent = s.footprints[args["image_index"]]
    view, fp = zoom(s.source, parent, args["center"], args["factor"], s.view_size)
    return view, fp, _zoom_caption(args)


def _run_crop(s: ImageState, args: dict[str, Any]):
    view, fp = crop(s.source, s.footprints[args["image_index"]], args["bbox_2d"], s.view_size)
    return view, fp, _crop_caption(args)


def _run_stretch(s: ImageState, args: dict[str, Any]):
    j = args["image_index"]
    return stretch(s.images[j], args["mode"]), s.footprints[j], _stretch_caption(args)


def _run_window(s: SpectrumState, args: dict[str, Any]):
    return spectrum_window(
        s.wavelength,
        s.flux,
        s.mask,
        args["lambda_min"],
        args["lambda_max"],
        s.width,
        s.height,
        table=s.table,
    )


# ------------------------------------------------------------------------------- random calls
def _random_zoom(rng: np.random.Generator, gt: dict[str, Any]) -> dict[str, Any]:
    return {"center": [int(rng.integers(100, 900)), int(rng.integers(100, 900))], "factor": 2}


def _random_crop(rng: np.random.Generator, gt: dict[str, Any]) -> dict[str, Any]:
    x, y = int(rng.integers(0, 600)), int(rng.integers(0, 600))
    return {"bbox_2d": [x, y, x + 400, y + 400]}


def _random_stretch(rng: np.random.Generator, gt: dict[str, Any]) -> dict[str, Any]:
    return {"mode": str(rng.choice(STRETCH_MODE.values))}


def _random_window(rng: np.random.Generator, gt: dict[str, Any]) -> dict[str, Any]:
    lo, hi = gt["wavelength_range"]
    a = float(rng.uniform(lo, hi - 200))
    return {"lambda_min": round(a, 1), "lambda_max": round(a + 150, 1)}


# --------------------------------------------------------------------------- the declarations
@_tool(
    "zoom",
    envs=("galaxy",),
    looks=True,
    example={"center": [500, 500], "factor": 2},
    run=_run_zoom,
    caption=_zoom_caption,
    random_args=_random_zoom,
)
def _zoom(
    center: Annotated[list[float], CENTER],
    factor: Annotated[float, FACTOR],
    image_index: Annotated[int, IMAGE_INDEX] = 0,
) -> None:
    """Magnify part of an image.

    Returns a new image centred on a point that shows 1/factor of the chosen image's width and
    height, resampled from the full-resolution data, so details too small to see can appear. Near
    an edge the view slides inward to stay on the data. Past the native resolution (about
    {MIN_SIDE} data pixels across) nothing new appears.

    Args:
        center: The point to magnify, [x, y] in 0-{COORD_MAX} coordinates of the chosen image
            ([0, 0] is its top-left corner, [{COORD_MAX}, {COORD_MAX}] its bottom-right corner).
        factor: How much to magnify, 1 < factor <= {MAX_ZOOM}; 2 shows half the width. To magnify
            more, zoom again on the new image.
        image_index: {IMAGE_INDEX}
    """


@_tool(
    "crop",
    envs=("galaxy",),
    looks=True,
    example={"bbox_2d": [250, 250, 750, 750]},
    run=_run_crop,
    caption=_crop_caption,
    random_args=_random_crop,
)
def _crop(
    bbox_2d: Annotated[list[float], BBOX],
    image_index: Annotated[int, IMAGE_INDEX] = 0,
) -> None:
    """Look closer at a rectangular region of an image.

    Returns a new image of the region, resampled from the full-resolution data. A box that is not
    square is widened to a square around its centre, so the new image is not distorted.

    Args:
        bbox_2d: The region, [x1, y1, x2, y2] in 0-{COORD_MAX} coordinates of the chosen image:
            its top-left (x1, y1) and bottom-right (x2, y2) corners, x1 < x2 and y1 < y2.
        image_index: {IMAGE_INDEX}
    """


@_tool(
    "spectrum_window",
    envs=("spectrum",),
    looks=True,
    example={"lambda_min": 6500, "lambda_max": 6620},
    run=_run_window,
    caption=_window_caption,
    random_args=_random_window,
)
def _spectrum_window(
    lambda_min: Annotated[float, WAVELENGTH],
    lambda_max: Annotated[float, WAVELENGTH],
) -> None:
    """Plot part of the spectrum in detail.

    Returns a plot of the flux between two wavelengths at the full width of the image, so lines
    blended together in the plot of the whole spectrum can be told apart. The axis is labelled in
    Angstrom; grey bands mark bad data.

    Args:
        lambda_min: Start of the window in Angstrom, as read on the plot's wavelength axis.
        lambda_max: End of the window in Angstrom. The window must span {MIN_WINDOW_A} to
            {MAX_WINDOW_A} Angstrom and overlap the data.
    """


@_tool(
    "stretch",
    envs=("galaxy",),
    looks=False,
    example={"mode": "asinh"},
    run=_run_stretch,
    caption=_stretch_caption,
    random_args=_random_stretch,
)
def _stretch(
    mode: Annotated[str, STRETCH_MODE],
    image_index: Annotated[int, IMAGE_INDEX] = 0,
) -> None:
    """Show an image again with its brightness rescaled to bring out faint structure.

    Returns the same region with a new intensity scale; no new detail is added.

    Args:
        mode: "asinh" brightens faint features while keeping bright cores from saturating;
            "linear" spreads the range between the faintest and the brightest pixels.
        image_index: {IMAGE_INDEX}
    """


TOOL_SCHEMAS: dict[str, dict[str, Any]] = {name: decl.schema for name, decl in TOOLS.items()}
"""Tool name -> OpenAI function-calling schema, for the chat template / vLLM ``tools=``."""

VIEW_TOOLS: tuple[str, ...] = tuple(name for name, decl in TOOLS.items() if decl.looks)
"""Tools whose successful calls show source data where the model chose (the on-target rule)."""


def tools_for(env: str) -> tuple[str, ...]:
    """The tools environment ``env`` (``galaxy``, ``spectrum``) has, in declaration order."""
    return tuple(name for name, decl in TOOLS.items() if env in decl.envs)


def validate_arguments(name: str, args: Any) -> dict[str, Any]:
    """Check a tool call's arguments against the tool's declaration; coerce and fill defaults.

    Numbers come back as floats, whole-number arguments (``image_index``) as ints (``2.0`` is
    accepted as 2), points and boxes as lists of floats; optional arguments that were left out are
    filled in with their defaults. Booleans and numeric strings are not numbers.

    Args:
        name: The tool name the model wrote.
        args: The arguments the model wrote (already parsed from JSON).

    Returns:
        A new dict with every argument of the tool.

    Raises:
        ToolError: The tool is unknown, or an argument is missing, extra, of the wrong type or out
            of range; the message says what is allowed.
    """
    decl = TOOLS.get(name) if isinstance(name, str) else None
    if decl is None:
        raise ToolError(f"unknown tool {show(name)}; available: {', '.join(TOOLS)}")
    return decl.check(args)
