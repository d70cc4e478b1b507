"""TRL's ``environment_factory`` contract, as a thin adapter around the project's Gymnasium env.

TRL's ``GRPOTrainer(environment_factory=...)`` builds one instance per rollout, calls
``reset(**row)`` with the dataset row, appends what ``reset`` returns to the prompt's last message,
and turns every public method into a tool (schema from type hints and Google docstring). Here:

* ``reset(row_id=..., **row)`` resets the SAME environment (galaxy or spectrum) on that row and
  returns the overview as content blocks (image, then caption): the image then reaches both
  generation and TRL's training forward pass (``_tokenize_prompts`` collects images from message content).
* every tool the env offers (its ``tool_names``: ``zoom`` and ``crop`` for galaxies,
  ``spectrum_window`` for spectra) becomes a method
  with the signature and docstring of its declaration in :data:`astroreason.tools.TOOLS`
  (descriptions copied from the declared schema); each writes the call in the protocol's format and
  hands it to ``env.step``, so validation, ``image_index`` resolution, caps and penalties are the
  env's. A view comes back as ``[{"type": "image", ...}, {"type": "text", ...}]``, a refusal as the
  env's error text. Methods take ``**kwargs`` behind a declared signature, so unexpected arguments
  reach the env (an invalid action) instead of failing inside TRL.
* The final answer is scored by :func:`episode_reward`, a TRL reward function that receives
  ``environments`` and ``completions`` and passes the last assistant text to ``env.step``; the reward
  is the env's episode return (``RewardConfig``/``grade``: no second copy of reward logic).

Episodes TRL cut off while the model was still calling tools (``max_tool_calling_iterations`` or
``max_completion_length`` reached) and episodes the env truncated at ``max_turns`` score ``None``:
TRL turns that into NaN, leaves the row out of the group baseline and gives it advantage 0
(over-turn masking). A final reply that is neither an answer nor a tool call is scored (the env's
format penalty): in TRL a reply without a tool call ends the rollout, so the env's format retries
do not happen during training (simplified against the env, which would let the model retry).

:func:`adapter_factory` builds the class for the configured env (galaxy or spectrum): a
``ToolAdapter`` (every condition with tools: ``tools`` and its placebos ``reinput`` and
``random-view``, whose views the env replaces) with one method per tool of that env, or an
``AnswerAdapter`` (no tools) with none.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

import gymnasium
import numpy as np

from astroreason.chat import content_blocks
from astroreason.conditions import condition_spec
from astroreason.envs.factory import make_env
from astroreason.images import to_pil
from astroreason.protocol import format_tool_call
from astroreason.targets import calls_on_target
from astroreason.tools import TOOLS
from astroreason.traces import EpisodeInfo

OVER = "the episode is over (no replies left); answer now"


@dataclass
class EpisodeStats:
    """Counters of finished episodes, shared by all adapters of a run (read by the monitor).

    Attributes:
        episodes: Scored or unscorable episodes seen.
        correct: Episodes answered correctly.
        answered: Episodes that ended with a valid answer.
        tool_calls: Tool calls, valid or not.
        invalid: Invalid actions (bad tool arguments, bad format, calls over the cap).
        over_turn: Unscorable episodes (cut off while calling tools, or truncated by the env).
        completion_tokens: Completion tokens generated, tool results included.
    """

    episodes: int = 0
    correct: int = 0
    answered: int = 0
    tool_calls: int = 0
    invalid: int = 0
    over_turn: int = 0
    completion_tokens: int = 0


def open_config_source(cfg: Any):
    """``cfg.data`` opened as its env opens it (spectra: with ``cfg.spectrum_task``'s labels).

    Share it between envs, training and validation: a source opened without the task would carry
    the default task's labels (SDSS ``class``) into every env made from it. Galaxy files without
    target boxes get them (:mod:`astroreason.data.quality.boxes`) for the train and val rows, once, when the
    condition offers tools (the teacher aims at them, validation scores them).
    """
    from astroreason.data import open_source

    kwargs = {"task": cfg.spectrum_task} if cfg.env == "spectrum" else {}
    source = open_source(cfg.data, **kwargs)
    if cfg.env == "galaxy" and condition_spec(cfg.condition).uses_tools:
        from astroreason.data.quality.boxes import has_own_boxes, with_target_boxes
        from astroreason.data.quality.splits import split_for

        if has_own_boxes(source):
            return source
        sp = split_for(source, cfg.split_seed)
        rows = np.concatenate([sp.rows("train"), sp.rows("val")])
        source = with_target_boxes(source, rows=rows)
    return source


def config_env(cfg: Any, data: Any, split: str) -> gymnasium.Env:
    """The environment a ``TrainConfig`` trains and validates in (its env, condition, options)."""
    from astroreason.training.config import env_options

    return make_env(cfg.env, data, split, cfg.condition, **env_options(cfg))


class _AdapterBase:
    """Shared state; only ``reset`` is public here (TRL turns public methods into tools)."""

    env_name: str = "galaxy"
    data: Any = None
    split: str = "train"
    condition: str = "tools"
    mask_truncated: bool = True
    env_options: dict[str, Any] = {}
    stats: EpisodeStats | None = None
    seed: int = 0
    resets: dict[int, int] = {}  # row -> episodes started on it (one dict per factory class)

    def __init__(self) -> None:
        self.env = make_env(
            self.env_name, self.data, self.split, self.condition, **self.env_options
        )
        self.info: EpisodeInfo | dict[str, Any] = {}
        self.done = False

    def reset(self, row_id: int, **row: Any) -> list[dict[str, Any]]:
        """Start the episode on ``row_id``; return the overview blocks for the prompt's last message.

        The env is reset with :func:`episode_seed` of the run's seed, the row and how many episodes
        of this run started on it before: the random-view placebo's views (the env's RNG) are the
        same in every run of one config, and differ between the completions of a group.
        """
        row_id = int(row_id)
        k = self.resets.get(row_id, 0)
        self.resets[row_id] = k + 1
        _, self.info = self.env.reset(
            seed=episode_seed(self.seed, row_id, k), options={"row_id": row_id}
        )
        self.done = False
        return _content_for_trl(self.info["messages"][-1]["content"])

    def _step(self, text: str) -> EpisodeInfo:
        _, _, terminated, truncated, self.info = self.env.step(text)
        self.done = terminated or truncated
        return self.info

    def _call_tool(self, name: str, arguments: dict[str, Any]) -> list[dict[str, Any]] | str:
        if self.done:
            return f"Error: {OVER}."
        info = self._step(format_tool_call(name, arguments))
        last = info["messages"][-1]
        if last["role"] != "tool":  # e.g. the env truncated the episode with this call
            return f"Error: {OVER}."
        content = _content_for_trl(last["content"])
        if len(content) == 1 and content[0]["type"] == "text":
            return content[0]["text"]  # the env's error message, as plain text
        return content


def episode_seed(seed: int, row: int, k: int) -> int:
    """The env seed of the ``k``-th training episode on ``row`` in a run seeded ``seed``."""
    return int(np.random.SeedSequence([seed, row, k]).generate_state(1)[0])


def _content_for_trl(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return content_blocks(blocks, lambda image: {"type": "image", "image": to_pil(image)})


def training_tool_docstring(name: str) -> str:
    """A Google docstring built from tool ``name``'s declared schema (what TRL renders)."""
    fn = TOOLS[name].schema["function"]
    lines = [fn["description"], "", "Args:"]
    for arg, prop in fn["parameters"]["properties"].items():
        lines.append(f"    {arg}: {prop['description']}")
    return "\n".join(lines)


def _tool_method(name: str) -> Callable:
    """A method named ``name`` with its declaration's plain signature; calls go to the env."""

    def method(self, **kwargs: Any) -> list[dict[str, Any]] | str:
        return self._call_tool(name, kwargs)

    declaration = TOOLS[name].signature
    hints = get_type_hints(declaration)  # Annotated extras stripped: list[float], float, int
    hints.pop("return", None)
    sig = inspect.signature(declaration)
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [p.replace(annotation=hints[p.name]) for p in sig.parameters.values()]
    method.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    method.__annotations__ = dict(hints)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = training_tool_docstring(name)
    return method


class ToolAdapter(_AdapterBase):
    """Conditions with tools: :func:`adapter_factory` adds one method per tool the env offers."""


class AnswerAdapter(_AdapterBase):
    """No-tools condition: no public method but ``reset``, so TRL offers no tools."""


def adapter_factory(
    data: Any,
    condition: str,
    env_options: dict[str, Any],
    split: str = "train",
    stats: EpisodeStats | None = None,
    env: str = "galaxy",
    mask_truncated: bool = True,
    seed: int = 0,
) -> type[_AdapterBase]:
    """A configured adapter class (TRL calls it with no arguments to make one instance per rollout).

    Args:
        data: Data path, or an opened source shared by every instance.
        condition: A condition (or ``NAME@TAG`` label); tools are offered when it uses them.
        env_options: The env config's overrides (``view_size``, ``max_turns``, ...).
        split: The split rows come from (``train`` for GRPO).
        stats: Counters shared with the monitor (a new one if None).
        env: Which environment (``galaxy`` or ``spectrum``).
        mask_truncated: Episodes cut off without an answer get no reward (None: TRL leaves them
            out of the group baseline, advantage 0); False scores them with the env's return.
        seed: The run's seed; every episode's env seed derives from it (:func:`episode_seed`).
    """
    uses_tools = condition_spec(condition).uses_tools
    base = ToolAdapter if uses_tools else AnswerAdapter
    attrs: dict[str, Any] = {
        "env_name": env,
        "data": data,
        "split": split,
        "condition": condition,
        "env_options": dict(env_options),
        "stats": stats if stats is not None else EpisodeStats(),
        "mask_truncated": bool(mask_truncated),
        "seed": int(seed),
        "resets": {},
    }
    if uses_tools:  # the env's own tool set (its config may narrow or widen the default)
        probe = make_env(env, data, split, condition, **env_options)
        attrs.update({n: _tool_method(n) for n in probe.unwrapped.tool_names})
        probe.close()
    return type(base.__name__, (base,), attrs)


def final_text(completion: list[dict[str, Any]]) -> tuple[str | None, bool]:
    """(text of the last assistant message, whether it still asks for a tool)."""
    for message in reversed(completion):
        if message.get("role") == "assistant":
            content = message.get("content") or ""
            if isinstance(content, list):
                content = "".join(b.get("text", "") for b in content if b.get("type") == "text")
            return content, bool(message.get("tool_calls"))
    return None, False


def episode_reward(
    completions: list[list[dict[str, Any]]],
    environments: list[_AdapterBase],
    completion_ids: list[list[int]] | None = None,
    log_metric: Callable[[str, float], None] | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """TRL reward function: finish each episode in its env and return the env's episode return.

    ``None`` (unscorable, advantage 0) when the rollout was cut off while calling tools or the env
    truncated it at ``max_turns``, unless the adapter says ``mask_truncated = False`` (then the env's
    return so far, ``truncation_reward`` included when the env truncated it). Logs ``episode/*``
    metrics through TRL's ``log_metric`` (``episode/on_target_rate`` over the episodes
    :func:`astroreason.targets.calls_on_target` can score).
    """
    rewards: list[float | None] = []
    n = len(completions)
    acc = calls = invalid = over = answered = 0
    targets: list[bool] = []
    stats = environments[0].stats if environments else None
    for i, (completion, env) in enumerate(zip(completions, environments, strict=True)):
        text, wants_tool = final_text(completion)
        info = env.info
        if not env.done and not wants_tool and text is not None:
            info = env._step(text)
        cut_off = wants_tool or bool(info.get("over_turn", False))
        calls += len(info.get("tool_calls", []))
        invalid += int(info.get("invalid_actions", 0))
        hit = calls_on_target(
            env.condition, info.get("ground_truth"), info.get("views"), info.get("tool_calls")
        )
        if hit is not None:
            targets.append(hit)
        if cut_off:
            over += 1
            rewards.append(None if env.mask_truncated else float(info.get("return", 0.0)))
        else:
            answered += int(info.get("prediction", -1) >= 0)
            acc += int(bool(info.get("correct")))
            rewards.append(float(info["return"]))
        if stats is not None and completion_ids is not None:
            stats.completion_tokens += len(completion_ids[i])
    if stats is not None:
        stats.episodes += n
        stats.correct += acc
        stats.answered += answered
        stats.tool_calls += calls
        stats.invalid += invalid
        stats.over_turn += over
    if log_metric is not None and n:
        replies = max(1, sum(int(e.info.get("turn", 0)) for e in environments))
        log_metric("episode/accuracy", acc / n)
        log_metric("episode/tool_calls", calls / n)
        log_metric("episode/invalid_rate", invalid / replies)
        log_metric("episode/over_turn_rate", over / n)
        log_metric("episode/answer_rate", answered / n)
        if targets:
            log_metric("episode/on_target_rate", sum(targets) / len(targets))
    return rewards


def grpo_rows(env: gymnasium.Env) -> list[dict[str, Any]]:
    """Dataset rows for GRPO: the env's system prompt plus an empty user turn, and ``row_id``.

    ``reset`` fills the user turn with the overview, so rows carry no image column. The empty text
    renders to nothing: the prompt tokens equal those of the env's own first messages.
    """
    u = env.unwrapped
    _, info = env.reset(options={"index": 0})
    system = info["messages"][0]["content"]
    prompt = [
        {"role": "system", "content": system},
        {"role": "user", "content": ""},
    ]
    return [{"prompt": prompt, "row_id": int(r)} for r in u.rows]


def env_tool_schemas(adapter: type[_AdapterBase]) -> list[dict[str, Any]] | None:
    """The tool schemas the adapter's environment offers (``info["tools"]``, as evaluation renders).

    Training prompts must render these, not what TRL derives from the methods' signatures
    (``tool_schema_json``: no numeric bounds), or the model trains on a prompt it never sees in
    evaluation; see :func:`astroreason.training.grpo.render_env_schemas`.
    """
    env = adapter().env
    _, info = env.reset(options={"index": 0})
    env.close()
    return list(info.get("tools") or []) or None


def tool_schema_json(adapter: type[_AdapterBase]) -> list[dict[str, Any]]:
    """The tool schemas TRL renders for an adapter class (``get_json_schema`` of its methods)."""
    from transformers.utils import get_json_schema

    instance_methods = [
        getattr(adapter, n)
        for n, _ in inspect.getmembers(adapter, predicate=inspect.isfunction)
        if n not in ("reset", "get_reward") and not n.startswith("_")
    ]
    return [get_json_schema(m) for m in instance_methods]
