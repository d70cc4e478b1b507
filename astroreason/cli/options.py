"""Options shared by several commands, and where their defaults come from.

Every default is read from the config dataclass the option fills; a trained checkpoint's
``astroreason.json`` then overrides the defaults of the options it records
(:func:`_with_checkpoint_settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astroreason.checkpoint_settings import ENV_OPTION_KEYS, resolve, settings_for
from astroreason.cli.demo import DemoConfig
from astroreason.codecs.train import CodecTrainConfig
from astroreason.data.quality.splits import SplitConfig
from astroreason.data.synthesis.galaxy import GalaxySynthConfig
from astroreason.data.synthesis.spectra import SpectraSynthConfig
from astroreason.envs.galaxy import GalaxyEnvConfig
from astroreason.envs.spectrum import SpectrumEnvConfig
from astroreason.errors import ConfigError
from astroreason.eval.config import EvalConfig
from astroreason.models.serving import ServeConfig
from astroreason.policies.openai_chat import SamplingConfig
from astroreason.rollout import RolloutConfig
from astroreason.training.pretrain import PretrainConfig

# Every option's default comes from the config dataclass it fills (one source for each knob).
_GALAXY_SYNTH, _SPECTRA_SYNTH, _SPLIT = GalaxySynthConfig(), SpectraSynthConfig(), SplitConfig()
_PRETRAIN, _CODEC, _DEMO = PretrainConfig(), CodecTrainConfig(), DemoConfig()
_SERVE, _SAMPLING, _ROLLOUT = ServeConfig(model=""), SamplingConfig(), RolloutConfig()
_EVAL = EvalConfig()


DataOpt = Annotated[Path, typer.Option(help="Data file or folder.")]
EnvOpt = Annotated[str, typer.Option(help="galaxy or spectrum.")]
SplitOpt = Annotated[str, typer.Option(help="train, val, test or all.")]
PolicyOpt = Annotated[str, typer.Option(help="openai, transformers, oracle, random or majority.")]
BaseUrlOpt = Annotated[
    str | None, typer.Option(help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1.")
]
ModelOpt = Annotated[str | None, typer.Option(help="Served model name, or a local folder.")]
ConcurrencyOpt = Annotated[
    int, typer.Option(help="Episodes in flight at once (1 to 1024), each on its own environment.")
]
_GALAXY_ENV, _SPECTRUM_ENV = GalaxyEnvConfig(), SpectrumEnvConfig()
MaxTurnsOpt = Annotated[
    int | None,
    typer.Option(
        help=f"Replies per episode, the answer included (env default {_GALAXY_ENV.max_turns})."
    ),
]
ViewSizeOpt = Annotated[
    int | None,
    typer.Option(help=f"Galaxy view side in pixels (env default {_GALAXY_ENV.view_size})."),
]
MaxToolCallsOpt = Annotated[
    int | None,
    typer.Option(
        help="Tool calls allowed per episode; also sizes no-tools-matched (env default "
        f"{_GALAXY_ENV.max_tool_calls})."
    ),
]
TaskOpt = Annotated[
    str | None,
    typer.Option(help=f"Spectrum task: class or subclass (env default {_SPECTRUM_ENV.task})."),
]
ViewWidthOpt = Annotated[
    int | None,
    typer.Option(help=f"Spectrum plot width in pixels (env default {_SPECTRUM_ENV.view_width})."),
]
ViewHeightOpt = Annotated[
    int | None,
    typer.Option(help=f"Spectrum plot height in pixels (env default {_SPECTRUM_ENV.view_height})."),
]
ObsOpt = Annotated[
    str | None,
    typer.Option(
        help="Galaxies: how views reach the model, pixels (images) or tokens (an image codec's "
        "ids as text, no image; the tools return the tokens of the requested view; env default "
        f"{_GALAXY_ENV.obs})."
    ),
]
CodecOpt = Annotated[
    str | None,
    typer.Option(
        help="Codec of --obs tokens: tiny-vq (shipped), a codec folder, or aion:FOLDER (AION-1's "
        f"image codec from weights on disk; env default {_GALAXY_ENV.codec})."
    ),
]
TableOpt = Annotated[
    bool | None,
    typer.Option(
        "--table/--no-table",
        help="Spectrum windows also carry a binned numeric table of wavelength and flux "
        f"(env default {'on' if _SPECTRUM_ENV.table else 'off'}).",
    ),
]


def _env_options(**options) -> dict:
    """The env overrides the user set (None: the env's default)."""
    return {k: v for k, v in options.items() if v is not None}


def _check_obs(env: str, opts: dict) -> None:
    """``--obs tokens`` / ``--codec`` exist for galaxies only (no 1-D codec for spectra yet)."""
    if env != "galaxy" and (opts.get("obs", "pixels") != "pixels" or "codec" in opts):
        raise ConfigError(f"--obs/--codec: the {env} env shows pixels only (tokens: galaxies)")


TemperatureOpt = Annotated[
    float, typer.Option(help="Sampling temperature (a trained checkpoint's default: its own, 0).")
]
MaxTokensOpt = Annotated[
    int, typer.Option(help="Tokens per reply at most (a trained checkpoint's default: its own).")
]

_CHECKPOINT_KNOBS = (
    "env",
    "condition",
    *ENV_OPTION_KEYS,
    "temperature",
    "max_tokens",
    "min_pixels",
    "max_pixels",
)
"""Options a trained checkpoint's ``astroreason.json`` sets when the user does not."""


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user set option ``name`` (on the command line or through the environment)."""
    source = ctx.get_parameter_source(name)  # typer's vendored click: compare by name
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _with_checkpoint_settings(
    ctx: typer.Context, policy: str, model: str | None, base_url: str | None
) -> dict:
    """The command's options a checkpoint records, its settings as their defaults.

    One line says which settings were taken (:data:`_CHECKPOINT_KNOBS`). The user's own flags
    win; each that differs from the checkpoint's value prints one note.
    """
    values = {k: ctx.params[k] for k in _CHECKPOINT_KNOBS if k in ctx.params}
    settings, where = settings_for(policy, model, base_url)
    if settings is None:
        return values
    explicit = {k: v for k, v in values.items() if _given(ctx, k)}
    applies = _CHECKPOINT_KNOBS
    if explicit.get("env", settings.env) != settings.env:  # another env: its options do not fit
        applies = ("env", "temperature", "max_tokens", "min_pixels", "max_pixels")
    merged, notes = resolve(explicit, values, settings, where, applies)
    taken = {
        k: merged[k]
        for k in applies
        if k in values and k in settings.defaults() and k not in explicit
    }
    if taken:
        pairs = " ".join(f"{k}={v}" for k, v in taken.items())
        typer.echo(f"settings of {where} (trained with them): {pairs}", err=True)
    for note in notes:
        typer.echo(note, err=True)
    return merged


def _run_options(ctx: typer.Context) -> tuple[dict, dict]:
    """``rollout``/``eval``: the resolved options and the env options among them.

    Values come from :func:`_with_checkpoint_settings`; an env option left None takes the env's
    default.
    """
    p = ctx.params
    values = _with_checkpoint_settings(ctx, p["policy"], p["model"], p["base_url"])
    opts = _env_options(**{k: values[k] for k in ENV_OPTION_KEYS})
    _check_obs(values["env"], opts)
    return values, opts


def _policy(kind: str, base_url: str | None, model: str | None, sampling, probe, seed: int):
    """Build a policy by name (:func:`astroreason.policies.factory.make_policy`)."""
    from astroreason.policies.factory import make_policy

    return make_policy(
        kind, base_url=base_url, model=model, sampling=sampling, env=probe, seed=seed
    )


_CONFIG_HELP = (
    "A named config (`astroreason config list`: tiny-cpu, qwen3-vl-2b-1gpu, ...) or a .py path."
)
_SET_HELP = (
    "Override a config field, key=value (repeatable; `astroreason config show NAME` lists them). "
    "max_steps and learning_rate mean the running stage's own (SFT: sft_max_steps, "
    "sft_learning_rate)."
)
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue from the stage's last checkpoint (optimizer, scheduler, RNG states and "
        "data order); without one, start at step 0.",
    ),
]
AllowLeakyOpt = Annotated[
    bool,
    typer.Option(
        "--allow-leaky",
        help="Train even when the leakage audit of the data has a high-severity finding; the "
        "finding is written into the experiment log (without it such a run refuses, exit 2).",
    ),
]
