"""A policy backed by any OpenAI-compatible chat endpoint (vLLM's server first of all).

The environment's conversation is sent as it is: images become base64 ``image_url`` blocks (also
inside ``tool`` messages), assistant tool calls keep their structured form, and the tool schemas go in
``tools`` so the server's chat template renders them. When the server parses tool calls out of the
text (``--enable-auto-tool-choice``), the reply is written back in the protocol's ``<tool_call>`` form,
so the environment always sees one raw text.

Connection errors, timeouts and 5xx answers are retried with exponential backoff; anything else is
raised as a one-line error. A reply that cannot be parsed is the environment's business, not ours.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from astroreason.errors import AstroReasonError
from astroreason.images import ImageFormat, data_url
from astroreason.policies.base import Policy, PolicyReply, RetryableError
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
    """Chat completions against ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``).

    Requests go through one pooled ``httpx.AsyncClient`` with the JSON built here: the official
    client's request validation cost ~4 ms per multi-image request, more than everything else on
    our side of the wire (measured by ``make bench``).
    """

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
        self.name = f"openai:{model}"
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.sampling = sampling or SamplingConfig()
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.image_format = image_format
        self._client = None

    def _http(self):
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout_s,
                headers={"Authorization": f"Bearer {self.api_key}"},
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
            )
        return self._client

    def request_body(self, info: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of the chat-completions request for this conversation."""
        s = self.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(info["messages"], self.image_format),
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        }
        if info.get("tools"):
            body["tools"] = info["tools"]
        if s.seed is not None:
            body["seed"] = s.seed + int(info.get("turn", 0))
        if s.logprobs:
            body["logprobs"] = True
        if s.return_token_ids:
            body["return_token_ids"] = True
        return body

    async def act(self, info: dict[str, Any]) -> PolicyReply:
        """Send the conversation; return the reply text (tool calls in protocol form)."""
        t0 = time.perf_counter()
        resp = await self._with_retries(self.request_body(info))
        latency = time.perf_counter() - t0
        choices = resp.get("choices") or []
        if not choices:
            raise RetryableError(f"{self.url}: the answer has no choices")
        choice = choices[0]
        usage = resp.get("usage") or {}
        lp = (choice.get("logprobs") or {}).get("content")
        return PolicyReply(
            text=reply_text(choice.get("message") or {}),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            token_ids=choice.get("token_ids"),
            logprobs=[float(t["logprob"]) for t in lp] if lp else None,
            latency_s=latency,
            extra={"finish_reason": choice.get("finish_reason")},
        )

    async def _with_retries(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        delay = self.backoff_s
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        for attempt in range(self.max_retries + 1):
            try:
                r = await self._http().post(self.url, content=payload, headers=headers)
                if r.status_code < 400:
                    return r.json()
                if r.status_code < 500 and r.status_code != 429:
                    raise AstroReasonError(
                        f"{self.url}: the server refused the request (HTTP {r.status_code}): "
                        f"{r.text[:300]}"
                    )
                err = f"HTTP {r.status_code}"
            except (httpx.TransportError, ValueError) as e:  # connection, timeout, bad JSON
                err = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            if attempt == self.max_retries:
                raise RetryableError(f"{self.url}: {err} after {attempt + 1} tries")
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def reply_text(message: dict[str, Any]) -> str:
    """The raw reply: content plus any server-parsed tool calls in ``<tool_call>`` form."""
    text = message.get("content") or ""
    for tc in message.get("tool_calls") or []:
        fn = tc.get("function") or {}
        raw = fn.get("arguments")
        try:
            args = json.loads(raw) if isinstance(raw, str) and raw else (raw or {})
        except ValueError:
            args = raw
        text += ("\n" if text else "") + format_tool_call(str(fn.get("name")), args)
    return text
