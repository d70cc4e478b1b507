"""Environment factories by name (``galaxy``, ``spectrum``), shared by the CLI, the demo and notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def make_env(env: str, data: Any, split: str, condition: str, **options: Any):
    """The registered environment ``env`` (``galaxy`` or ``spectrum``), made through Gymnasium.

    ``data`` is a path or an opened source; ``options`` are the env config's fields.
    """
    import gymnasium

    import astroreason.envs as envs  # registers the ids
    from astroreason.errors import ConfigError

    if env not in envs.ENV_IDS:
        raise ConfigError(f"env: unknown {env!r}; choose {' or '.join(envs.ENV_IDS)}")
    data = str(data) if isinstance(data, Path) else data
    return gymnasium.make(envs.ENV_IDS[env], data=data, split=split, condition=condition, **options)


def env_factory(env: str, data: str | Path | Any, split: str, condition: str, options: dict):
    """A zero-argument factory of the requested environment, and one env it already made.

    The data is opened once (by that first env) and shared by every copy. ``condition`` may be a
    label such as ``tools@sft``: the env runs its base condition. Options set to None take the
    env's defaults.
    """
    from astroreason.conditions import base_condition, check_condition

    condition = base_condition(check_condition(condition))
    opts = {k: v for k, v in options.items() if v is not None}
    probe = make_env(env, data, split, condition, **opts)
    source = probe.unwrapped.source

    def make():
        return make_env(env, source, split, condition, **opts)

    return make, probe
