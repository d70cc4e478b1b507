"""One converter from the environment's messages to the chat messages a model stack reads.

The environments speak a small chat dialect: ``content`` is a string or a list of blocks
``{"type": "text", "text": ...}``, ``{"type": "image", "image": <uint8 array>}`` and, in the
``tokens`` observation, ``{"type": "tokens", "text": "<v12><v7>...", "shape": [rows, cols],
"image": <the decoded uint8 array>}`` (an image as codec ids: the model reads its ``text``; the
decoded image is for people, in traces and the viewer); an assistant
turn that calls a tool carries ``tool_calls`` whose ``arguments`` are a dict; a tool turn carries
``tool_call_id`` and ``name``. Every consumer (the OpenAI/vLLM policy, the transformers policy, the
SFT rows, the TRL adapter, the trace writer, the pretraining collator) differs only in what an
image becomes, whether tool arguments are a JSON string, and how a string content is written:
:func:`to_chat` does the rest once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

ImageBlock = Callable[[Any], dict[str, Any]]
"""Maps an image (the block's ``image`` value) to the block that replaces it."""

TokensBlock = Callable[[dict[str, Any]], dict[str, Any]]
"""Maps a ``tokens`` block (the whole block) to the block that replaces it."""


def tool_calls(calls: list[dict[str, Any]], *, json_arguments: bool) -> list[dict[str, Any]]:
    """Tool calls in the OpenAI shape; ``arguments`` as a JSON string or as a dict."""
    out = []
    for tc in calls:
        fn = tc["function"]
        args = fn["arguments"]
        if json_arguments and not isinstance(args, str):
            args = json.dumps(args)
        call = {"type": "function", "function": {"name": fn["name"], "arguments": args}}
        out.append({"id": tc["id"], **call} if tc.get("id") is not None else call)
    return out


def content_blocks(
    blocks: list[dict[str, Any]], image: ImageBlock, tokens: TokensBlock | None = None
) -> list[dict[str, Any]]:
    """A list of content blocks with each image mapped by ``image`` and text blocks copied.

    A ``tokens`` block becomes a text block with its ids (what a model reads), or ``tokens(block)``
    when given (traces keep the grid's shape and its decoded image).
    """
    out = []
    for b in blocks:
        kind = b.get("type")
        if kind == "image":
            out.append(image(b["image"]))
        elif kind == "tokens" and tokens is not None:
            out.append(tokens(b))
        else:
            out.append({"type": "text", "text": b.get("text", "")})
    return out


def to_chat(
    messages: list[dict[str, Any]],
    image: ImageBlock,
    *,
    json_arguments: bool = False,
    text_blocks: bool = False,
    null_call_content: bool = False,
    tokens: TokensBlock | None = None,
) -> list[dict[str, Any]]:
    """The environment's messages as chat messages (new dicts; the input is left alone).

    Args:
        messages: The env's ``info["messages"]``.
        image: Maps each image to its block (a URL part, a PIL image, a placeholder, a path).
        json_arguments: Tool-call arguments as a JSON string (the OpenAI API, TRL's SFT rows) instead
            of a dict (chat templates that render the dict).
        text_blocks: A string content becomes a list with one text block (none if empty), as
            processors' templates for image conversations expect.
        null_call_content: An assistant turn that only calls a tool gets ``content: None``: vLLM
            turns ``""`` into a text part that Qwen's template renders as an extra newline before
            ``<tool_call>``, a prompt transformers never renders.
        tokens: Maps each ``tokens`` block (default: a text block with its ids).

    Returns:
        One message per input message, with every other key (``role``, ``name``,
        ``tool_call_id``) kept.
    """
    out = []
    for m in messages:
        msg = {k: v for k, v in m.items() if k not in ("content", "tool_calls")}
        content = m.get("content")
        if isinstance(content, list):
            msg["content"] = content_blocks(content, image, tokens)
        elif text_blocks:
            msg["content"] = [{"type": "text", "text": content}] if content else []
        elif null_call_content and m.get("tool_calls") and not content:
            msg["content"] = None
        else:
            msg["content"] = content if content is not None else ""
        if "tool_calls" in m:
            msg["tool_calls"] = tool_calls(m["tool_calls"], json_arguments=json_arguments)
        out.append(msg)
    return out


def images_of(messages: list[dict[str, Any]], *, decoded: bool = False) -> list[Any]:
    """The images of a conversation, in order (what the chat messages' image blocks refer to).

    With ``decoded``, the decoded images of ``tokens`` blocks count too, in message order (what a
    trace saves for people to look at; a model never sees them).
    """
    kinds = ("image", "tokens") if decoded else ("image",)
    return [
        b["image"]
        for m in messages
        if isinstance(m.get("content"), list)
        for b in m["content"]
        if b.get("type") in kinds
    ]
