"""Policies by name (``openai``, ``transformers``, ``oracle``, ``random``, ``majority``).

Shared by the CLI, the demo and notebooks, so a policy named on the command line and one built in
Python are the same object.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from astroreason.errors import ConfigError
from astroreason.policies.base import Policy

POLICY_KINDS = ("openai", "transformers", "oracle", "random", "majority")


def make_policy(
    kind: str,
    *,
    base_url: str | None = None,
    model: str | None = None,
    sampling: Any = None,
    env: Any = None,
    seed: int = 0,
) -> Policy:
    """Build a policy by name.

    Args:
        kind: One of :data:`POLICY_KINDS`.
        base_url: ``openai``: the OpenAI-compatible endpoint, e.g. ``http://127.0.0.1:8000/v1``.
        model: ``openai``: the served model name; ``transformers``: a local folder.
        sampling: A :class:`~astroreason.policies.openai_chat.SamplingConfig` (model policies).
        env: ``majority``: an environment whose source and split give the train labels.
        seed: ``random``: the seed of its choices.

    Raises:
        ConfigError: An unknown kind, or a setting the kind needs is missing.
    """
    from astroreason.policies.scripted import MajorityPolicy, OraclePolicy, RandomPolicy

    if kind == "openai":
        from astroreason.policies.openai_chat import OpenAIChatPolicy

        if not base_url or not model:
            raise ConfigError("--policy openai needs --base-url and --model")
        return OpenAIChatPolicy(base_url, model, sampling=sampling)
    if kind == "transformers":
        from astroreason.policies.transformers_local import TransformersPolicy

        if not model:
            raise ConfigError("--policy transformers needs --model (a local folder)")
        return TransformersPolicy(model, sampling=sampling)
    if kind == "oracle":
        return OraclePolicy()
    if kind == "random":
        return RandomPolicy(seed=seed)
    if kind == "majority":
        from astroreason.data.quality.splits import split_for

        if env is None:
            raise ConfigError("--policy majority needs an environment to read the train labels")
        u = env.unwrapped
        train = u.source.labels()[split_for(u.source, u.cfg.split_seed).rows("train")]
        return MajorityPolicy(int(np.bincount(train).argmax()))
    raise ConfigError(
        f"--policy: unknown {kind!r}; choose {', '.join(POLICY_KINDS[:-1])} or majority"
    )
