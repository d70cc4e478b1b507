"""The shared multi-turn tool environment; ``GalaxyEnv`` and ``SpectrumEnv`` fill in the views.

One episode: ``reset`` shows the overview of one sample; each ``step`` takes the model's raw reply,
which is either one tool call (a new view comes back) or the final answer (the episode ends). Invalid
replies are observations, never exceptions: the reason goes back to the model as a message, counts an
invalid action, and the episode continues until ``max_turns`` (then it is truncated and flagged
``over_turn`` for over-turn masking in training).

The conversation in ``info["messages"]`` is in OpenAI chat format with images as
``{"type": "image", "image": ndarray}`` blocks; it is what policies send to the model. Ground truth lives
under ``info["ground_truth"]`` only, which no message ever renders. ``info["prediction"]`` is the
answered class index (-1 while there is none) and ``info["correct"]`` is False until a right answer
(plain types, so vector environments can stack infos).

Conditions (:mod:`astroreason.conditions`) are read from their ``Condition`` fields: tools offered
or not, blank views, and placebos, where a successful call is validated and captioned as in
``tools`` but :meth:`ToolEnv._placebo_view` decides what it shows; the footprint recorded is the
one shown (``requested_footprint`` keeps the one asked for).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from astroreason.conditions import Condition, check_condition, condition_spec
from astroreason.data import SampleSource, open_source, source_kind
from astroreason.data.quality.splits import split_for
from astroreason.errors import ConfigError
from astroreason.protocol import (
    FIRST_IMAGE_TEXT,
    TASKS,
    ParsedReply,
    PromptSpec,
    parse_reply,
    system_prompt,
)
from astroreason.reward import RewardConfig, grade
from astroreason.tools import TOOLS, ToolError, validate_arguments
from astroreason.traces import EpisodeInfo

PRINTABLE = string.printable


@dataclass(frozen=True)
class EnvConfig:
    """Settings shared by the tool environments.

    Attributes:
        condition: One of ``astroreason.conditions.CONDITIONS``, or a ``NAME@TAG`` label of one
            (the env behaves as ``NAME``; the label is reported in ``info["condition"]``).
        max_turns: Replies the model may spend in all, the answer included.
        max_tool_calls: Tool calls allowed per episode (later calls are invalid actions).
        max_reply_chars: Longer replies are invalid.
        max_text_length: Length of the ``text`` observation (longer messages are cut).
        reward: How the episode is scored.
        split_seed: Seed of the persisted split used for ``train``/``val``/``test`` (a split made
            by ``astroreason data split`` is used with its own fractions; without one, a default
            split is made and saved).
    """

    condition: str = "tools"
    max_turns: int = 4
    max_tool_calls: int = 3
    max_reply_chars: int = 8000
    max_text_length: int = 2048
    reward: RewardConfig = field(default_factory=RewardConfig)
    split_seed: int = 0


VIEW_SIDE_RANGE = (16, 2048)
"""Smallest and largest side in pixels of a view (galaxy ``view_size``, spectrum plot sides)."""


def check_view_side(name: str, value: Any, low: int = VIEW_SIDE_RANGE[0]) -> None:
    """A ConfigError unless ``value`` is an integer in ``low`` .. ``VIEW_SIDE_RANGE[1]``."""
    high = VIEW_SIDE_RANGE[1]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name}: must be an integer number of pixels, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be {low}..{high} pixels, got {value}")


def make_config(cls: type, config: Any, overrides: dict[str, Any]) -> Any:
    """Build a frozen config from an instance (or None) plus keyword overrides; bad keys are errors."""
    cfg = config if config is not None else cls()
    if not isinstance(cfg, cls):
        raise ConfigError(f"config: expected {cls.__name__}, got {type(cfg).__name__}")
    unknown = set(overrides) - set(cfg.__dataclass_fields__)
    if unknown:
        raise ConfigError(
            f"{cls.__name__}: unknown option(s) {sorted(unknown)}; "
            f"known: {', '.join(sorted(cfg.__dataclass_fields__))}"
        )
    if isinstance(overrides.get("reward"), dict):
        overrides = {**overrides, "reward": RewardConfig(**overrides["reward"])}
    cfg = replace(cfg, **overrides)
    check_condition(cfg.condition)
    if cfg.max_turns < 1:
        raise ConfigError(f"max_turns: must be >= 1, got {cfg.max_turns}")
    if cfg.max_tool_calls < 0:
        raise ConfigError(f"max_tool_calls: must be >= 0, got {cfg.max_tool_calls}")
    return cfg


class ToolEnv(gym.Env):
    """Base class: conversation bookkeeping, parsing, reward and episode end for tool use.

    Subclasses define ``env_name`` (a key of :data:`astroreason.protocol.TASKS`, whose task text
    the prompt carries, and of the tools' ``envs``), ``data_kind`` (``image`` or ``spectrum``: data
    of the other kind is a ConfigError before it is opened), ``tool_names`` (among
    ``tools_for(env_name)``),
    ``_image_shape()``, ``_first_view(sample)``, ``_tool_state()`` (what the tools read: an
    ``ImageState`` or ``SpectrumState``) and ``_ground_truth(sample)``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 1}
    env_name: str = ""
    data_kind: str = "image"
    tool_names: tuple[str, ...] = ()

    def __init__(self, data: Any, split: str, cfg: EnvConfig, source_kwargs: dict | None = None):
        self.cfg = cfg
        self._check_kind(data, source_kind(data))
        self.source: SampleSource = open_source(data, **(source_kwargs or {}))
        self._check_kind(data, self.source.kind)
        self.class_names = tuple(self.source.class_names)
        self.split = split
        if split == "all":
            self.rows = np.arange(len(self.source))
        elif split in ("train", "val", "test"):
            sp = split_for(self.source, cfg.split_seed)
            self.rows = np.asarray(sp.rows(split))
        else:
            raise ConfigError(f"split: unknown {split!r}; choose train, val, test or all")
        if len(self.rows) == 0:
            raise ConfigError(f"split: {split!r} of {self.source.path} has no samples")
        self.condition: Condition = condition_spec(cfg.condition)
        self.uses_tools = self.condition.uses_tools
        self.render_mode = "rgb_array"
        h, w = self._image_shape()
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8),
                "text": spaces.Text(max_length=cfg.max_text_length, charset=PRINTABLE),
            }
        )
        self.action_space = spaces.Text(max_length=cfg.max_reply_chars, charset=PRINTABLE)
        text = TASKS[self.env_name]
        self._spec = PromptSpec(
            task=text.instruction,
            class_names=self.class_names,
            tools=self.uses_tools,
            max_turns=cfg.max_turns,
            view_hint=text.view_hint,
            image_hint=self._image_hint(),
        )
        self._sample = None

    def _check_kind(self, data: Any, kind: str) -> None:
        """A ConfigError naming the data when it holds the other kind than this env reads."""
        if kind != self.data_kind:
            plural = {"image": "images", "spectrum": "spectra"}
            where = data.path if isinstance(data, SampleSource) else data
            raise ConfigError(
                f"data: {where} holds {plural.get(kind, kind)}; --env {self.env_name} "
                f"({type(self).__name__}) needs {plural[self.data_kind]}"
            )

    # -- subclass hooks ---------------------------------------------------------------------
    def _image_shape(self) -> tuple[int, int]:
        raise NotImplementedError

    def _first_view(self, sample) -> tuple[np.ndarray | None, Any]:
        """The first image (None for ``blind``) and its footprint."""
        raise NotImplementedError

    def _tool_state(self) -> Any:
        """What the tools read now (``ImageState`` or ``SpectrumState``)."""
        raise NotImplementedError

    def _run_tool(self, name: str, args: dict[str, Any]) -> tuple[np.ndarray, Any, str]:
        """Run a validated tool call by its declaration: (view, footprint, caption), or ToolError."""
        return TOOLS[name].run(self._tool_state(), args)

    def _ground_truth(self, sample) -> dict[str, Any]:
        raise NotImplementedError

    def _placebo_view(
        self, name: str, args: dict[str, Any], view: np.ndarray, footprint: Any, caption: str
    ) -> tuple[np.ndarray, Any, str]:
        """What a placebo condition shows instead of a successful call's real view.

        Called after the real tool ran (so validation and errors are those of ``tools``), with its
        ``view``, ``footprint`` and ``caption``; returns the (view, footprint, caption) to show and
        record. Here: ``reinput``, the overview again (its pixels and footprint), caption unchanged.
        Subclasses add ``random-view`` (a random place at the requested scale, drawn with
        ``self.np_random``) and call this for the rest.
        """
        if self.condition.placebo == "reinput":
            return self._images[0].copy(), self._overview_footprint, caption
        raise NotImplementedError(
            f"{type(self).__name__}: placebo {self.condition.placebo!r} is not implemented"
        )

    def _image_hint(self) -> str:
        """What the system prompt says about how images are given ("" for pixels)."""
        return ""

    def _view_block(self, image: np.ndarray) -> dict[str, Any]:
        """The content block that shows the model an image: the image itself (``pixels``).

        ``GalaxyEnv`` in the ``tokens`` observation returns a ``tokens`` block instead (the
        image's codec ids as text; see :mod:`astroreason.chat`).
        """
        return {"type": "image", "image": image}

    def tool_schemas(self) -> list[dict]:
        """JSON schemas of the tools offered in this condition (empty without tools)."""
        return [TOOLS[n].schema for n in self.tool_names] if self.uses_tools else []

    # -- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode on one sample.

        Options:
            index: Position in the split (default: drawn with the env's RNG).
            row_id: Row of the source (must belong to the split); wins over ``index``.
            sample: Which draw of this row the episode is (``--samples``; default 0), shown to
                the policy in ``info["episode"]`` so that each draw samples differently.
        """
        super().reset(seed=seed)
        options = options or {}
        if "row_id" in options:
            row = int(options["row_id"])
            if row not in set(self.rows.tolist()):
                raise ConfigError(f"row_id: {row} is not in split {self.split!r}")
            index = int(np.flatnonzero(self.rows == row)[0])
        elif "index" in options:
            index = int(options["index"]) % len(self.rows)
        else:
            index = int(self.np_random.integers(len(self.rows)))
        self._index = index
        self._draw = int(options.get("sample", 0))
        self._sample = self.source[int(self.rows[index])]
        self._turn = 0
        self._invalid = 0
        self._calls: list[dict[str, Any]] = []
        self._views: list[dict[str, Any]] = []
        self._images: list[np.ndarray] = []
        self._return = 0.0
        self._done = False
        self._prediction: int | None = None
        self._over_turn = False
        image, footprint = self._first_view(self._sample)
        self._overview_footprint = footprint
        intro = FIRST_IMAGE_TEXT["no-tools" if image is not None else "blind"]
        if self.uses_tools and image is not None:
            intro = FIRST_IMAGE_TEXT["tools"]
        content: list[dict[str, Any]] = []
        if image is not None:
            self._add_view(image, footprint, kind="overview", parent=None)
            content.append(self._view_block(image))
        content.append({"type": "text", "text": intro})
        self._messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt(self._spec)},
            {"role": "user", "content": content},
        ]
        self._last_text = intro
        return self._obs(), self._info()

    def step(self, action: str):
        """Take the model's raw reply; see the module docstring."""
        if self._sample is None or self._done:
            raise RuntimeError("call reset() before step() (the episode has ended)")
        self._turn += 1
        reply = parse_reply(action, self.class_names, max_chars=self.cfg.max_reply_chars)
        reward = 0.0
        terminated = False
        if reply.answer is not None:
            self._messages.append({"role": "assistant", "content": _clip(action)})
            self._prediction = reply.answer
            ok = sum(1 for c in self._calls if c["ok"])
            reward = self.cfg.reward.final(reply.answer, self._sample.label, ok)
            terminated = True
            self._last_text = f"Answer received: {self.class_names[reply.answer]}."
        elif reply.tool_call is not None and self.uses_tools:
            reward = self._tool_step(action, reply)
        else:
            if reply.tool_call is not None:
                why = "no tools are available in this episode; answer now"
            else:
                why = reply.error or "invalid reply"
            self._messages.append({"role": "assistant", "content": _clip(action)})
            reward = self._invalid_action(why, as_tool=False)
        truncated = False
        if not terminated and self._turn >= self._spec.max_turns:
            truncated = True
            self._over_turn = True
            reward += self.cfg.reward.truncation_reward
        self._done = terminated or truncated
        self._return += reward
        return self._obs(), float(reward), terminated, truncated, self._info()

    # -- internals ----------------------------------------------------------------------------
    def _tool_step(self, action: str, reply: ParsedReply) -> float:
        call = reply.tool_call
        assert call is not None
        call_id = f"call_{len(self._calls)}"
        self._messages.append(
            {
                "role": "assistant",
                "content": reply.text.split("<tool_call>")[0].strip(),
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                ],
            }
        )
        record = {"name": call.name, "arguments": call.arguments, "ok": False, "error": None}
        self._calls.append(record)
        if len(self._calls) > self.cfg.max_tool_calls:
            record["error"] = (
                f"at most {self.cfg.max_tool_calls} tool calls per episode; answer now"
            )
            return self._invalid_action(record["error"], as_tool=True, call_id=call_id)
        if call.name not in self.tool_names:
            record["error"] = f"unknown tool {call.name!r}; available: {', '.join(self.tool_names)}"
            return self._invalid_action(record["error"], as_tool=True, call_id=call_id)
        try:
            args = validate_arguments(call.name, call.arguments)
            args = self._check_image_index(args)
            view, footprint, caption = self._run_tool(call.name, args)
        except ToolError as e:
            record["error"] = str(e)
            return self._invalid_action(str(e), as_tool=True, call_id=call_id)
        if self.condition.blank_views:
            view = np.zeros_like(view)
        elif self.condition.placebo is not None:
            asked = footprint
            view, footprint, caption = self._placebo_view(call.name, args, view, footprint, caption)
            record["requested_footprint"] = _footprint_list(asked)
        index = len(self._images)
        record.update(ok=True, image_index=index, footprint=_footprint_list(footprint))
        self._add_view(view, footprint, kind=call.name, parent=args.get("image_index"))
        text = f"Image {index}: {caption}"
        self._messages.append(
            {
                "role": "tool",
                "tool_call_id": call_id,
                "name": call.name,
                "content": [self._view_block(view), {"type": "text", "text": text}],
            }
        )
        self._last_text = text
        return -self.cfg.reward.call_cost

    def _check_image_index(self, args: dict[str, Any]) -> dict[str, Any]:
        if "image_index" in args:
            k = args["image_index"]
            if not 0 <= k < len(self._images):
                raise ToolError(
                    f"image_index {k} does not exist; images so far are 0..{len(self._images) - 1}"
                )
        return args

    def _invalid_action(self, why: str, *, as_tool: bool, call_id: str | None = None) -> float:
        self._invalid += 1
        left = self._spec.max_turns - self._turn
        text = f"Error: {why}. Replies left: {left}."
        if as_tool:
            self._messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": [{"type": "text", "text": text}],
                }
            )
        else:
            self._messages.append({"role": "user", "content": [{"type": "text", "text": text}]})
        self._last_text = text
        return -self.cfg.reward.format_penalty

    def _add_view(self, image: np.ndarray, footprint: Any, kind: str, parent: int | None) -> None:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        image.setflags(write=False)
        self._images.append(image)
        self._views.append(
            {
                "index": len(self._views),
                "kind": kind,
                "parent": parent,
                "footprint": _footprint_list(footprint),
            }
        )

    def _obs(self) -> dict[str, Any]:
        h, w = self._image_shape()
        img = self._images[-1] if self._images else None
        out = np.zeros((h, w, 3), np.uint8)
        if img is not None:
            out[: min(h, img.shape[0]), : min(w, img.shape[1])] = img[:h, :w]
        text = "".join(ch if ch in PRINTABLE else "?" for ch in self._last_text)
        return {"image": out, "text": text[: self.cfg.max_text_length]}

    def _info(self) -> EpisodeInfo:
        s = self._sample
        done = self._done
        return {
            "messages": list(self._messages),
            "tools": self.tool_schemas(),
            "tool_calls": [dict(c) for c in self._calls],
            "views": [dict(v) for v in self._views],
            "turn": self._turn,
            "max_turns": self._spec.max_turns,
            "invalid_actions": self._invalid,
            "condition": self.cfg.condition,
            "over_turn": self._over_turn,
            "prediction": -1 if self._prediction is None else self._prediction,
            "correct": bool(done and grade(self._prediction, s.label) > 0),
            "return": self._return,
            "episode": {
                "split": self.split,
                "index": self._index,
                "row_id": s.row_id,
                "sample": self._draw,
            },
            "ground_truth": self._ground_truth(s),
        }

    def render(self):
        """The current view as an RGB array."""
        return self._obs()["image"]


def _clip(text: str, n: int = 20000) -> str:
    return text if len(text) <= n else text[:n] + " [...]"


def _footprint_list(footprint: Any) -> Any:
    """A footprint (a box with ``as_tuple`` or a sequence) as a list of floats for the trace logs."""
    if footprint is None:
        return None
    if hasattr(footprint, "as_tuple"):
        return [float(x) for x in footprint.as_tuple()]
    if isinstance(footprint, (tuple, list)):
        return [float(x) for x in footprint]
    return footprint
