"""Environment factories by name (``galaxy``, ``spectrum``), shared by the CLI, the demo and notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def env_factory(env: str, data: str | Path | Any, split: str, condition: str, options: dict):
    """A zero-argument factory of the requested environment, and one env it already made.

    The data is opened once (by that first env) and shared by every copy. ``condition`` may be a
    label such as ``tools@sft``: the env runs its base condition.
    """
    import gymnasium

    import astroreason.envs as envs  # registers the ids
    from astroreason.conditions import base_condition, check_condition
    from astroreason.errors import ConfigError

    condition = base_condition(check_condition(condition))
    ids = envs.ENV_IDS
    if env not in ids:
        raise ConfigError(f"--env: unknown {env!r}; choose {' or '.join(ids)}")
    opts = {k: v for k, v in options.items() if v is not None}
    data = str(data) if isinstance(data, Path) else data
    probe = gymnasium.make(ids[env], data=data, split=split, condition=condition, **opts)
    source = probe.unwrapped.source

    def make():
        return gymnasium.make(ids[env], data=source, split=split, condition=condition, **opts)

    return make, probe
