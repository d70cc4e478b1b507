"""The on-target rule, one definition for training and evaluation: did a view land on the evidence?

A successful call of a view tool (``VIEW_TOOLS``, declared in :mod:`astroreason.tools.registry`:
``zoom``/``crop``, spectra: ``spectrum_window``) is on target when its footprint
contains the centre of the ground-truth box (window), covers at least half of it, and is smaller
than the whole field, so that a "crop" of the whole image does not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from astroreason.conditions import is_tool_condition
from astroreason.tools import VIEW_TOOLS  # the tools whose successful calls count for on-target


def _area(box: Sequence[float]) -> float:
    """Area of a box ``x0, y0, x1, y1``, or length of an interval ``lo, hi``."""
    if len(box) == 2:
        return max(0.0, float(box[1]) - float(box[0]))
    return max(0.0, float(box[2]) - float(box[0])) * max(0.0, float(box[3]) - float(box[1]))


def _intersection(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) == 2:
        return max(0.0, float(min(a[1], b[1]) - max(a[0], b[0])))
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, float(w)) * max(0.0, float(h))


def on_target(
    footprint: Sequence[float] | None, bbox: Sequence[float] | None, field: Sequence[float] | None
) -> bool:
    """Whether a view's footprint is "on target" (the module docstring's rule).

    Works on boxes ``x0, y0, x1, y1`` (galaxies: source pixels) or on intervals ``lo, hi``
    (spectra: wavelength windows in Angstrom); all three arguments must have the same kind.
    ``field`` is the overview's footprint.
    """
    if footprint is None or bbox is None or field is None:
        return False
    d = len(footprint)
    if d not in (2, 4) or len(bbox) != d or len(field) != d:
        return False
    if d == 2:
        c = (bbox[0] + bbox[1]) / 2.0
        contains = footprint[0] <= c <= footprint[1]
    else:
        cx, cy = (bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0
        contains = footprint[0] <= cx <= footprint[2] and footprint[1] <= cy <= footprint[3]
    b_area = _area(bbox)
    covers = b_area > 0 and _intersection(footprint, bbox) >= 0.5 * b_area
    smaller = _area(footprint) < _area(field) * (1.0 - 1e-9)
    return bool(contains and covers and smaller)


def calls_on_target(
    condition: str | None, ground_truth: dict[str, Any] | None, views: Any, tool_calls: Any
) -> bool | None:
    """Whether any successful view call of an episode is on target; None when unscorable.

    Takes the fields of the env's ``info`` (``views``, ``tool_calls``) or of a trace record's
    ``logs``. The target is ``ground_truth["bbox"]`` (galaxies) or ``["key_window"]`` (spectra).
    Unscored: a condition without tools, no target, or no overview footprint. Conditions with
    tools include the placebos (the footprint logged is the one shown, so their views score as
    they land) and ``NAME@TAG`` labels.
    """
    if not is_tool_condition(condition):
        return None
    gt = ground_truth or {}
    target = gt.get("bbox") if gt.get("bbox") is not None else gt.get("key_window")
    if target is None or not views or views[0].get("footprint") is None:
        return None
    field = views[0]["footprint"]
    return any(
        c.get("ok") and c.get("name") in VIEW_TOOLS and on_target(c.get("footprint"), target, field)
        for c in tool_calls or []
    )


def episode_on_target(record: dict[str, Any]) -> bool | None:
    """:func:`calls_on_target` of a trace record."""
    logs = record.get("logs") or {}
    return calls_on_target(
        record.get("condition"),
        record.get("ground_truth"),
        logs.get("views"),
        logs.get("tool_calls"),
    )
