"""The settings a trained checkpoint was trained and validated with, kept beside its weights.

Training writes ``astroreason.json`` into every model folder it saves (the stage folder and its
``checkpoint-N`` folders); ``eval``, ``rollout`` and ``serve`` read it and take its values as their
defaults, so a checkpoint runs at the view size, tool budget, turn count, reply length and
temperature it learned with unless the user says otherwise (and then a one-line note says so).

The file::

    {"format": 1, "env": "galaxy", "condition": "tools",
     "env_options": {"view_size": 64, "max_turns": 2, "max_tool_calls": 1, ...},
     "sampling": {"temperature": 0.0, "max_tokens": 48},
     "pixels": {"min_pixels": 1024, "max_pixels": 262144},
     "trained": {"stage": "grpo", "config": "tiny-cpu", "steps": 60, "command": "..."}}
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astroreason.errors import ConfigError

SETTINGS_FILE = "astroreason.json"
"""File name of the settings in a model folder."""

FORMAT = 1

ENV_OPTION_KEYS = (
    "max_turns",
    "max_tool_calls",
    "view_size",
    "obs",
    "codec",
    "task",
    "view_width",
    "view_height",
    "table",
)
"""Environment options a checkpoint records (the keys ``env_factory`` takes)."""


@dataclass(frozen=True)
class CheckpointSettings:
    """What a checkpoint was trained and validated with.

    Attributes:
        env: ``galaxy`` or ``spectrum``.
        condition: The training condition (``tools``, ``no-tools``, a placebo, ...).
        env_options: The environment options (keys of ``ENV_OPTION_KEYS``) of training and validation.
        temperature: Sampling temperature of its validation (0: greedy).
        max_tokens: Tokens per reply of its validation.
        min_pixels: Smallest image area its processor keeps.
        max_pixels: Largest image area its processor keeps.
        trained: Provenance: stage, config name, steps, the command.
    """

    env: str
    condition: str
    env_options: dict[str, Any]
    temperature: float
    max_tokens: int
    min_pixels: int | None = None
    max_pixels: int | None = None
    trained: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "format": FORMAT,
            "env": self.env,
            "condition": self.condition,
            "env_options": dict(self.env_options),
            "sampling": {"temperature": self.temperature, "max_tokens": self.max_tokens},
            "pixels": {"min_pixels": self.min_pixels, "max_pixels": self.max_pixels},
            "trained": dict(self.trained),
        }

    @classmethod
    def from_json(cls, d: Any, where: str) -> CheckpointSettings:
        """Parse the file's content; a malformed one is a one-line error naming ``where``."""
        try:
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
            opts = d.get("env_options", {})
            if not isinstance(opts, dict):
                raise ValueError("env_options: not an object")
            unknown = set(opts) - set(ENV_OPTION_KEYS)
            if unknown:
                raise ValueError(f"env_options: unknown key(s) {sorted(unknown)}")
            sampling = d["sampling"]
            pixels = d.get("pixels") or {}
            return cls(
                env=str(d["env"]),
                condition=str(d["condition"]),
                env_options=dict(opts),
                temperature=float(sampling["temperature"]),
                max_tokens=int(sampling["max_tokens"]),
                min_pixels=pixels.get("min_pixels"),
                max_pixels=pixels.get("max_pixels"),
                trained=dict(d.get("trained") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            field_name = err.args[0] if isinstance(err, KeyError) else err
            raise ConfigError(f"{where}: bad checkpoint settings ({field_name})") from None

    def defaults(self) -> dict[str, Any]:
        """Every knob as ``{cli option name: value}``.

        The env, condition, env options, sampling, and the image limits when recorded.
        """
        pixels = {"min_pixels": self.min_pixels, "max_pixels": self.max_pixels}
        return {
            "env": self.env,
            "condition": self.condition,
            **self.env_options,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **{k: v for k, v in pixels.items() if v is not None},
        }


def write_settings(folder: str | Path, settings: CheckpointSettings) -> Path:
    """Write ``folder/astroreason.json``; returns its path."""
    path = Path(folder) / SETTINGS_FILE
    path.write_text(json.dumps(settings.to_json(), indent=2) + "\n")
    return path


def read_settings(folder: str | Path) -> CheckpointSettings | None:
    """The settings in ``folder`` (None when the folder has none: a base model, a hub id)."""
    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not readable JSON ({err})") from None
    return CheckpointSettings.from_json(d, str(path))


def served_model_folder(base_url: str, model: str | None, timeout: float = 5.0) -> Path | None:
    """The local folder an OpenAI-compatible server serves ``model`` from (vLLM's ``root``).

    None when the server cannot be asked, does not say, or serves it from no local folder.
    """
    url = base_url.rstrip("/") + "/models"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (user's own URL)
            data = json.loads(resp.read().decode())
    except (OSError, ValueError):
        return None
    entries = data.get("data") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        if model is None or entry.get("id") == model:
            root = entry.get("root")
            if isinstance(root, str) and Path(root).is_dir():
                return Path(root)
    return None


def settings_for(
    policy: str, model: str | None, base_url: str | None
) -> tuple[CheckpointSettings | None, str | None]:
    """The checkpoint settings behind a policy, and the folder they came from.

    ``transformers``: ``model`` is the folder; ``openai``: the server is asked which folder it
    serves ``model`` from. Scripted policies (oracle, random, majority) have none.
    """
    folder: Path | None = None
    if policy == "transformers" and model and Path(model).is_dir():
        folder = Path(model)
    elif policy == "openai" and base_url:
        folder = served_model_folder(base_url, model)
    if folder is None:
        return None, None
    return read_settings(folder), str(folder)


def resolve(
    explicit: dict[str, Any],
    fallback: dict[str, Any],
    settings: CheckpointSettings | None,
    where: str | None,
    applies: tuple[str, ...] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Merge option values: the user's, then the checkpoint's, then the defaults.

    Args:
        explicit: Options the user gave on the command line.
        fallback: Every option's default (None: the env's own default).
        settings: The checkpoint's settings, or None.
        where: The folder the settings came from (named in the notes).
        applies: Option names the checkpoint may set (default: all it has).

    Returns:
        The values, and one note per explicit value that differs from the checkpoint's.
    """
    values = dict(fallback)
    notes: list[str] = []
    ckpt = settings.defaults() if settings is not None else {}
    if applies is not None:
        ckpt = {k: v for k, v in ckpt.items() if k in applies}
    for key, value in ckpt.items():
        if key in fallback:
            values[key] = value
    for key, value in explicit.items():
        values[key] = value
        if key in ckpt and ckpt[key] != value:
            flag = "--" + key.replace("_", "-")
            notes.append(
                f"note: {flag} {value} differs from the {ckpt[key]} that {where} was trained "
                "and validated with"
            )
    return values, notes


def settings_table(settings: CheckpointSettings) -> str:
    """One line: the settings as ``key=value`` pairs (for logs and cards)."""
    return " ".join(f"{k}={v}" for k, v in settings.defaults().items())


__all__ = [
    "SETTINGS_FILE",
    "CheckpointSettings",
    "read_settings",
    "resolve",
    "served_model_folder",
    "settings_for",
    "settings_table",
    "write_settings",
]
