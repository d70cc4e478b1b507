"""The tool-call protocol: what the model is told, and how its replies are read.

One documented reply format, nothing else accepted:

* a tool call is one Qwen3/Hermes block
  ``<tool_call>{"name": "zoom", "arguments": {...}}</tool_call>``
  (``arguments`` may also be a JSON string, as some servers render it);
* a final answer is ``<answer>CLASS NAME</answer>`` with one of the class names (case and whitespace
  are ignored, nothing else is);
* ``<think>...</think>`` blocks are kept as thinking and ignored for parsing.

A reply with both, with several tool calls, with neither, or with an unknown class is invalid; the
environment turns the reason into a message back to the model. Parsing never raises.

Prompts carry the task, the class list and the tool schemas (rendered by the chat template) only:
never a row index, file name, object id, coordinates, redshift or pixel scale.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

ANSWER_FORMAT = "<answer>CLASS NAME</answer>"

THINK_RE = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)
"""A reasoning block, <think>...</think> (or to the end of an unclosed one)."""
_TOOL_RE = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class ToolCall:
    """A tool call as the model wrote it (arguments not yet validated)."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ParsedReply:
    """The reading of one model reply.

    Attributes:
        text: The reply without thinking blocks.
        thinking: Concatenated ``<think>`` contents ("" if none).
        tool_call: The tool call, if the reply is a valid call.
        answer: The class index, if the reply is a valid answer.
        error: Why the reply is invalid (a message for the model), else None.
    """

    text: str
    thinking: str = ""
    tool_call: ToolCall | None = None
    answer: int | None = None
    error: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """True when the reply is exactly one tool call or one answer."""
        return self.error is None


def normalise_class_name(name: str) -> str:
    """Case- and whitespace-insensitive key for a class name."""
    return _SPACE_RE.sub(" ", name).strip().casefold()


def parse_reply(
    reply: str, class_names: tuple[str, ...] | list[str], *, max_chars: int = 8000
) -> ParsedReply:
    """Read one model reply; never raises.

    Args:
        reply: The raw text the model produced.
        class_names: The task's classes, in label order.
        max_chars: Longer replies are invalid (a runaway generation, not an answer).

    Returns:
        The parsed reply; ``error`` says what was wrong and what is allowed.
    """
    if not isinstance(reply, str):
        return ParsedReply(text="", error="the reply must be text")
    if len(reply) > max_chars:
        return ParsedReply(
            text=reply[:200],
            error=f"the reply has {len(reply)} characters; at most {max_chars} are allowed",
        )
    thinking = "\n".join(m.strip() for m in THINK_RE.findall(reply))
    text = THINK_RE.sub("", reply).strip()
    calls = _TOOL_RE.findall(text)
    answers = _ANSWER_RE.findall(text)
    how = f"Reply with one tool call, or with {ANSWER_FORMAT} naming one class."
    if len(calls) + len(answers) == 0:
        if "<tool_call>" in text:
            return ParsedReply(text, thinking, error=f"unclosed <tool_call> block. {how}")
        if "<answer>" in text.lower():
            return ParsedReply(text, thinking, error=f"unclosed <answer> tag. {how}")
        return ParsedReply(text, thinking, error=f"no tool call and no answer found. {how}")
    if calls and answers:
        return ParsedReply(
            text, thinking, error=f"the reply has both a tool call and an answer. {how}"
        )
    if len(calls) > 1:
        return ParsedReply(
            text, thinking, error=f"the reply has {len(calls)} tool calls; one per reply is allowed"
        )
    if len(answers) > 1:
        return ParsedReply(text, thinking, error=f"the reply has {len(answers)} answers. {how}")
    if calls:
        call, err = _parse_tool_call(calls[0])
        return ParsedReply(text, thinking, tool_call=call, error=err)
    key = normalise_class_name(answers[0])
    lookup = {normalise_class_name(c): i for i, c in enumerate(class_names)}
    if key not in lookup:
        shown = answers[0].strip()[:60]
        return ParsedReply(
            text,
            thinking,
            error=f"{shown!r} is not a class; answer with one of: " + ", ".join(class_names),
        )
    return ParsedReply(text, thinking, answer=lookup[key])


def _parse_tool_call(body: str) -> tuple[ToolCall | None, str | None]:
    try:
        obj = json.loads(body.strip(), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        fix = 'write {"name": ..., "arguments": {...}}'
        return None, f"the tool call is not valid JSON ({_short(e)}); {fix}"
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None, 'the tool call must be a JSON object {"name": TOOL, "arguments": {...}}'
    args = obj.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args, parse_constant=_reject_constant) if args.strip() else {}
        except (ValueError, RecursionError) as e:
            return None, f"the tool call's arguments are not valid JSON ({_short(e)})"
    if not isinstance(args, dict):
        return None, "the tool call's arguments must be a JSON object"
    extra = set(obj) - {"name", "arguments"}
    if extra:
        return None, f"unexpected keys in the tool call: {sorted(extra)}; only name and arguments"
    return ToolCall(name=obj["name"], arguments=args), None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _short(e: Exception) -> str:
    return str(e).split(":")[0][:80]


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """Write a tool call in the protocol's format (used by scripted policies and SFT traces)."""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def format_answer(class_name: str) -> str:
    """Write a final answer in the protocol's format."""
    return f"<answer>{class_name}</answer>"


@dataclass(frozen=True)
class PromptSpec:
    """What the system prompt says; built from the task and the condition only (no sample data).

    Attributes:
        task: One sentence on what to classify.
        class_names: The classes, in label order.
        tools: Whether tools are offered.
        max_turns: How many replies the model may spend.
        view_hint: How the model should read coordinates on its images.
        image_hint: How images are given, when not as pixels (the ``tokens`` observation).
    """

    task: str
    class_names: tuple[str, ...]
    tools: bool
    max_turns: int
    view_hint: str = ""
    image_hint: str = ""


@dataclass(frozen=True)
class TaskText:
    """What an environment's prompts say about its task: read by the env and the tiny tokenizer.

    Attributes:
        instruction: One sentence on what to classify (``PromptSpec.task``).
        view_hint: How to read the tools' coordinates (``PromptSpec.view_hint``).
    """

    instruction: str
    view_hint: str


TASKS: dict[str, TaskText] = {
    "galaxy": TaskText(
        instruction="You are an astronomer. Classify the morphology of the galaxy in the image.",
        view_hint=(
            "Tool coordinates are 0-1000 across the image you name with image_index "
            "(0 is the overview, then each view you receive, in order); views always show the "
            "full-resolution pixels."
        ),
    ),
    "spectrum": TaskText(
        instruction=(
            "You are an astronomer. Classify the object from its optical spectrum "
            "(flux against observed vacuum wavelength in Angstrom)."
        ),
        view_hint=(
            "spectrum_window plots any observed-frame wavelength range at full resolution; "
            "narrow lines are only resolved in such windows."
        ),
    ),
}
"""Environment name -> its task text (the environments ``galaxy`` and ``spectrum``)."""

FIRST_IMAGE_TEXT = {
    "tools": "Image 0: the overview.",
    "no-tools": "Here is the image.",
    "blind": "No image is available.",
}
"""The text of the first user turn: with tools, without them, and without an image."""


def tokens_hint(codec_name: str, patch: int) -> str:
    """The system prompt's line on images given as codec tokens (``PromptSpec.image_hint``)."""
    return (
        f"Each image is given as the token ids of the image codec {codec_name}, one id per "
        f"{patch}x{patch} pixels, row by row, instead of pixels."
    )


def system_prompt(spec: PromptSpec) -> str:
    """The system message: task, class list, how to use tools, the answer format."""
    classes = "\n".join(f"- {c}" for c in spec.class_names)
    lines = [
        spec.task,
        *([spec.image_hint] if spec.image_hint else []),
        "",
        "Classes:",
        classes,
        "",
    ]
    if spec.tools:
        lines += [
            "You may call one tool per reply to look closer before answering. " + spec.view_hint,
            f"You have at most {spec.max_turns} replies in all, the answer included.",
        ]
    else:
        lines += ["Answer at once, without tools."]
        lines += [
            f"A reply that breaks the format is returned to you; you have {spec.max_turns} replies."
        ]
    lines += [f"Give the final answer as {ANSWER_FORMAT}, using one class name exactly as listed."]
    return "\n".join(line for line in lines if line is not None).strip()
