"""Experimental conditions: the same environment, one field changed.

* ``tools``: the overview plus tools (the method).
* ``no-tools``: the same overview, answer at once.
* ``no-tools-matched``: no tools, but the image at the pixel budget a tool run may spend (the fair
  baseline: without it a "zoom gain" may only be a resolution gain).
* ``blank-tools``: tools run but return blank views (faithfulness probe: accuracy should drop).
* ``blind``: no image at all (must sit at the majority baseline, else something other than pixels
  carries the label).
"""

from __future__ import annotations

CONDITIONS = ("tools", "no-tools", "no-tools-matched", "blank-tools", "blind")
TOOL_CONDITIONS = ("tools", "blank-tools")


def check_condition(name: str) -> str:
    """Return ``name`` if it is a known condition, else raise ConfigError listing them."""
    from astroreason.errors import ConfigError

    if name not in CONDITIONS:
        raise ConfigError(f"condition: unknown {name!r}; choose one of {', '.join(CONDITIONS)}")
    return name
