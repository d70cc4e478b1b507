"""Scripted policies: sanity bounds, test drivers and the source of SFT traces.

* ``random``: answers a uniformly random class (after a random tool call half of the time);
* ``majority``: always answers the given (training-majority) class;
* ``oracle``: reads the ground truth, looks where the evidence is (the galaxy's box, or the spectral
  window that decides the class) with one tool call when tools are offered, then answers correctly.

They read ``info["ground_truth"]``, which is why no model-backed policy may.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from astroreason.policies.base import Policy, PolicyReply
from astroreason.protocol import format_answer, format_tool_call
from astroreason.tools import TOOLS


def _tool_names(info: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in info.get("tools", [])]


def _calls_made(info: dict[str, Any]) -> int:
    return len(info.get("tool_calls", []))


def _class_names(info: dict[str, Any]) -> list[str]:
    return list(info["ground_truth"]["class_names"])


class MajorityPolicy(Policy):
    """Always answers one class (give it the training split's majority class)."""

    def __init__(self, label: int):
        self.label = int(label)
        self.name = "majority"

    async def act(self, info: dict[str, Any]) -> PolicyReply:
        """Answer the fixed class."""
        return PolicyReply(format_answer(_class_names(info)[self.label]))


class RandomPolicy(Policy):
    """Uniformly random answers, sometimes after a random tool call; seeded per episode.

    The choices follow (seed, row, sample, turn), so each sample of a row draws anew.
    """

    def __init__(self, seed: int = 0, tool_prob: float = 0.5):
        self.seed = seed
        self.tool_prob = tool_prob
        self.name = "random"

    async def act(self, info: dict[str, Any]) -> PolicyReply:
        """A random tool call (first turn, with probability ``tool_prob``) or a random answer."""
        ep = info["episode"]
        key = [self.seed, int(ep["row_id"]), int(info["turn"])]
        if ep.get("sample"):  # sample 0 keeps the seeds it always had
            key.append(int(ep["sample"]))
        rng = np.random.default_rng(key)
        names = _tool_names(info)
        if names and _calls_made(info) == 0 and rng.random() < self.tool_prob:
            name = names[int(rng.integers(len(names)))]
            args = TOOLS[name].random_args(rng, info["ground_truth"])
            return PolicyReply(format_tool_call(name, args))
        classes = _class_names(info)
        return PolicyReply(format_answer(classes[int(rng.integers(len(classes)))]))


ORACLE_IMAGE_TOOLS = ("crop", "zoom")
"""The image tools the oracle can aim at a ground-truth box (``OraclePolicy(tool=...)``)."""


class OraclePolicy(Policy):
    """Looks at the ground-truth evidence once (when tools exist), then answers correctly.

    Args:
        pad: Margin added around the ground-truth box, as a fraction of its size.
        tool: ``crop`` (the padded box) or ``zoom`` (its centre, ``zoom_factor``) for galaxies.
        grid: Snap coordinates (0-1000) to multiples of ``grid``: crop boxes outward, zoom centres
            to the nearest. 1 keeps them exact; a coarse grid gives a small model fewer digits
            to learn when its SFT data comes from this policy.
        zoom_factor: Magnification of ``zoom`` calls.
        window_grid: Snap ``spectrum_window`` bounds outward to multiples of this many Angstrom
            (fewer digits for a small model to learn); None rounds them to 0.1 A.
    """

    def __init__(
        self,
        pad: float = 0.15,
        tool: str = "crop",
        grid: int = 1,
        zoom_factor: float = 3,
        window_grid: float | None = None,
    ):
        if tool not in ORACLE_IMAGE_TOOLS:
            raise ValueError(f"tool: {tool!r}; choose {' or '.join(ORACLE_IMAGE_TOOLS)}")
        if not 1 <= grid <= 500:
            raise ValueError(f"grid: {grid}; must be in 1..500")
        if window_grid is not None and not window_grid > 0:
            raise ValueError(f"window_grid: {window_grid}; must be > 0 Angstrom")
        self.pad, self.tool, self.grid, self.zoom_factor = pad, tool, int(grid), zoom_factor
        self.window_grid = window_grid
        self.name = "oracle" if (tool, grid) == ("crop", 1) else f"oracle-{tool}-grid{grid}"

    async def act(self, info: dict[str, Any]) -> PolicyReply:
        """One tool call on the evidence, then the right answer."""
        gt = info["ground_truth"]
        names = _tool_names(info)
        ok_calls = [c for c in info.get("tool_calls", []) if c.get("ok")]
        if names and not ok_calls and _calls_made(info) == 0:
            if self.tool in names and gt.get("bbox") is not None:
                return PolicyReply(format_tool_call(self.tool, self.image_args(info)))
            if "spectrum_window" in names and gt.get("key_window") is not None:
                return PolicyReply(format_tool_call("spectrum_window", self.window_args(gt)))
        return PolicyReply(format_answer(gt["class_name"]))

    def window_args(self, gt: dict[str, Any]) -> dict[str, float]:
        """``spectrum_window`` arguments on the ground-truth key window (snapped by ``window_grid``)."""
        lo, hi = (float(v) for v in gt["key_window"])
        g = self.window_grid
        if g is None:
            return {"lambda_min": round(lo, 1), "lambda_max": round(hi, 1)}
        lo_g, hi_g = np.floor(lo / g) * g, np.ceil(hi / g) * g
        as_num = int if float(g).is_integer() else float
        return {"lambda_min": as_num(round(lo_g, 6)), "lambda_max": as_num(round(hi_g, 6))}

    def image_args(self, info: dict[str, Any]) -> dict[str, Any]:
        """The arguments of this oracle's image tool aimed at the ground-truth box."""
        if self.tool == "zoom":
            return {"center": self.zoom_center(info), "factor": self.zoom_factor}
        return {"bbox_2d": self.crop_box(info)}

    def _to_view(self, info: dict[str, Any]) -> tuple[list[float], float, float, float, float]:
        """The ground-truth box and the scale from source pixels to 0-1000 of image 0."""
        x0, y0, x1, y1 = info["ground_truth"]["bbox"]
        fx0, fy0, fx1, fy1 = info["views"][0]["footprint"]
        return [x0, y0, x1, y1], fx0, fy0, 1000.0 / (fx1 - fx0), 1000.0 / (fy1 - fy0)

    def crop_box(self, info: dict[str, Any]) -> list[int]:
        """The ground-truth box (source pixels), padded, in 0-1000 coordinates of image 0."""
        (x0, y0, x1, y1), fx0, fy0, sx, sy = self._to_view(info)
        pw, ph = (x1 - x0) * self.pad, (y1 - y0) * self.pad
        box = [x0 - pw, y0 - ph, x1 + pw, y1 + ph]
        g = self.grid
        nx0 = int(np.clip(np.floor((box[0] - fx0) * sx / g) * g, 0, 999))
        ny0 = int(np.clip(np.floor((box[1] - fy0) * sy / g) * g, 0, 999))
        nx1 = int(np.clip(np.ceil((box[2] - fx0) * sx / g) * g, nx0 + 1, 1000))
        ny1 = int(np.clip(np.ceil((box[3] - fy0) * sy / g) * g, ny0 + 1, 1000))
        return [nx0, ny0, nx1, ny1]

    def zoom_center(self, info: dict[str, Any]) -> list[int]:
        """The ground-truth box's centre in 0-1000 coordinates of image 0, on the grid."""
        (x0, y0, x1, y1), fx0, fy0, sx, sy = self._to_view(info)
        g = self.grid
        cx = int(np.clip(round(((x0 + x1) / 2 - fx0) * sx / g) * g, 0, 1000))
        cy = int(np.clip(round(((y0 + y1) / 2 - fy0) * sy / g) * g, 0, 1000))
        return [cx, cy]
