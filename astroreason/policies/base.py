"""The policy interface shared by scripted, OpenAI-compatible and transformers policies."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from astroreason.errors import AstroReasonError


class RetryableError(AstroReasonError):
    """The model's server stayed unreachable or broken (connection, timeout, 5xx) after retries."""


@dataclass
class PolicyReply:
    """One model reply and what it cost.

    Attributes:
        text: The raw reply (the environment's action).
        prompt_tokens: Tokens in the prompt (0 when unknown).
        completion_tokens: Tokens generated (0 when unknown).
        token_ids: Generated token ids, when the backend returns them.
        logprobs: Per-token log-probabilities, when asked for.
        latency_s: Wall time of the request.
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    latency_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Policy(abc.ABC):
    """Produces the next reply from the environment's ``info`` (``messages``, ``tools``, ...).

    Model-backed policies read only ``info["messages"]`` and ``info["tools"]``; scripted policies may
    also read ``info["ground_truth"]`` (that is what makes them scripted).
    """

    name: str = "policy"

    @abc.abstractmethod
    async def act(self, info: dict[str, Any]) -> PolicyReply:
        """Return the next reply for the conversation in ``info``."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections (no-op by default)."""
