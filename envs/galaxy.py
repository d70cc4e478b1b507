"""``AstroReason/Galaxy-v0``: classify a galaxy image, zooming and cropping at full resolution.

Description:
    One episode shows one galaxy cutout from a labelled source (Galaxy10 DECaLS or SDSS HDF5, the
    Hugging Face parquet exports, an image folder, or the synthetic set). The model first sees the
    whole cutout downsampled to ``view_size``; ``zoom`` and ``crop`` read the full-resolution source
    pixels and return a new ``view_size`` view. Coordinates are 0-1000 of the image named by
    ``image_index`` (0 = overview, then each view in order), so nested zooms compose.

Action Space:
    ``Text``: the model's raw reply (one ``<tool_call>`` or one ``<answer>``; see
    :mod:`astroreason.protocol`).

Observation Space:
    ``Dict(image=Box(0, 255, (S, S, 3), uint8), text=Text)``: the newest image (zeros when there is
    none) and the newest message text. ``S`` is ``view_size``, or the matched side in
    ``no-tools-matched``. ``info["messages"]`` holds the whole conversation.

    ``obs="tokens"`` shows the model no image: each view (the overview and every tool view) is
    encoded by an image codec (``codec``: the shipped ``tiny-vq``, a codec folder, or
    ``aion:FOLDER``) and the message carries its ids as text, ``<v12><v7><v201>...``, row by row
    (a ``tokens`` block, which also keeps the decoded image for the viewer). Every condition holds
    as in pixels: blank views are the tokens of a black view, ``reinput`` the overview's tokens
    again, blind no tokens at all, and ``no-tools-matched`` the overview at the side whose token
    count is nearest to a tool run's (the overview's plus ``max_tool_calls`` views').

Placebos:
    In ``reinput`` a successful call shows the overview again; in ``random-view`` it shows a
    square of the requested footprint's side at a uniformly random place inside the image (zoom:
    same factor, crop: same box size; a ``stretch`` stretches a random view of its parent's side),
    drawn with the env's RNG (``reset(seed=...)`` makes it reproducible). Captions are those of the
    real call; the footprint recorded is the one shown.

Rewards:
    ``RewardConfig``: +1 for a correct answer, ``-call_cost`` per tool call, ``-format_penalty`` per
    invalid reply, ``tool_bonus`` only when the answer is right.

Episode End:
    Terminated on a valid answer; truncated (``info["over_turn"] = True``) after ``max_turns``
    replies without one.

Arguments:
    ``gymnasium.make("AstroReason/Galaxy-v0", data=PATH_OR_SOURCE, split="test", **GalaxyEnvConfig)``;
    ``split`` is ``train``, ``val``, ``test`` (the persisted split) or ``all``.

Version History:
    * v0: first version (zoom, crop; conditions tools, no-tools, no-tools-matched, blank-tools, blind);
      later, without changing any existing condition, the placebo conditions ``reinput`` (each tool
      view is the overview again) and ``random-view`` (a random place at the requested scale).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from astroreason.codecs import tokens_text
from astroreason.data.quality.boxes import with_target_boxes
from astroreason.envs.base import EnvConfig, ToolEnv, check_view_side, make_config
from astroreason.errors import ConfigError
from astroreason.protocol import tokens_hint
from astroreason.tools import (
    ImageState,
    overview,
    random_square,
    render_view,
    stretch,
    tools_for,
)


@dataclass(frozen=True)
class GalaxyEnvConfig(EnvConfig):
    """Galaxy environment settings (plus those of :class:`EnvConfig`).

    Attributes:
        view_size: Side in pixels of every view the model sees (overview and tool views), an
            integer in :data:`~astroreason.envs.base.VIEW_SIDE_RANGE`.
        tools: Tools offered in tool conditions (``zoom``, ``crop``, optionally ``stretch``).
        obs: How views reach the model: ``pixels`` (images) or ``tokens`` (codec ids as text).
        codec: The image codec of ``obs="tokens"`` (see :func:`astroreason.codecs.open_codec`).
    """

    view_size: int = 128
    tools: tuple[str, ...] = ("zoom", "crop")
    obs: str = "pixels"
    codec: str = "tiny-vq"

    def __post_init__(self) -> None:
        check_view_side("view_size", self.view_size)


OBS_MODES = ("pixels", "tokens")
"""How views reach the model (``GalaxyEnvConfig.obs``, ``--obs``)."""


def matched_side(view_size: int, max_tool_calls: int, source_side: int, unit: int = 32) -> int:
    """Side of the ``no-tools-matched`` image: the pixels a tool run may see, as one image.

    A tool run sees the overview plus up to ``max_tool_calls`` views of ``view_size``^2 pixels; the
    matched image has that many pixels, rounded to a multiple of ``unit`` (32: Qwen3-VL's token
    size; a codec's patch in the ``tokens`` observation, so the token counts match), capped at the
    source's native side (rounded down to ``unit``).
    """
    side = view_size * math.sqrt(1 + max_tool_calls)
    side = int(round(side / unit) * unit) or view_size
    cap = max(source_side // unit * unit, view_size)
    return max(view_size, min(side, cap))


@functools.lru_cache(maxsize=4)
def _shared_codec(spec: str):
    """One codec per spec and process, shared by every env (codecs are stateless).

    TRL makes an env per rollout, and an AION codec is a torch model: load it once. A folder
    rebuilt while the process runs is not read again.
    """
    from astroreason.codecs import open_codec

    return open_codec(spec)


class GalaxyEnv(ToolEnv):
    """Multi-turn galaxy classification with zoom and crop (see the module docstring)."""

    env_name = "galaxy"
    data_kind = "image"

    def __init__(
        self,
        data: Any,
        split: str = "test",
        config: GalaxyEnvConfig | None = None,
        render_mode: str | None = "rgb_array",
        **overrides: Any,
    ):
        cfg = make_config(GalaxyEnvConfig, config, overrides)
        unknown = set(cfg.tools) - set(tools_for(self.env_name))
        if unknown:
            raise ConfigError(
                f"tools: unknown {sorted(unknown)}; galaxy tools are "
                + ", ".join(tools_for(self.env_name))
            )
        self.tool_names = tuple(cfg.tools)
        self._side = cfg.view_size
        self.codec = self._open_codec(cfg)
        super().__init__(data, split, cfg)
        if self.condition.uses_tools:
            # Files without a target box (Galaxy10, image folders) get the central galaxy's box
            # from source extraction, cached beside the data: the teacher aims at it, metrics score it.
            self.source = with_target_boxes(self.source, rows=self.rows)
        if self.condition.matched_pixels:
            first = self.source[int(self.rows[0])].image
            unit = self.codec.patch if self.codec is not None else 32
            self._side = matched_side(cfg.view_size, cfg.max_tool_calls, max(first.shape[:2]), unit)
            h = self._side
            from gymnasium import spaces

            self.observation_space["image"] = spaces.Box(0, 255, shape=(h, h, 3), dtype=np.uint8)

    @staticmethod
    def _open_codec(cfg: GalaxyEnvConfig):
        if cfg.obs not in OBS_MODES:
            raise ConfigError(f"obs: unknown {cfg.obs!r}; choose {' or '.join(OBS_MODES)}")
        if cfg.obs == "pixels":
            return None
        codec = _shared_codec(cfg.codec)
        if cfg.view_size % codec.patch:
            raise ConfigError(
                f"view_size: {cfg.view_size} is not a multiple of codec {codec.name}'s patch "
                f"{codec.patch} (tokens observation)"
            )
        return codec

    def _image_hint(self) -> str:
        return tokens_hint(self.codec.name, self.codec.patch) if self.codec is not None else ""

    def _view_block(self, image: np.ndarray) -> dict:
        if self.codec is None:
            return super()._view_block(image)
        grid = self.codec.encode(image)
        return {
            "type": "tokens",
            "text": tokens_text(grid) + "\n",
            "shape": [int(grid.shape[0]), int(grid.shape[1])],
            "image": self.codec.decode(grid),
        }

    def _image_shape(self) -> tuple[int, int]:
        return self._side, self._side

    def _first_view(self, sample):
        if self.condition.blind:
            return None, None
        self._source = np.asarray(sample.image)
        return overview(self._source, self._side)

    def _tool_state(self) -> ImageState:
        return ImageState(self._source, self._footprints, self._images, self.cfg.view_size)

    def _placebo_view(self, name, args, view, footprint, caption):
        if self.condition.placebo != "random-view":
            return super()._placebo_view(name, args, view, footprint, caption)
        h, w = self._source.shape[:2]
        fp = random_square(footprint.side, h, w, self.np_random)
        shown = render_view(self._source, fp, self.cfg.view_size)
        if name == "stretch":
            shown = stretch(shown, args.get("mode", "asinh"))
        return shown, fp, caption

    def _add_view(self, image, footprint, kind, parent):
        super()._add_view(image, footprint, kind, parent)
        if kind == "overview":
            self._footprints = []
        self._footprints.append(footprint)

    def _ground_truth(self, sample) -> dict[str, Any]:
        bbox = sample.meta.get("bbox")
        return {
            "label": int(sample.label),
            "class_name": self.class_names[sample.label],
            "class_names": list(self.class_names),
            "bbox": [float(v) for v in np.asarray(bbox).ravel()[:4]] if bbox is not None else None,
            "bbox_method": sample.meta.get("bbox_method", "file") if bbox is not None else None,
        }
