"""A policy backed by any OpenAI-compatible chat endpoint (vLLM's server first of all).

The environment's conversation is sent as it is: images become base64 ``image_url`` blocks (also
inside ``tool`` messages), assistant tool calls keep their structured form, and the tool schemas go in
``tools`` so the server's chat template renders them. When the server parses tool calls out of the
text (``--enable-auto-tool-choice``), the reply is written back in the protocol's ``<tool_call>`` form,
so the environment always sees one raw text.

Connection errors, timeouts and 5xx answers are retried with exponential backoff; anything else is
raised. A reply that cannot be parsed is the environment's business, not ours.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from astroreason.images import ImageFormat, data_url
from astroreason.policies.base import Policy, PolicyReply
from astroreason.protocol import format_tool_call


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling settings sent with each request.

    Attributes:
        temperature: Sampling temperature (0 = greedy).
        top_p: Nucleus sampling mass.
        max_tokens: Tokens generated per reply at most.
        seed: Per-request seed base (the episode's turn is added), None for none.
        logprobs: Ask for per-token log-probabilities.
        return_token_ids: Ask vLLM for the generated token ids.
    """

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    logprobs: bool = False
    return_token_ids: bool = False


class RetryableError(Exception):
    """A transient failure (connection, timeout, 5xx) after all retries."""


def to_openai_messages(messages: list[dict[str, Any]], fmt: ImageFormat = "auto") -> list[dict]:
    """Convert the environment's messages (image arrays) into OpenAI chat messages."""
    out = []
    for m in messages:
        msg = {k: v for k, v in m.items() if k != "content"}
        content = m.get("content")
        if isinstance(content, list):
            blocks = []
            for b in content:
                if b.get("type") == "image":
                    blocks.append(
                        {"type": "image_url", "image_url": {"url": data_url(b["image"], fmt)}}
                    )
                else:
                    blocks.append({"type": "text", "text": b.get("text", "")})
            msg["content"] = blocks
        else:
            msg["content"] = content or ""
        if "tool_calls" in m:
            msg["tool_calls"] = [
                {
                    "id": tc["id"],
                    "type": "function",
                    "function": {
                        "name": tc["function"]["name"],
                        "arguments": json.dumps(tc["function"]["arguments"]),
                    },
                }
                for tc in m["tool_calls"]
            ]
        out.append(msg)
    return out


class OpenAIChatPolicy(Policy):
    """Chat completions against ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "EMPTY",
        sampling: SamplingConfig | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        image_format: ImageFormat = "auto",
    ):
        import openai

        self.name = f"openai:{model}"
        self.model = model
        self.sampling = sampling or SamplingConfig()
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.image_format = image_format
        self._openai = openai
        self.client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0
        )

    async def act(self, info: dict[str, Any]) -> PolicyReply:
        """Send the conversation; return the reply text (tool calls in protocol form)."""
        s = self.sampling
        kwargs: dict[str, Any] = dict(
            model=self.model,
            messages=to_openai_messages(info["messages"], self.image_format),
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
        )
        if info.get("tools"):
            kwargs["tools"] = info["tools"]
        if s.seed is not None:
            kwargs["seed"] = s.seed + int(info.get("turn", 0))
        if s.logprobs:
            kwargs["logprobs"] = True
        if s.return_token_ids:
            kwargs["extra_body"] = {"return_token_ids": True}
        t0 = time.perf_counter()
        resp = await self._with_retries(kwargs)
        latency = time.perf_counter() - t0
        if not resp.choices:
            raise RetryableError("the server returned no choices")
        choice = resp.choices[0]
        text = reply_text(choice.message)
        usage = resp.usage
        logprobs = None
        if choice.logprobs is not None and choice.logprobs.content:
            logprobs = [float(t.logprob) for t in choice.logprobs.content]
        return PolicyReply(
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            token_ids=getattr(choice, "token_ids", None),
            logprobs=logprobs,
            latency_s=latency,
            extra={"finish_reason": choice.finish_reason},
        )

    async def _with_retries(self, kwargs: dict[str, Any]):
        oa = self._openai
        delay = self.backoff_s
        for attempt in range(self.max_retries + 1):
            try:
                return await self.client.chat.completions.create(**kwargs)
            except (oa.APIConnectionError, oa.APITimeoutError, oa.InternalServerError) as e:
                err: Exception = e
            except oa.APIStatusError as e:
                if e.status_code < 500:
                    raise
                err = e
            if attempt == self.max_retries:
                raise RetryableError(
                    f"{type(err).__name__} after {attempt + 1} tries: {err}"
                ) from err
            await asyncio.sleep(delay)
            delay *= 2

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.close()


def reply_text(message: Any) -> str:
    """The raw reply: content plus any server-parsed tool calls in ``<tool_call>`` form."""
    text = message.content or ""
    for tc in message.tool_calls or []:
        try:
            args = json.loads(tc.function.arguments) if tc.function.arguments else {}
        except ValueError:
            args = tc.function.arguments
        text += ("\n" if text else "") + format_tool_call(tc.function.name, args)
    return text
