"""A policy backed by any OpenAI-compatible chat endpoint (vLLM's server first of all).

The environment's conversation is sent as it is: images become base64 ``image_url`` blocks (also
inside ``tool`` messages), assistant tool calls keep their structured form, and the tool schemas go in
``tools`` so the server's chat template renders them. When the server parses tool calls out of the
text (``--enable-auto-tool-choice``), the reply is written back in the protocol's ``<tool_call>`` form,
so the environment always sees one raw text.

Connection errors, timeouts and 5xx answers are retried with exponential backoff; anything else is
raised as a one-line error. A reply that cannot be parsed is the environment's business, not ours.

The request body is the JSON of :meth:`OpenAIChatPolicy.request_body`, byte for byte, but built without
re-serialising images: each image's data URL is made once (see :mod:`astroreason.images`) and spliced
into the JSON of the rest, since every turn re-sends the whole conversation.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from astroreason.chat import to_chat
from astroreason.errors import AstroReasonError, ConfigError
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
        seed: Per-request seed base (the episode's turn, plus 1000 per sample of its row, is
            added), None for none.
        logprobs: Ask for per-token log-probabilities.
        return_token_ids: Ask vLLM for the generated token ids.
    """

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    logprobs: bool = False
    return_token_ids: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and 0.0 <= self.temperature <= MAX_TEMPERATURE):
            raise ConfigError(
                f"temperature: must be a number in [0, {MAX_TEMPERATURE:g}], got {self.temperature}"
            )
        if not (math.isfinite(self.top_p) and 0.0 < self.top_p <= 1.0):
            raise ConfigError(f"top_p: must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens: must be at least 1, got {self.max_tokens}")


MAX_TEMPERATURE = 2.0
"""The OpenAI API's largest temperature (vLLM accepts more; nothing here samples that hot)."""


def to_openai_messages(
    messages: list[dict[str, Any]],
    fmt: ImageFormat = "auto",
    image_url: Callable[[Any, ImageFormat], str] = data_url,
) -> list[dict]:
    """Convert the environment's messages (image arrays) into OpenAI chat messages.

    ``image_url(image, fmt)`` gives each image's URL (default: a base64 ``data:`` URL); the rest
    is :func:`astroreason.chat.to_chat` with JSON tool arguments and null content for bare calls.
    """

    def part(image: Any) -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": image_url(image, fmt)}}

    return to_chat(messages, part, json_arguments=True, null_call_content=True)


class OpenAIChatPolicy(Policy):
    """Chat completions against ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``).

    Requests go through one aiohttp session per event loop (a keep-alive pool of up to 256
    connections) with the JSON built here (the official client's request validation cost ~4 ms per
    multi-image request). A home-made HTTP/1.1 client was measured against aiohttp on the vLLM CPU
    server (``make bench`` before it was dropped: +7% requests/s for aiohttp in sum, per-pair
    median -7%, 0.2 ms more client CPU per request, 0.7% of the machine): no difference that
    matters, so aiohttp is the only client. ``HTTP(S)_PROXY`` and ``NO_PROXY`` are honoured.
    ``timeout_s`` limits connecting, and each read of the answer.
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
        self._session = None  # one aiohttp session per event loop
        self._session_loop = None
        self._proxy: str | None = None
        self._errors: tuple[type[BaseException], ...] = (ValueError,)  # retried, with aiohttp's
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "User-Agent": "astroreason",
        }
        self._mark = f"@@image-{uuid.uuid4().hex}@@"  # stands for an image URL in the JSON

    def _transport(self):
        """The aiohttp session of the running event loop (made on first use)."""
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop:
            self._proxy = _env_proxy(self.url)
            self._errors = (ValueError, aiohttp.ClientError, asyncio.TimeoutError)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
                ),
                connector=aiohttp.TCPConnector(limit=256),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # True would look up the proxy in a thread per request
            )
            self._session_loop = loop
        return self._session

    async def _post(self, payload: bytes) -> tuple[int, bytes]:
        session = self._transport()
        async with session.post(
            self.url,
            data=payload,
            headers=self._headers,
            proxy=self._proxy,
            allow_redirects=False,  # a redirect is an answer (then bad JSON)
        ) as r:
            return r.status, await r.read()

    def _rest(self, info: dict[str, Any]) -> dict[str, Any]:
        s = self.sampling
        rest: dict[str, Any] = {
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        }
        if info.get("tools"):
            rest["tools"] = info["tools"]
        if s.seed is not None:
            sample = int(info.get("episode", {}).get("sample", 0))
            rest["seed"] = s.seed + int(info.get("turn", 0)) + 1000 * sample
        if s.logprobs:
            rest["logprobs"] = True
        if s.return_token_ids:
            rest["return_token_ids"] = True
        return rest

    def request_body(self, info: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of the chat-completions request for this conversation."""
        return {
            "model": self.model,
            "messages": to_openai_messages(info["messages"], self.image_format),
            **self._rest(info),
        }

    def request_payload(self, info: dict[str, Any]) -> bytes:
        """``json.dumps(request_body(info)).encode()``, with each image's data URL made only once."""
        urls: list[str] = []

        def mark(image, fmt):
            urls.append(data_url(image, fmt))
            return self._mark

        body = {
            "model": self.model,
            "messages": to_openai_messages(info["messages"], self.image_format, mark),
            **self._rest(info),
        }
        text = json.dumps(body)
        parts = text.split(self._mark)
        if len(parts) != len(urls) + 1:  # the mark also occurs in some text: no shortcut
            return json.dumps(self.request_body(info)).encode()
        out = [parts[0]]
        for url, part in zip(urls, parts[1:], strict=True):
            out += (url, part)  # base64 data URLs need no JSON escaping
        return "".join(out).encode()

    async def act(self, info: dict[str, Any]) -> PolicyReply:
        """Send the conversation; return the reply text (tool calls in protocol form)."""
        t0 = time.perf_counter()
        resp = await self._with_retries(self.request_payload(info))
        latency = time.perf_counter() - t0
        choices = resp.get("choices") if isinstance(resp, dict) else None
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise RetryableError(f"{self.url}: the answer has no choices")
        choice = choices[0]
        usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else {}
        logprobs = choice.get("logprobs")
        lp = logprobs.get("content") if isinstance(logprobs, dict) else None
        return PolicyReply(
            text=reply_text(choice.get("message")),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            token_ids=choice.get("token_ids"),
            logprobs=[float(t["logprob"]) for t in lp] if lp else None,
            latency_s=latency,
            extra={
                "finish_reason": choice.get("finish_reason"),
                "prompt_token_ids": resp.get("prompt_token_ids"),
            },
        )

    async def _with_retries(self, payload: bytes) -> dict[str, Any]:
        delay = self.backoff_s
        for attempt in range(self.max_retries + 1):
            try:
                status, raw = await self._post(payload)
                if status < 400:
                    return json.loads(raw)
                if status < 500 and status != 429:
                    text = raw.decode("utf-8", "replace")
                    raise AstroReasonError(
                        f"{self.url}: the server refused the request (HTTP {status}): {text[:300]}"
                    )
                err = f"HTTP {status}"
            except self._errors as e:
                err = self._describe(e)
            if attempt == self.max_retries:
                raise RetryableError(f"{self.url}: {err} after {attempt + 1} tries")
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _describe(self, e: BaseException) -> str:
        if isinstance(e, asyncio.TimeoutError):  # aiohttp's, named as httpx names them
            import aiohttp

            kind = (
                "ConnectTimeout" if isinstance(e, aiohttp.ConnectionTimeoutError) else "ReadTimeout"
            )
            return f"{kind}: no answer within {self.timeout_s:g} s"
        return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        session, self._session = self._session, None
        if session is not None and self._session_loop is asyncio.get_running_loop():
            await session.close()
        self._session_loop = None


def _env_proxy(url: str) -> str | None:
    """The proxy that ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` and ``NO_PROXY`` give ``url``."""
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def reply_text(message: Any) -> str:
    """The raw reply: content plus any server-parsed tool calls in ``<tool_call>`` form.

    A malformed message (a string where an object belongs, at any level) still gives text: what
    it holds, which the environment then judges like any other reply (an invalid one, usually).
    """
    if not isinstance(message, dict):
        return message if isinstance(message, str) else ""
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    calls = message.get("tool_calls")
    for tc in calls if isinstance(calls, list) else []:
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict):
            text += ("\n" if text else "") + (fn if isinstance(fn, str) else str(tc))
            continue
        raw = fn.get("arguments")
        try:
            args = json.loads(raw) if isinstance(raw, str) and raw else (raw or {})
        except ValueError:
            args = raw
        text += ("\n" if text else "") + format_tool_call(str(fn.get("name")), args)
    return text
