"""Tools the model calls to look again: zoom, crop and stretch of an image, windows of a spectrum.

Pure functions over numpy arrays that know nothing of chat templates or environments (this package
imports only numpy, PIL and the standard library). The environment resolves ``image_index`` to a
parent footprint, calls a tool, and turns a ``ToolError`` into a tool message for the model.

* ``geometry``: ``Footprint`` (the square of source pixels a view shows), 0-1000 coordinates,
  placement (``place_square``, and ``random_square`` for the ``random-view`` placebo), ``ToolError``;
* ``image_tools``: ``overview``, ``zoom``, ``crop``, ``stretch``;
* ``spectrum_tools``: ``render_spectrum``, ``spectrum_overview``, ``spectrum_window``, ``window_table``;
* ``schema``: argument specs and limits, and the schema of a model-facing signature;
* ``registry``: one declaration per tool (``TOOLS``: schema, runner, caption, the envs that have it),
  and what derives from it: ``TOOL_SCHEMAS`` (OpenAI function-calling format), ``VIEW_TOOLS``,
  ``tools_for(env)`` and ``validate_arguments``.
"""

from astroreason.tools.geometry import (
    COORD_MAX,
    MIN_SIDE,
    Footprint,
    ToolError,
    place_square,
    random_square,
)
from astroreason.tools.image_tools import crop, overview, render_view, stretch, zoom
from astroreason.tools.registry import (
    TOOL_SCHEMAS,
    TOOLS,
    VIEW_TOOLS,
    ImageState,
    SpectrumState,
    ToolDecl,
    tools_for,
    validate_arguments,
)
from astroreason.tools.schema import MAX_WINDOW_A, MAX_ZOOM, MIN_WINDOW_A, STRETCH_MODES
from astroreason.tools.spectrum_tools import (
    SpectralWindow,
    render_spectrum,
    spectrum_overview,
    spectrum_window,
    window_table,
)

__all__ = [
    "COORD_MAX",
    "MAX_WINDOW_A",
    "MAX_ZOOM",
    "MIN_SIDE",
    "MIN_WINDOW_A",
    "STRETCH_MODES",
    "TOOLS",
    "TOOL_SCHEMAS",
    "VIEW_TOOLS",
    "Footprint",
    "ImageState",
    "SpectralWindow",
    "SpectrumState",
    "ToolDecl",
    "ToolError",
    "crop",
    "overview",
    "place_square",
    "random_square",
    "render_spectrum",
    "render_view",
    "spectrum_overview",
    "spectrum_window",
    "stretch",
    "tools_for",
    "validate_arguments",
    "window_table",
    "zoom",
]
