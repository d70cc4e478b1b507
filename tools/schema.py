"""What the model may write: argument specs, limits, and the schema of a declared signature.

A tool the model sees is declared once (in :mod:`astroreason.tools.registry`) as a small signature
whose ``Annotated`` types carry an argument spec (``Number``, ``Numbers``, ``Choice``) and whose
Google docstring is the text the model reads. :func:`describe` turns it into the JSON schema in the
OpenAI function-calling format (what Qwen3-VL's chat template and vLLM's hermes parser expect) and
:func:`check_arguments` checks a call against it. The tool functions in ``image_tools`` and
``spectrum_tools`` check their arguments with the same spec objects, so a bad value gets the same
message whichever way it comes.

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
from typing import Any, get_type_hints

from astroreason.tools.geometry import COORD_MAX, MIN_SIDE, ToolError, show

MAX_ZOOM = 16.0
"""Largest zoom factor per call: a bigger jump loses the context needed to aim it; zoom again."""

MIN_WINDOW_A = 5.0
"""Narrowest spectrum window (Angstrom): a few resolution elements of an SDSS-like spectrum."""

MAX_WINDOW_A = 3000.0
"""Widest spectrum window (Angstrom): wider ones add little over image 0, the whole spectrum."""

STRETCH_MODES = ("asinh", "linear")
"""Intensity stretches offered by the ``stretch`` tool."""


def _number_text(x: float) -> str:
    """A limit as the model reads it in a description (``%g``: ``16``, ``0.5``)."""
    return f"{x:g}"


def _int_if_whole(x: float) -> float | int:
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
            lo = f"{_number_text(self.minimum)} {'<' if self.exclusive_minimum else '<='} "
        if self.maximum is not None:
            hi = f" <= {_number_text(self.maximum)}"
        return f"{kind} with {lo}{name}{hi}" if lo or hi else kind

    def schema(self) -> dict[str, Any]:
        """The JSON schema fragment."""
        out: dict[str, Any] = {"type": "integer" if self.integer else "number"}
        if self.minimum is not None:
            key = "exclusiveMinimum" if self.exclusive_minimum else "minimum"
            out[key] = _int_if_whole(self.minimum)
        if self.maximum is not None:
            out["maximum"] = _int_if_whole(self.maximum)
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
        text = (
            f"{form}, {n} numbers from {_number_text(self.minimum)} to {_number_text(self.maximum)}"
        )
        if self.ordered_pairs:
            a, b, c, d = self.items
            text += f", with {a} < {c} and {b} < {d}"
        return text

    def schema(self) -> dict[str, Any]:
        """The JSON schema fragment."""
        n = len(self.items)
        lo, hi = _int_if_whole(self.minimum), _int_if_whole(self.maximum)
        item = {"type": "number", "minimum": lo, "maximum": hi}
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
        f"a bigger jump is hard to aim: to magnify more than {_number_text(MAX_ZOOM)}x, zoom again on "
        "the new image"
    ),
)
IMAGE_INDEX = Number(minimum=0, integer=True)
WAVELENGTH = Number(minimum=0, maximum=100_000, exclusive_minimum=True)  # Angstrom
STRETCH_MODE = Choice(STRETCH_MODES)

# --------------------------------------------------------------------------------------------
# the schema of a model-facing signature, and the check of a call against it
# --------------------------------------------------------------------------------------------
_TEXT = {
    "COORD_MAX": COORD_MAX,
    "MAX_ZOOM": _number_text(MAX_ZOOM),
    "MIN_SIDE": _number_text(MIN_SIDE),
    "MIN_WINDOW_A": _number_text(MIN_WINDOW_A),
    "MAX_WINDOW_A": _number_text(MAX_WINDOW_A),
    "IMAGE_INDEX": (
        "Which image to use: 0 is the first image, then 1, 2, ... for each image a tool returned, "
        "in order. Default 0."
    ),
}


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


def describe(
    name: str, signature: Callable
) -> tuple[dict[str, Any], dict[str, Spec], dict[str, Any]]:
    """(OpenAI schema, argument specs, defaults) of a model-facing signature declared as tool ``name``.

    The signature's ``Annotated`` types carry the specs and its Google docstring the text the model
    reads (``{NAME}`` placeholders filled from the limits above).
    """
    description, arg_text = _parse_docstring(signature.__doc__ or "")
    hints = get_type_hints(signature, include_extras=True)
    props: dict[str, Any] = {}
    specs: dict[str, Spec] = {}
    defaults: dict[str, Any] = {}
    required = []
    for pname, param in inspect.signature(signature).parameters.items():
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
    return schema, specs, defaults


def check_arguments(
    name: str, specs: dict[str, Spec], defaults: dict[str, Any], example: dict[str, Any], args: Any
) -> dict[str, Any]:
    """Check one call's arguments against a tool's specs; coerce and fill in defaults.

    See :func:`astroreason.tools.registry.validate_arguments`.
    """
    example_text = json.dumps(example)
    if not isinstance(args, dict):
        raise ToolError(
            f"{name}: arguments must be a JSON object like {example_text}; got {show(args)}"
        )
    extra = [k for k in args if k not in specs]
    if extra:
        raise ToolError(
            f"{name}: unexpected argument(s) {', '.join(show(k) for k in extra)}; "
            f"allowed: {', '.join(specs)}"
        )
    missing = [k for k in specs if k not in args and k not in defaults]
    if missing:
        raise ToolError(
            f"{name}: missing required argument(s) {', '.join(missing)}; e.g. {example_text}"
        )
    out = dict(defaults)
    for key, value in args.items():
        out[key] = specs[key].check(name, key, value)
    return out
