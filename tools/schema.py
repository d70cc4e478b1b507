"""What the model may write: argument specs, the tool schemas, and ``validate_arguments``.

Each tool the model sees is declared once below as a small signature whose ``Annotated`` types carry
an argument spec (``Number``, ``Numbers``, ``Choice``) and whose Google docstring is the text the
model reads. From that one declaration come both the JSON schema in the OpenAI function-calling
format (what Qwen3-VL's chat template and vLLM's hermes parser expect) and the checks of
``validate_arguments``. The tool functions in ``image_tools`` and ``spectrum_tools`` check their
arguments with the same spec objects, so a bad value gets the same message whichever way it comes.

Limits (``MAX_ZOOM``, window widths, ...) live here as constants and are written into the
descriptions through ``{NAME}`` placeholders, so the text never disagrees with the check.

``image_index`` is described here but resolved by the environment: it picks among the images the
model has seen so far (0 = the overview, then each returned view in order).
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_type_hints

from astroreason.tools.geometry import COORD_MAX, MIN_SIDE, ToolError, show

MAX_ZOOM = 16.0
"""Largest zoom factor per call: a bigger jump loses the context needed to aim it; zoom again."""

MIN_WINDOW_A = 5.0
"""Narrowest spectrum window (Angstrom): a few resolution elements of an SDSS-like spectrum."""

MAX_WINDOW_A = 3000.0
"""Widest spectrum window (Angstrom): wider ones add little over image 0, the whole spectrum."""

STRETCH_MODES = ("asinh", "linear")
"""Intensity stretches offered by the ``stretch`` tool."""


def _num(x: float) -> str:
    return f"{x:g}"


def _plain(x: float) -> float | int:
    """Whole floats as ints, so schemas read ``16`` rather than ``16.0``."""
    return int(x) if float(x).is_integer() else x


# --------------------------------------------------------------------------------------------
# argument specs: each gives a JSON schema fragment and a check with a message for the model
# --------------------------------------------------------------------------------------------
def _as_float(tool: str, name: str, value: Any, allowed: str) -> float:
    """``value`` as a finite float, or ToolError; bools and numeric strings are not numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kind = "text" if isinstance(value, str) else type(value).__name__
        if value is None:
            kind = "null"
        raise ToolError(f"{tool}: {name} must be {allowed}; got {show(value)} ({kind})")
    try:
        x = float(value)
    except OverflowError:
        raise ToolError(f"{tool}: {name} must be {allowed}; got {show(value)}") from None
    if not math.isfinite(x):
        raise ToolError(f"{tool}: {name} must be {allowed}; got {show(value)}")
    return x


@dataclass(frozen=True)
class Number:
    """A JSON number (an integer if ``integer``), optionally bounded; booleans are rejected.

    Attributes:
        minimum: Smallest allowed value (None: unbounded).
        maximum: Largest allowed value (None: unbounded).
        exclusive_minimum: The minimum itself is not allowed.
        integer: Only whole numbers (``2.0`` is accepted as 2).
        note_low: Why the minimum is what it is; added to messages for values below it.
        note_high: Why the maximum is what it is; added to messages for values above it.
    """

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    integer: bool = False
    note_low: str = ""
    note_high: str = ""

    def allowed(self, name: str) -> str:
        """What is allowed, in words (e.g. ``a number with 1 < factor <= 16``)."""
        kind = "a whole number" if self.integer else "a number"
        lo = hi = ""
        if self.minimum is not None:
            lo = f"{_num(self.minimum)} {'<' if self.exclusive_minimum else '<='} "
        if self.maximum is not None:
            hi = f" <= {_num(self.maximum)}"
        return f"{kind} with {lo}{name}{hi}" if lo or hi else kind

    def schema(self) -> dict[str, Any]:
        """The JSON schema fragment."""
        out: dict[str, Any] = {"type": "integer" if self.integer else "number"}
        if self.minimum is not None:
            key = "exclusiveMinimum" if self.exclusive_minimum else "minimum"
            out[key] = _plain(self.minimum)
        if self.maximum is not None:
            out["maximum"] = _plain(self.maximum)
        return out

    def check(self, tool: str, name: str, value: Any) -> float | int:
        """Return the value as a float (int if ``integer``), or raise ToolError."""
        allowed = self.allowed(name)
        x = _as_float(tool, name, value, allowed)
        low = self.minimum is not None and (
            x < self.minimum or (self.exclusive_minimum and x == self.minimum)
        )
        high = self.maximum is not None and x > self.maximum
        if low or high:
            note = self.note_low if low else self.note_high
            note = f" ({note})" if note else ""
            raise ToolError(f"{tool}: {name} must be {allowed}; got {show(value)}{note}")
        if not self.integer:
            return x
        if not x.is_integer():
            raise ToolError(f"{tool}: {name} must be {allowed}; got {show(value)}")
        return int(value) if isinstance(value, numbers.Integral) else int(x)


@dataclass(frozen=True)
class Numbers:
    """A fixed-length JSON array of bounded numbers, such as a point or a box.

    Attributes:
        items: The names of the entries, e.g. ``("x", "y")``.
        minimum: Smallest allowed entry.
        maximum: Largest allowed entry.
        ordered_pairs: For boxes ``[x1, y1, x2, y2]``: require ``x1 < x2`` and ``y1 < y2``.
    """

    items: tuple[str, ...]
    minimum: float = 0
    maximum: float = COORD_MAX
    ordered_pairs: bool = False

    def allowed(self) -> str:
        """What is allowed, in words."""
        form = "[" + ", ".join(self.items) + "]"
        n = len(self.items)
        text = f"{form}, {n} numbers from {_num(self.minimum)} to {_num(self.maximum)}"
        if self.ordered_pairs:
            a, b, c, d = self.items
            text += f", with {a} < {c} and {b} < {d}"
        return text

    def schema(self) -> dict[str, Any]:
        """The JSON schema fragment."""
        n = len(self.items)
        item = {"type": "number", "minimum": _plain(self.minimum), "maximum": _plain(self.maximum)}
        return {"type": "array", "items": item, "minItems": n, "maxItems": n}

    def check(self, tool: str, name: str, value: Any) -> list[float]:
        """Return the entries as floats, or raise ToolError."""
        allowed = self.allowed()
        n = len(self.items)

        def fail(why: str) -> ToolError:
            return ToolError(f"{tool}: {name} must be {allowed}; got {show(value)} ({why})")

        if not isinstance(value, (list, tuple)):
            kind = "text" if isinstance(value, str) else type(value).__name__
            raise fail("null" if value is None else f"{kind}, not a list")
        if len(value) != n:
            raise fail(f"{len(value)} entries, not {n}")
        out = []
        for item_name, v in zip(self.items, value, strict=True):
            try:
                x = _as_float(tool, name, v, allowed)
            except ToolError:
                raise fail(f"{item_name} is not a finite number") from None
            if not self.minimum <= x <= self.maximum:
                raise fail(f"{item_name} is out of range")
            out.append(x)
        if self.ordered_pairs:
            if not out[0] < out[2]:
                raise fail(f"{self.items[0]} must be less than {self.items[2]}")
            if not out[1] < out[3]:
                raise fail(f"{self.items[1]} must be less than {self.items[3]}")
        return out


@dataclass(frozen=True)
class Choice:
    """One of a few strings.

    Attributes:
        values: The allowed strings.
    """

    values: tuple[str, ...]

    def schema(self) -> dict[str, Any]:
        """The JSON schema fragment."""
        return {"type": "string", "enum": list(self.values)}

    def check(self, tool: str, name: str, value: Any) -> str:
        """Return the value, or raise ToolError listing the choices."""
        if not isinstance(value, str) or value not in self.values:
            choices = ", ".join(repr(v) for v in self.values)
            raise ToolError(f"{tool}: {name} must be one of {choices}; got {show(value)}")
        return value


Spec = Number | Numbers | Choice

CENTER = Numbers(("x", "y"))
BBOX = Numbers(("x1", "y1", "x2", "y2"), ordered_pairs=True)
FACTOR = Number(
    minimum=1,
    maximum=MAX_ZOOM,
    exclusive_minimum=True,
    note_low="zooming out is not possible: image 0 shows the whole field",
    note_high=(
        f"a bigger jump is hard to aim: to magnify more than {_num(MAX_ZOOM)}x, zoom again on "
        "the new image"
    ),
)
IMAGE_INDEX = Number(minimum=0, integer=True)
WAVELENGTH = Number(minimum=0, maximum=100_000, exclusive_minimum=True)  # Angstrom
STRETCH_MODE = Choice(STRETCH_MODES)

# --------------------------------------------------------------------------------------------
# the model-facing declarations: signatures + docstrings are the single source of the schemas
# --------------------------------------------------------------------------------------------
_TEXT = {
    "COORD_MAX": COORD_MAX,
    "MAX_ZOOM": _num(MAX_ZOOM),
    "MIN_SIDE": _num(MIN_SIDE),
    "MIN_WINDOW_A": _num(MIN_WINDOW_A),
    "MAX_WINDOW_A": _num(MAX_WINDOW_A),
    "IMAGE_INDEX": (
        "Which image to use: 0 is the first image, then 1, 2, ... for each image a tool returned, "
        "in order. Default 0."
    ),
}


@dataclass(frozen=True)
class ToolDecl:
    """One declared tool: its schema, argument specs, defaults and an example call.

    Attributes:
        name: The tool name the model writes.
        schema: The OpenAI function-calling schema.
        specs: Argument name -> spec.
        defaults: Defaults of the optional arguments.
        example: A valid argument dict, quoted in error messages.
    """

    name: str
    schema: dict[str, Any]
    specs: dict[str, Spec]
    defaults: dict[str, Any]
    example: dict[str, Any]


TOOLS: dict[str, ToolDecl] = {}


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google docstring into (description, {arg: text}); continuation lines are joined."""
    doc = inspect.cleandoc(doc)
    head, _, args_block = doc.partition("\nArgs:\n")
    description = " ".join(head.split())
    args: dict[str, str] = {}
    current = None
    for line in args_block.splitlines():
        m = re.match(r"^    (\w+): (.*)$", line)
        if m:
            current = m.group(1)
            args[current] = m.group(2).strip()
        elif line.strip() and current is not None:
            args[current] += " " + line.strip()
    return description, args


def _declare(name: str, example: dict[str, Any]) -> Callable[[Callable], Callable]:
    """Register a model-facing signature as tool ``name`` (schema and specs from the signature)."""

    def register(fn: Callable) -> Callable:
        description, arg_text = _parse_docstring(fn.__doc__ or "")
        hints = get_type_hints(fn, include_extras=True)
        props: dict[str, Any] = {}
        specs: dict[str, Spec] = {}
        defaults: dict[str, Any] = {}
        required = []
        for pname, param in inspect.signature(fn).parameters.items():
            spec = hints[pname].__metadata__[0]
            specs[pname] = spec
            prop = spec.schema()
            prop["description"] = arg_text[pname].format(**_TEXT)
            if param.default is inspect.Parameter.empty:
                required.append(pname)
            else:
                defaults[pname] = prop["default"] = param.default
            props[pname] = prop
        schema = {
            "type": "function",
            "function": {
                "name": name,
                "description": description.format(**_TEXT),
                "parameters": {
                    "type": "object",
                    "properties": props,
                    "required": required,
                    "additionalProperties": False,
                },
            },
        }
        TOOLS[name] = ToolDecl(name, schema, specs, defaults, example)
        return fn

    return register


@_declare("zoom", example={"center": [500, 500], "factor": 2})
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


@_declare("crop", example={"bbox_2d": [250, 250, 750, 750]})
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


@_declare("spectrum_window", example={"lambda_min": 6500, "lambda_max": 6620})
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


@_declare("stretch", example={"mode": "asinh"})
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
    example = _example(decl)
    if not isinstance(args, dict):
        raise ToolError(f"{name}: arguments must be a JSON object like {example}; got {show(args)}")
    extra = [k for k in args if k not in decl.specs]
    if extra:
        raise ToolError(
            f"{name}: unexpected argument(s) {', '.join(show(k) for k in extra)}; "
            f"allowed: {', '.join(decl.specs)}"
        )
    missing = [k for k in decl.specs if k not in args and k not in decl.defaults]
    if missing:
        raise ToolError(
            f"{name}: missing required argument(s) {', '.join(missing)}; e.g. {example}"
        )
    out = dict(decl.defaults)
    for key, value in args.items():
        out[key] = decl.specs[key].check(name, key, value)
    return out


def _example(decl: ToolDecl) -> str:
    return json.dumps(decl.example)
