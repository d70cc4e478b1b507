"""Experimental conditions: the same environment, one field changed.

* ``tools``: the overview plus tools (the method).
* ``no-tools``: the same overview, answer at once.
* ``no-tools-matched``: no tools, but the image at the pixel budget a tool run may spend (the fair
  baseline: without it a "zoom gain" may only be a resolution gain).
* ``blank-tools``: tools run but return blank views (faithfulness probe: accuracy should drop).
* ``blind``: no image at all (must sit at the majority baseline, else something other than pixels
  carries the label).
* ``tools-off``: the tools arm's own checkpoint run as ``no-tools`` (the same overview, the no-tools
  prompt, no tools offered). A gain that survives here is in the weights, not in the looking.
* ``reinput``: tools offered and called as in ``tools`` (same schemas, validation, captions and
  call budget), but every successful call returns the overview again, at the view size (placebo:
  the same extra visual tokens with no new information; a tool gain must beat it).
* ``random-view``: tools as in ``tools``, but every successful call shows a random place at the
  requested scale (zoom: same factor, random centre; crop: same box size, random position;
  spectrum_window: same width, random position), drawn from the env's seeded RNG. The footprint
  recorded is the one shown, so the on-target rate scores it honestly (placebo: new pixels at the
  right scale, but not where the model looked).

Each condition is declared once, as a :class:`Condition` in ``CONDITION_SPECS``; the environment,
training and evaluation read its fields (``uses_tools``, ``blank_views``, ...), never its name.

A condition *label* ``NAME@TAG`` (e.g. ``tools@sft``, ``tools@grpo``) names the condition ``NAME``
run by a differently trained model: the environment behaves as in ``NAME`` (see
:func:`base_condition`), and the label keeps the runs apart in traces and reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Placebo = Literal["reinput", "random-view"]


@dataclass(frozen=True)
class Condition:
    """One experimental condition.

    Attributes:
        name: The condition's name (a key of ``CONDITION_SPECS``).
        uses_tools: Tools are offered (schemas in the prompt; calls run).
        blank_views: Tool views are replaced by black images.
        blind: No image at all, not even the overview.
        matched_pixels: No tools; the overview at the pixel budget a tool run may spend.
        placebo: What successful tool calls return instead of the requested view: ``reinput``
            (the overview again) or ``random-view`` (a random place at the requested scale);
            None for the real view.
        trainable: A model may be trained in this condition (SFT on oracle conversations, GRPO).
        description: One line for reports and help texts.
    """

    name: str
    uses_tools: bool = False
    blank_views: bool = False
    blind: bool = False
    matched_pixels: bool = False
    placebo: Placebo | None = None
    trainable: bool = False
    description: str = ""


CONDITION_SPECS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("tools", uses_tools=True, trainable=True, description="overview plus tools"),
        Condition("no-tools", trainable=True, description="the overview only, answer at once"),
        Condition(
            "no-tools-matched",
            matched_pixels=True,
            trainable=True,
            description="no tools, the overview at a tool run's pixel budget",
        ),
        Condition(
            "blank-tools",
            uses_tools=True,
            blank_views=True,
            description="tools return blank views (faithfulness probe)",
        ),
        Condition("blind", blind=True, description="no image at all (leakage probe)"),
        Condition(
            "tools-off",
            description="the tools arm's checkpoint with its tools switched off (no-tools prompt)",
        ),
        Condition(
            "reinput",
            uses_tools=True,
            placebo="reinput",
            trainable=True,
            description="tools return the overview again (placebo: more tokens, no new pixels)",
        ),
        Condition(
            "random-view",
            uses_tools=True,
            placebo="random-view",
            trainable=True,
            description="tools show a random place at the requested scale (placebo)",
        ),
    )
}
"""Every condition, by name, in report order."""

CONDITIONS = tuple(CONDITION_SPECS)
TOOL_CONDITIONS = tuple(n for n, c in CONDITION_SPECS.items() if c.uses_tools)
TRAINABLE_CONDITIONS = tuple(n for n, c in CONDITION_SPECS.items() if c.trainable)
CONTROL_CONDITIONS = tuple(
    n for n, c in CONDITION_SPECS.items() if c.trainable and (not c.uses_tools or c.placebo)
)
"""The arms a tool gain must hold against: they see the image but get no real view
(no-tools, no-tools-matched and the placebos)."""


def base_condition(label: str) -> str:
    """The condition a label names: ``tools@sft`` -> ``tools``; a plain name is returned as is.

    Purely textual (no check that the name is known; see :func:`check_condition`).
    """
    return str(label).split("@", 1)[0]


def check_condition(name: str) -> str:
    """Return ``name`` (a condition or a ``NAME@TAG`` label) if its base is known, else raise.

    Raises:
        ConfigError: The base is not a known condition, or the tag after ``@`` is empty.
    """
    from astroreason.errors import ConfigError

    if not isinstance(name, str):
        raise ConfigError(f"condition: expected a string, got {name!r}")
    base, at, tag = name.partition("@")
    if base not in CONDITION_SPECS:
        raise ConfigError(
            f"condition: unknown {name!r}; choose one of {', '.join(CONDITIONS)} "
            "(optionally NAME@TAG, e.g. tools@sft)"
        )
    if at and not tag.strip():
        raise ConfigError(f"condition: {name!r} has an empty tag after '@'")
    if at and not _TAG.fullmatch(tag):
        raise ConfigError(
            f"condition: tag {tag!r} of {name!r} may hold letters, digits, '.', '_' and '-' only "
            "(it names a folder inside the run folder)"
        )
    return name


_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A label's tag: it becomes part of a folder name, so no separators, no ``..``, at most 64 chars."""


def condition_spec(name: str) -> Condition:
    """The :class:`Condition` of a condition or label (``tools@sft`` -> ``tools``'s); checked."""
    return CONDITION_SPECS[base_condition(check_condition(name))]


def is_tool_condition(name: str | None) -> bool:
    """Whether ``name`` (a condition or label) offers tools; False for None or an unknown name."""
    spec = CONDITION_SPECS.get(base_condition(name)) if isinstance(name, str) else None
    return bool(spec is not None and spec.uses_tools)
