"""The ``astroreason`` command line: with the demo pipeline it runs, where every layer meets.

User mistakes (bad files, bad options) print one line naming the file, the field and the problem and exit
with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from astroreason.checkpoint_settings import ENV_OPTION_KEYS, resolve, settings_for
from astroreason.cli.demo import DemoConfig
from astroreason.data.splits import SplitConfig
from astroreason.data.synth_galaxy import GalaxySynthConfig
from astroreason.data.synth_spectra import SpectraSynthConfig
from astroreason.envs.galaxy import GalaxyEnvConfig
from astroreason.envs.spectrum import SpectrumEnvConfig
from astroreason.errors import AstroReasonError, ConfigError
from astroreason.eval.config import STANDARD_CONDITIONS, EvalConfig
from astroreason.models.pixels import MAX_PIXELS, MIN_PIXELS
from astroreason.models.serving import ServeConfig
from astroreason.policies.openai_chat import SamplingConfig
from astroreason.rollout import RolloutConfig
from astroreason.training.codec import CodecTrainConfig
from astroreason.training.pretrain import PretrainConfig

# Every option's default comes from the config dataclass it fills (one source for each knob).
_GALAXY_SYNTH, _SPECTRA_SYNTH, _SPLIT = GalaxySynthConfig(), SpectraSynthConfig(), SplitConfig()
_PRETRAIN, _CODEC, _DEMO = PretrainConfig(), CodecTrainConfig(), DemoConfig()
_SERVE, _SAMPLING, _ROLLOUT = ServeConfig(model=""), SamplingConfig(), RolloutConfig()
_EVAL = EvalConfig()

app = typer.Typer(
    name="astroreason",
    help="Teach a vision-language model to think with images in astronomy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Synthetic data, splits and the leakage audit.", no_args_is_help=True)
synth_app = typer.Typer(help="Write synthetic data sets in the real formats.", no_args_is_help=True)
app.add_typer(data_app, name="data")
data_app.add_typer(synth_app, name="synth")

_DEBUG = {"on": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """Teach a vision-language model to think with images in astronomy."""
    _DEBUG["on"] = debug


@synth_app.command("galaxy")
def synth_galaxy(
    out: Annotated[Path, typer.Option(help="Output HDF5 file (Galaxy10 DECaLS format).")],
    n: Annotated[
        int, typer.Option(help="Number of galaxies (all ten classes, balanced).")
    ] = _GALAXY_SYNTH.n,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = _GALAXY_SYNTH.size,
    seed: Annotated[
        int, typer.Option(help="Random seed: same seed, same bytes.")
    ] = _GALAXY_SYNTH.seed,
) -> None:
    """Render synthetic galaxies with GalSim into a Galaxy10 DECaLS-format HDF5 file."""
    from astroreason.data.synth_galaxy import GalaxySynthConfig, write_galaxy_file

    try:  # a fresh clone has no data/ folder: the README's first command makes it
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"--out: cannot make folder {out.parent}: {err.strerror or err}"
        ) from None
    write_galaxy_file(out, GalaxySynthConfig(n=n, size=size, seed=seed), progress=True)
    typer.echo(f"wrote {n} galaxies to {out}")


@synth_app.command("spectra")
def synth_spectra(
    out: Annotated[Path, typer.Option(help="Output folder for spec-*.fits files.")],
    n: Annotated[
        int, typer.Option(help="Number of spectra (classes balanced).")
    ] = _SPECTRA_SYNTH.n,
    seed: Annotated[
        int, typer.Option(help="Random seed: same seed, same bytes.")
    ] = _SPECTRA_SYNTH.seed,
) -> None:
    """Write synthetic SDSS-format spectra (STAR, GALAXY STARFORMING/AGN, QSO BROADLINE)."""
    from astroreason.data.synth_spectra import SpectraSynthConfig, write_spectra_dir

    write_spectra_dir(out, SpectraSynthConfig(n=n, seed=seed), progress=True)
    typer.echo(f"wrote {n} spectra to {out}")


@data_app.command("info")
def data_info(
    path: Annotated[Path, typer.Argument(help="A data file or folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    sample: Annotated[int, typer.Option(help="Rows read (seeded) for sizes and values.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of the audit.")] = 0,
) -> None:
    """Show what to know before a run: rows, classes, sizes, values, bands and leaking columns.

    Rows, classes and counts, image size (or spectrum length and wavelength range), pixel value
    range and dtype from a seeded sample, bands, the metadata columns and which of them (and whether
    the row order) could leak the label, from the leakage audit without pixel hashing.
    """
    from astroreason.data.info import describe, print_info

    info = describe(path, sample_rows=sample, seed=seed)
    if as_json:
        typer.echo(info.to_json())
    else:
        print_info(info)


@data_app.command("boxes")
def data_boxes(
    path: Annotated[Path, typer.Argument(help="An image file or folder.")],
    split: Annotated[str, typer.Option(help="train, val, test or all: the rows to do.")] = "all",
    seed: Annotated[int, typer.Option(help="Split seed.")] = _SPLIT.seed,
) -> None:
    """Find (and cache beside the data) the central galaxy's box in images that have none.

    Tool runs, the SFT teacher and the on-target metric do this themselves on first use; run it
    ahead to see what was found. Files with their own boxes (the synthetic set) are left alone.
    """
    from astroreason.data import open_source
    from astroreason.data.boxes import has_own_boxes, shared_cache
    from astroreason.data.splits import split_for

    src = open_source(path)
    if src.kind != "image":
        raise ConfigError(f"data: {path} holds spectra; target boxes are for images")
    if has_own_boxes(src):
        typer.echo(f"{path}: its samples carry their own boxes; nothing to do")
        return
    rows = range(len(src)) if split == "all" else split_for(src, seed).rows(split)
    cache = shared_cache(src)
    cache.ensure(rows, progress=True)
    s = cache.summary()
    typer.echo(
        f"{s['rows']} boxes in {s['path']}: {s['photutils']} found by photutils, "
        f"{s['centre_fallback']} central fallback squares (nothing detected near the centre); "
        f"median half-light radius {s['median_r_half']} px"
    )


@data_app.command("repack")
def data_repack(
    src: Annotated[Path, typer.Argument(help="A Galaxy10 HDF5 file.")],
    dst: Annotated[Path, typer.Argument(help="The new file.")],
    shuffle: Annotated[
        bool, typer.Option(help="Write the rows in a seeded random order (a sorted file's cure).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of --shuffle.")] = 0,
    compression: Annotated[str | None, typer.Option(help="None, lzf or gzip.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite DST.")] = False,
) -> None:
    """Rewrite a Galaxy10 file one image per chunk (fast random reads), optionally shuffled."""
    from astroreason.data.galaxy10 import repack

    out = repack(src, dst, compression, overwrite=force, shuffle_seed=seed if shuffle else None)
    typer.echo(f"wrote {out}" + (f" (rows shuffled, seed {seed})" if shuffle else ""))


@data_app.command("split")
def data_split(
    path: Annotated[Path, typer.Argument(help="A data file or folder.")],
    seed: Annotated[int, typer.Option(help="Split seed.")] = _SPLIT.seed,
    val: Annotated[float, typer.Option(help="Validation fraction.")] = _SPLIT.val,
    test: Annotated[float, typer.Option(help="Test fraction.")] = _SPLIT.test,
    force: Annotated[bool, typer.Option(help="Overwrite an existing split file.")] = False,
) -> None:
    """Create (or show) the persisted, stratified, leakage-safe train/val/test split of a data file."""
    from astroreason.data import open_source
    from astroreason.data.splits import SplitConfig, load_or_create_split

    src = open_source(path)
    split = load_or_create_split(src, SplitConfig(seed=seed, val=val, test=test), overwrite=force)
    typer.echo(split.summary())


@data_app.command("audit")
def data_audit(
    path: Annotated[Path, typer.Argument(help="A data file or folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as JSON.")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 on any high-severity finding.")] = False,
) -> None:
    """Look for shortcuts to the label: row order, id columns, metadata, duplicates, imbalance."""
    from astroreason.data import open_source
    from astroreason.data.audit import audit_source, print_report

    report = audit_source(open_source(path))
    if as_json:
        typer.echo(report.to_json())
    else:
        print_report(report)
    if strict and report.has_high:
        raise typer.Exit(1)


model_app = typer.Typer(
    help="Models: the offline tiny Qwen3-VL, random or pretrained.", no_args_is_help=True
)
app.add_typer(model_app, name="model")


@model_app.command("tiny")
def model_tiny(
    out: Annotated[Path, typer.Option(help="Folder to write the model and processor into.")],
    seed: Annotated[int, typer.Option(help="Initialisation seed.")] = 0,
) -> None:
    """Build the tiny random Qwen3-VL offline (the CPU stand-in for Qwen/Qwen3-VL-*)."""
    from astroreason.models.tiny import build_tiny_model

    path = build_tiny_model(out, seed=seed)
    typer.echo(f"tiny Qwen3-VL in {path}")


@model_app.command("limits")
def model_limits(
    model: Annotated[str, typer.Argument(help="A model folder, or a hub id in the local cache.")],
    out: Annotated[Path, typer.Option(help="The folder to write (links to MODEL's files).")],
    min_pixels: Annotated[int, typer.Option(help="Smallest image area kept.")] = MIN_PIXELS,
    max_pixels: Annotated[int, typer.Option(help="Largest image area kept.")] = MAX_PIXELS,
) -> None:
    """A model folder whose processor keeps every view's size, for servers that read the folder.

    Qwen3-VL's released processor upscales images below 256x256 pixels. `trl vllm-serve` and
    other readers take the limits from the folder: point them at OUT (no weights are copied).
    """
    from astroreason.models.pixels import PixelLimits, folder_with_limits, local_folder

    path = folder_with_limits(local_folder(model), PixelLimits(min_pixels, max_pixels), out)
    typer.echo(path)


@model_app.command("pretrain")
def model_pretrain(
    out: Annotated[Path, typer.Option(help="Folder for the pretrained model and its card.")] = Path(
        _PRETRAIN.out
    ),
    work: Annotated[
        Path,
        typer.Option(help="Scratch folder: corpus, initial model, each stage's model and state."),
    ] = Path(_PRETRAIN.work),
    n_galaxies: Annotated[
        int, typer.Option(help="Synthetic galaxies in the corpus.")
    ] = _PRETRAIN.n_galaxies,
    n_spectra: Annotated[
        int, typer.Option(help="Synthetic spectra in the corpus.")
    ] = _PRETRAIN.n_spectra,
    tower_steps: Annotated[
        int, typer.Option(help="Most steps of stage 1; its probe stops it sooner once it stalls.")
    ] = _PRETRAIN.tower.max_steps,
    align_steps: Annotated[
        int, typer.Option(help="Steps of stage 2 (tower frozen).")
    ] = _PRETRAIN.align.max_steps,
    full_steps: Annotated[
        int, typer.Option(help="Steps of stage 3 (everything).")
    ] = _PRETRAIN.full.max_steps,
    probe_items: Annotated[
        int, typer.Option(help="Held-out galaxies the card reports.")
    ] = _PRETRAIN.probe_items,
    seed: Annotated[int, typer.Option(help="Initialisation and data-order seed.")] = _PRETRAIN.seed,
) -> None:
    """Pretrain the tiny Qwen3-VL on CPU from scratch in three stages, probe it, write its card.

    1 tower: the vision tower alone with small heads on every view the environments produce,
    until its linear probe stops rising on held-out corpus rows; 2 align: mergers and language
    model on the frozen tower; 3 full: everything, the tower at a lower learning rate. Each stage
    is resumable: run the same command again after a kill. The corpus's seeds are used by no
    demo, val or test set.
    """
    import dataclasses

    from astroreason.training.pretrain import run_pretrain

    base = _PRETRAIN
    cfg = PretrainConfig(
        out=str(out),
        work=str(work),
        n_galaxies=n_galaxies,
        n_spectra=n_spectra,
        probe_items=probe_items,
        seed=seed,
        tower=dataclasses.replace(base.tower, max_steps=tower_steps),
        align=dataclasses.replace(base.align, max_steps=align_steps),
        full=dataclasses.replace(base.full, max_steps=full_steps),
    )
    summary = run_pretrain(cfg)
    steps = ", ".join(f"{k} {v['steps']}" for k, v in summary["stages"].items())
    missed = [t["target"] for t in summary["targets"] if not t["met"]]
    typer.echo(
        f"tiny base in {out}: steps {steps}; {summary['train_wall_s'] / 60:.1f} min of training; "
        f"targets met {len(summary['targets']) - len(missed)}/{len(summary['targets'])}; "
        f"card {out}/README.md"
    )


@model_app.command("codec")
def model_codec(
    out: Annotated[Path, typer.Option(help="Folder for the codec and its card.")] = Path(
        _CODEC.out
    ),
    work: Annotated[
        Path, typer.Option(help="Scratch folder for the rendered galaxies (reused).")
    ] = Path(_CODEC.work),
    n: Annotated[int, typer.Option(help="Training galaxies (five views each).")] = _CODEC.n,
    n_eval: Annotated[
        int, typer.Option(help="Held-out galaxies for the quality figures.")
    ] = _CODEC.n_eval,
    vocab: Annotated[
        int, typer.Option(help="Codebook size (token ids 0..vocab-1).")
    ] = _CODEC.vocab,
    patch: Annotated[
        int, typer.Option(help="Block side in pixels (one id per block).")
    ] = _CODEC.patch,
    seed: Annotated[
        int, typer.Option(help="Seed of the training galaxies and k-means.")
    ] = _CODEC.seed,
    compare: Annotated[
        str, typer.Option(help="Other codebook sizes to measure for the card, e.g. 64,1024.")
    ] = "",
) -> None:
    """Train the tiny-vq image codec (k-means over patches of every framing) and write its card.

    Galaxies of seed SEED train it; held-out galaxies of seed 9004 measure it (MSE and PSNR per
    framing, codebook usage). Numpy only at run time: `open_codec("tiny-vq")`.
    """
    from astroreason.training.codec import train_codec

    try:
        sizes = tuple(int(k) for k in compare.split(",") if k.strip())
    except ValueError:
        raise ConfigError(f"--compare: expected sizes like 64,1024, got {compare!r}") from None
    cfg = CodecTrainConfig(
        out=str(out),
        work=str(work),
        n=n,
        n_eval=n_eval,
        vocab=vocab,
        patch=patch,
        seed=seed,
        compare=sizes,
    )
    meta = train_codec(cfg)
    q = meta["quality"]["all"]
    typer.echo(
        f"{cfg.name} in {out}: held-out PSNR {q['psnr_codec']} dB (grey {q['psnr_grey']} dB), "
        f"{meta['wall_s']['total']:.0f} s; card {out}/README.md"
    )


@app.command("serve")
def serve(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="Model folder or Hugging Face id.")],
    port: Annotated[
        int, typer.Option(help="Port (0: pick a free one; the URL is printed).")
    ] = _SERVE.port,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = _SERVE.host,
    served_model_name: Annotated[
        str | None, typer.Option(help="Name clients use (default: the --model value).")
    ] = None,
    max_model_len: Annotated[
        int, typer.Option(help="Context length in tokens.")
    ] = _SERVE.max_model_len,
    max_images: Annotated[
        int, typer.Option(help="Images per prompt (overview plus views).")
    ] = _SERVE.max_images,
    min_pixels: Annotated[
        int,
        typer.Option(
            help="Smallest image area kept (Qwen3-VL's own 256x256 upscales views; a trained "
            "checkpoint's default: its own)."
        ),
    ] = _SERVE.min_pixels,
    max_pixels: Annotated[
        int, typer.Option(help="Largest image area kept (a trained checkpoint's: its own).")
    ] = _SERVE.max_pixels,
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="GPU memory fraction (GPU only).")
    ] = _SERVE.gpu_memory_utilization,
    online: Annotated[
        bool, typer.Option(help="Allow hub downloads (a model id not yet in the local cache).")
    ] = not _SERVE.offline,
    enforce_eager: Annotated[
        bool,
        typer.Option(
            help="Skip graph compilation: starts ~5x faster on CPU (36 s vs 186 s, tiny)."
        ),
    ] = _SERVE.enforce_eager,
) -> None:
    """Serve a Qwen3-VL model with vLLM's OpenAI-compatible server (CPU or GPU), until Ctrl-C.

    A trained checkpoint's image limits (its ``astroreason.json``) are the defaults; ``eval`` and
    ``rollout`` against this server read the rest of its settings through the server.
    """
    from astroreason.checkpoint_settings import read_settings
    from astroreason.models.serving import ServeConfig, serve_forever

    if Path(model).is_dir():  # vLLM reports the folder to clients (/v1/models): make it absolute
        served_model_name = served_model_name or model
        model = str(Path(model).resolve())
    settings = read_settings(model) if Path(model).is_dir() else None
    if settings is not None and settings.min_pixels is not None:
        v = _with_checkpoint_settings(
            ctx, "transformers", model, None, dict(min_pixels=min_pixels, max_pixels=max_pixels)
        )
        min_pixels, max_pixels = v["min_pixels"], v["max_pixels"]

    cfg = ServeConfig(
        model=model,
        served_model_name=served_model_name,
        host=host,
        port=port,
        max_model_len=max_model_len,
        max_images=max_images,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        gpu_memory_utilization=gpu_memory_utilization,
        offline=not online,
        enforce_eager=enforce_eager,
    )
    raise typer.Exit(serve_forever(cfg))


# Options shared by `rollout` and `eval` (one declaration, one help text).
DataOpt = Annotated[Path, typer.Option(help="Data file or folder.")]
EnvOpt = Annotated[str, typer.Option(help="galaxy or spectrum.")]
SplitOpt = Annotated[str, typer.Option(help="train, val, test or all.")]
PolicyOpt = Annotated[str, typer.Option(help="openai, transformers, oracle, random or majority.")]
BaseUrlOpt = Annotated[
    str | None, typer.Option(help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1.")
]
ModelOpt = Annotated[str | None, typer.Option(help="Served model name, or a local folder.")]
ConcurrencyOpt = Annotated[int, typer.Option(help="Episodes in flight at once.")]
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
    ctx: typer.Context, policy: str, model: str | None, base_url: str | None, values: dict
) -> dict:
    """``values`` with a trained checkpoint's settings as defaults (one line says which).

    The user's own flags win; each that differs from the checkpoint's value prints one note.
    """
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


def _policy(kind: str, base_url: str | None, model: str | None, sampling, probe, seed: int):
    """Build a policy by name (:func:`astroreason.policies.factory.make_policy`)."""
    from astroreason.policies.factory import make_policy

    return make_policy(
        kind, base_url=base_url, model=model, sampling=sampling, env=probe, seed=seed
    )


@app.command("rollout")
def rollout(
    ctx: typer.Context,
    data: DataOpt,
    out: Annotated[Path, typer.Option(help="Run folder (traces.jsonl and images); reruns resume.")],
    env: EnvOpt = "galaxy",
    split: SplitOpt = "test",
    policy: PolicyOpt = "openai",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    condition: Annotated[
        str,
        typer.Option(
            help="tools, no-tools, no-tools-matched, blank-tools, blind, reinput, random-view "
            "(or a label NAME@TAG)."
        ),
    ] = "tools",
    episodes: Annotated[
        int | None, typer.Option(help="Episodes in all (default: the split once).")
    ] = None,
    concurrency: ConcurrencyOpt = _ROLLOUT.concurrency,
    max_turns: MaxTurnsOpt = None,
    max_tool_calls: MaxToolCallsOpt = None,
    view_size: ViewSizeOpt = None,
    obs: ObsOpt = None,
    codec: CodecOpt = None,
    task: TaskOpt = None,
    view_width: ViewWidthOpt = None,
    view_height: ViewHeightOpt = None,
    table: TableOpt = None,
    temperature: TemperatureOpt = _SAMPLING.temperature,
    max_tokens: MaxTokensOpt = _SAMPLING.max_tokens,
    seed: Annotated[int, typer.Option(help="Seed of resets and sampling.")] = _ROLLOUT.seed,
) -> None:
    """Run multi-turn episodes of a policy in an environment and write traces (resumable).

    A trained checkpoint (``--policy transformers --model FOLDER``, or the folder an ``openai``
    server serves) runs with the settings it was trained with (env, condition, view size, tool
    budget, turns, reply length, temperature) unless a flag says otherwise.
    """
    from astroreason.policies.openai_chat import SamplingConfig
    from astroreason.rollout import RolloutConfig, run_rollouts

    v = _with_checkpoint_settings(ctx, policy, model, base_url, dict(
        env=env, condition=condition, max_turns=max_turns, max_tool_calls=max_tool_calls,
        view_size=view_size, obs=obs, codec=codec, task=task, view_width=view_width,
        view_height=view_height, table=table, temperature=temperature, max_tokens=max_tokens,
    ))  # fmt: skip
    env, condition = v["env"], v["condition"]
    opts = _env_options(**{k: v[k] for k in ENV_OPTION_KEYS})
    from astroreason.envs.factory import env_factory

    _check_obs(env, opts)
    make, probe = env_factory(env, data, split, condition, opts)
    sampling = SamplingConfig(temperature=v["temperature"], max_tokens=v["max_tokens"], seed=seed)
    pol = _policy(policy, base_url, model, sampling, probe, seed)
    cfg = RolloutConfig(episodes=episodes, concurrency=concurrency, seed=seed)
    meta = {"model": model or policy, "data": str(data)}
    s = run_rollouts(make, pol, out, cfg, run_meta=meta)
    typer.echo(
        f"{s.written} new episodes ({s.already_done} already done) in {s.wall_s:.1f}s; "
        f"accuracy of new episodes {s.accuracy:.3f}; traces in {out}/traces.jsonl"
    )


@app.command("demo")
def demo(
    out: Annotated[
        Path, typer.Option(help="Demo folder (data, model, runs); reruns resume.")
    ] = _DEMO.out,
    task: Annotated[
        str,
        typer.Option(
            help="galaxies (make demo), spectra, tokens (the galaxies as codec ids in text, paired "
            "with the galaxies task's arms), or all (make demo-all: every task, then one combined "
            "report in the demo folder)."
        ),
    ] = _DEMO.task,
    n: Annotated[int, typer.Option(help="Synthetic galaxies to generate.")] = _DEMO.n_galaxies,
    n_spectra: Annotated[
        int, typer.Option(help="Synthetic spectra to generate.")
    ] = _DEMO.n_spectra,
    view_size: Annotated[int, typer.Option(help="Galaxy view side in pixels.")] = _DEMO.view_size,
    sft_episodes: Annotated[
        int | None,
        typer.Option(
            help="Oracle conversations for SFT (0: every train row; default: tiny-cpu's)."
        ),
    ] = None,
    sft_epochs: Annotated[
        float | None, typer.Option(help="SFT passes over the conversations (default: tiny-cpu's).")
    ] = None,
    grpo_steps: Annotated[
        int | None,
        typer.Option(help="GRPO steps per arm after SFT (0: none; default: tiny-cpu's)."),
    ] = None,
    val_episodes: Annotated[
        int | None, typer.Option(help="Val episodes per validation in GRPO (default: tiny-cpu's).")
    ] = None,
    episodes: Annotated[
        int | None, typer.Option(help="Test episodes per condition (default: the split once).")
    ] = None,
    eval_split: Annotated[
        str,
        typer.Option(
            help="Evaluate on test (the report) or val (choose a recipe without seeing test: "
            "EVAL_DIR-val/, same trained arms)."
        ),
    ] = _DEMO.eval_split,
    base: Annotated[
        Path | None,
        typer.Option(
            help="Pretrained base every arm starts from (default: checkpoints/tiny-base)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Arms trained at once, each in its own process (1: one after another, here)."
        ),
    ] = _DEMO.workers,
) -> None:
    """Train and evaluate tiny agents on CPU: synthetic galaxies and spectra, SFT + GRPO, vLLM, report.

    Tasks: galaxies (pixels), spectra, and tokens (the galaxies again, each view given as the ids of
    the shipped image codec in text, no image; paired with the galaxies arms on the same items).

    Per task (each stage resumes when rerun): synthetic data (Galaxy10-format galaxies, SDSS-format
    spectra), leakage audit and split; the pretrained tiny base; SFT then GRPO for the tools arm
    and the same training for the no-tools, no-tools-matched and reinput arms (and random-view for
    galaxies); every arm served by vLLM on CPU and evaluated on the held-out test split
    (tools@grpo, tools@sft, the arms' conditions, tools-off: the tools arm's own checkpoint with no
    tools, blank-tools, blind); per task a report with paired tests, learning curves and skeptic
    checks and a trace viewer, and with several tasks one combined report. Ends with where the
    time went (data, SFT, GRPO, vLLM start-ups, rollouts, report).
    """
    from astroreason.cli.demo import run_demo

    run_demo(
        DemoConfig(
            out=out,
            task=task,
            **({"base": base} if base else {}),
            n_galaxies=n,
            n_spectra=n_spectra,
            view_size=view_size,
            sft_episodes=sft_episodes,
            sft_epochs=sft_epochs,
            grpo_steps=grpo_steps,
            val_episodes=val_episodes,
            eval_episodes=episodes,
            eval_split=eval_split,
            workers=workers,
        )
    )


@app.command("eval")
def eval_(
    ctx: typer.Context,
    data: DataOpt,
    out: Annotated[
        Path, typer.Option(help="Run folder: one subfolder per condition, reports; reruns resume.")
    ],
    env: EnvOpt = "galaxy",
    split: SplitOpt = "test",
    policy: PolicyOpt = "openai",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    conditions: Annotated[
        str, typer.Option(help="Comma-separated conditions, in report order.")
    ] = ",".join(STANDARD_CONDITIONS),
    episodes: Annotated[
        int | None, typer.Option(help="Test items per condition (default: the whole split).")
    ] = None,
    samples: Annotated[
        int,
        typer.Option(
            help="Episodes per item and condition, seeds differing: avg@k and pass@k (k > 1 "
            "needs --temperature > 0); paired tests use each item's first sample."
        ),
    ] = _EVAL.samples,
    concurrency: ConcurrencyOpt = _EVAL.concurrency,
    max_turns: MaxTurnsOpt = None,
    max_tool_calls: MaxToolCallsOpt = None,
    view_size: ViewSizeOpt = None,
    obs: ObsOpt = None,
    codec: CodecOpt = None,
    task: TaskOpt = None,
    view_width: ViewWidthOpt = None,
    view_height: ViewHeightOpt = None,
    table: TableOpt = None,
    temperature: TemperatureOpt = _SAMPLING.temperature,
    max_tokens: MaxTokensOpt = _SAMPLING.max_tokens,
    seed: Annotated[int, typer.Option(help="Seed of resets, sampling and bootstrap.")] = _EVAL.seed,
    human_ceiling: Annotated[
        float, typer.Option(help="Accuracy above which a result is an alarm.")
    ] = _EVAL.human_ceiling,
    audit: Annotated[
        bool, typer.Option(help="Run the leakage audit of the data file.")
    ] = _EVAL.audit,
    training_run: Annotated[
        list[str] | None,
        typer.Option(
            help="ARM=DIR: a training run folder whose learning curves the report shows "
            "(repeat for several arms)."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when a skeptic check fails (for scripts and CI).")
    ] = False,
) -> None:
    """Evaluate a policy on held-out data in every condition: metrics, skeptic checks, report, viewer.

    A trained checkpoint (``--policy transformers --model FOLDER``, or the folder an ``openai``
    server serves) runs with the settings it was trained with (env, view size, tool budget, turns,
    reply length, temperature) unless a flag says otherwise. With ``--strict`` a failed skeptic
    check exits 1.
    """
    from astroreason.eval.evaluate import evaluate
    from astroreason.policies.openai_chat import SamplingConfig

    v = _with_checkpoint_settings(ctx, policy, model, base_url, dict(
        env=env, max_turns=max_turns, max_tool_calls=max_tool_calls, view_size=view_size,
        obs=obs, codec=codec, task=task, view_width=view_width, view_height=view_height,
        table=table, temperature=temperature, max_tokens=max_tokens,
    ))  # fmt: skip
    env, temperature, max_tokens = v["env"], v["temperature"], v["max_tokens"]

    conds = tuple(c.strip() for c in conditions.split(",") if c.strip())
    cfg = EvalConfig(
        conditions=conds,
        episodes=episodes,
        samples=samples,
        concurrency=concurrency,
        seed=seed,
        human_ceiling=human_ceiling,
        audit=audit,
    )
    opts = _env_options(**{k: v[k] for k in ENV_OPTION_KEYS})
    sampling = SamplingConfig(temperature=temperature, max_tokens=max_tokens, seed=seed)
    if samples > 1 and temperature == 0 and policy in ("openai", "transformers"):
        typer.echo(
            f"warning: --samples {samples} with --temperature 0: greedy replies repeat, so the "
            "samples are copies (pass@k = avg@k); sample with --temperature > 0",
            err=True,
        )

    from astroreason.envs.factory import env_factory

    _check_obs(env, opts)

    def make_env_factory(condition: str):
        return env_factory(env, data, split, condition, opts)[0]

    # one policy for every condition (policies reopen their connections after aclose), built
    # before any episode runs so that a bad --policy fails at once
    _, probe = env_factory(env, data, split, cfg.conditions[0], opts)
    pol = _policy(policy, base_url, model, sampling, probe, seed)
    probe.close()

    def make_policy():
        return pol

    meta = {"model": model or policy, "data": str(data)}
    metrics = evaluate(
        make_env_factory,
        make_policy,
        out,
        cfg,
        data=str(data),
        run_meta=meta,
        training_runs=_training_runs(training_run or []),
    )
    failed = [c["name"] for c in metrics.get("skeptic", []) if c.get("status") == "fail"]
    if strict and failed:
        typer.echo(f"--strict: {len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)


def _training_runs(items: list[str]) -> dict[str, Path]:
    """``ARM=DIR`` options as {arm: folder}; a bad item or a missing folder is a one-line error."""
    runs: dict[str, Path] = {}
    for item in items:
        arm, eq, folder = item.partition("=")
        if not eq or not arm.strip() or not folder.strip():
            raise ConfigError(f"--training-run: expected ARM=DIR, got {item!r}")
        if not Path(folder).is_dir():
            raise ConfigError(f"--training-run: {folder}: no such folder")
        runs[arm.strip()] = Path(folder)
    return runs


@app.command("compare")
def compare(
    runs: Annotated[
        list[Path], typer.Argument(help="Evaluation run folders; the first is the baseline.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for compare.html and compare.json (default: the first run's)."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="The page (default: compare.html in the --out folder).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON instead of tables.")
    ] = False,
) -> None:
    """Paired tests between evaluation runs (SFT vs GRPO, two seeds, two recipes) on shared episodes.

    Every run against the first, per condition present in both (episodes matched on condition,
    split, row and sample; with several samples per item, each item's first sample): accuracy of
    each, the difference with a bootstrap 95% interval, the discordant counts and the exact
    McNemar p; and inside each run the NAME@TAG arms of one NAME (tools@grpo vs tools@sft).
    """
    from astroreason.eval.compare import (
        COMPARE_JSON,
        COMPARE_PAGE,
        compare_runs,
        print_comparison,
        to_json,
        write_compare_json,
        write_compare_page,
    )

    result = compare_runs(runs)
    folder = out if out is not None else runs[0]
    page = write_compare_page(html or folder / COMPARE_PAGE, result)
    write_compare_json(folder / COMPARE_JSON, result)
    if as_json:
        typer.echo(to_json(result))
        return
    print_comparison(result)
    typer.echo(f"compare: {page}")


traces_app = typer.Typer(help="Look at episode traces: the HTML viewer and the terminal.")
traces_app.info.no_args_is_help = True
app.add_typer(traces_app, name="traces")


@traces_app.command("view")
def traces_view(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (eval or rollout).")],
    serve: Annotated[bool, typer.Option(help="Serve it on 127.0.0.1 until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8765,
) -> None:
    """Write RUN_DIR/traces.html (filters, footprints on the overview, every view and reply)."""
    from astroreason.eval.viewer import serve_viewer, write_viewer
    from astroreason.eval.viewer.show import printable

    path = write_viewer(run_dir)
    typer.echo(f"viewer: {printable(str(path))}")
    if serve:
        serve_viewer(run_dir, port)


@traces_app.command("show")
def traces_show(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (eval or rollout).")],
    episode_id: Annotated[str, typer.Argument(help="Episode id, e.g. tools-test-12-0.")],
) -> None:
    """Print one episode in the terminal."""
    from astroreason.eval.viewer import show_episode

    show_episode(run_dir, episode_id)


train_app = typer.Typer(
    help="Training: SFT warm start and multi-turn GRPO (TRL).", no_args_is_help=True
)
app.add_typer(train_app, name="train")


def _train(
    stage: str, config: str, overrides: list[str] | None, allow_leaky: bool, resume: bool
) -> None:
    import shlex

    from astroreason.training.config import ensure_tiny_assets, load_config, stage_overrides

    overrides = list(overrides or []) + (["allow_leaky=true"] if allow_leaky else [])
    overrides += ["resume=true"] if resume else []
    cfg = load_config(config, stage_overrides(stage, overrides))
    ensure_tiny_assets(cfg)
    from astroreason.models.pixels import local_folder

    local_folder(cfg.model)  # a missing folder or uncached id: one line, before any loading
    words = ["astroreason", "train", stage, "--config", config]
    words += [w for o in overrides for w in ("--set", o)]
    command = " ".join(shlex.quote(w) for w in words)
    if stage == "sft":
        from astroreason.training.sft import run_sft

        summary = run_sft(cfg, command=command)
    else:
        from astroreason.training.grpo import run_grpo

        summary = run_grpo(cfg, command=command)
    from astroreason.training.experiment_log import is_main_process

    if is_main_process():  # torchrun/accelerate: every process returns the same summary
        typer.echo(" ".join(f"{k}={v}" for k, v in summary.items()))


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


@train_app.command("sft")
def train_sft(
    config: Annotated[str, typer.Option(help=_CONFIG_HELP)] = "tiny-cpu",
    set_: Annotated[list[str] | None, typer.Option("--set", help=_SET_HELP)] = None,
    allow_leaky: AllowLeakyOpt = False,
    resume: ResumeOpt = False,
) -> None:
    """Supervised warm start on oracle tool-use conversations from the environment."""
    _train("sft", config, set_, allow_leaky, resume)


@train_app.command("grpo")
def train_grpo(
    config: Annotated[str, typer.Option(help=_CONFIG_HELP)] = "tiny-cpu",
    set_: Annotated[list[str] | None, typer.Option("--set", help=_SET_HELP)] = None,
    allow_leaky: AllowLeakyOpt = False,
    resume: ResumeOpt = False,
) -> None:
    """Multi-turn GRPO with the environment's tools (starts from OUTPUT_DIR/sft when present)."""
    _train("grpo", config, set_, allow_leaky, resume)


config_app = typer.Typer(
    help="Training configs: the named ones and every field.", no_args_is_help=True
)
app.add_typer(config_app, name="config")


@config_app.command("list")
def config_list() -> None:
    """The named training configs, each with its first docstring line."""
    from astroreason.training.config import config_summary, list_configs

    for name in list_configs():
        typer.echo(f"{name:20s} {config_summary(name)}")


@config_app.command("show")
def config_show(
    name: Annotated[str, typer.Argument(help="A config name or a .py path.")] = "tiny-cpu",
    set_: Annotated[list[str] | None, typer.Option("--set", help=_SET_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the values as JSON.")] = False,
) -> None:
    """Every field of a config: its value, the default (when the config changes it) and its doc."""
    import dataclasses
    import json

    from astroreason.training.config import TrainConfig, field_docs, load_config

    cfg = load_config(name, list(set_ or []))
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(cfg), indent=2))
        return
    docs, base = field_docs(), TrainConfig()
    for f in dataclasses.fields(cfg):
        value, default = getattr(cfg, f.name), getattr(base, f.name)
        changed = f"  (default {default!r})" if value != default else ""
        typer.echo(f"{f.name} = {value!r}{changed}\n    {docs.get(f.name, '')}")


@app.command("sweep")
def sweep(
    grid: Annotated[
        list[str], typer.Option(help="A config field and its values, key=v1,v2 (repeatable).")
    ],
    config: Annotated[str, typer.Option(help=_CONFIG_HELP)] = "tiny-cpu",
    out: Annotated[Path, typer.Option(help="Sweep folder: one run folder per point.")] = Path(
        "runs/sweep"
    ),
    stage: Annotated[
        list[str] | None, typer.Option(help="sft and/or grpo (repeatable; default both).")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=_SET_HELP)] = None,
    max_wall_s: Annotated[
        float | None, typer.Option(help="Wall-time budget of the whole sweep in seconds.")
    ] = None,
    allow_leaky: AllowLeakyOpt = False,
) -> None:
    """Train one run per grid point (resumable, one budget), then tabulate and plot val metrics.

    Points whose stages finished are skipped on a rerun; interrupted ones resume from their last
    checkpoint. Writes OUT/sweep.md, OUT/sweep.json and OUT/sweep.png.
    """
    from rich.console import Console
    from rich.table import Table

    from astroreason.training.sweep import METRICS, STAGES, point_name, run_sweep

    results = run_sweep(
        config,
        grid,
        out,
        stages=tuple(stage or STAGES),
        overrides=tuple(set_ or ()),
        max_wall_s=max_wall_s,
        allow_leaky=allow_leaky,
    )
    table = Table(title=f"sweep of {config} in {out} (last validation per point)")
    for col in ("point", "status", *METRICS):
        table.add_column(col)
    for r in results:
        vals = [r.val.get(m) for m in METRICS]
        table.add_row(
            point_name(r.point),
            r.status,
            *("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in vals),
        )
    Console().print(table)
    typer.echo(f"{out}/sweep.md, {out}/sweep.png")


def prose(doc: str) -> str:
    """A docstring as help text: each paragraph's lines joined, so the terminal wraps it as prose.

    Paragraphs (blank-line separated) stay apart, and lines starting with ``-`` or ``*`` stay items.
    """
    paragraphs = []
    doc = doc.replace("``", "`")  # reST literals read as plain back-quoted words in a terminal
    for para in re.split(r"\n\s*\n", inspect.cleandoc(doc)):
        lines: list[str] = []
        for line in para.splitlines():
            line = line.strip()
            if lines and not line.startswith(("- ", "* ")):
                lines[-1] += " " + line
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _help_as_prose(group: typer.Typer) -> None:
    for command in group.registered_commands:
        if command.callback is not None and command.callback.__doc__:
            command.callback.__doc__ = prose(command.callback.__doc__)
    for sub in group.registered_groups:
        _help_as_prose(sub.typer_instance)


_help_as_prose(app)


def _click_style_help() -> None:
    """Help in click's own style: ``--n INT``, nothing beside flags, ``PATH`` for arguments.

    Typer 0.29 writes ``<bool>`` beside every flag and ``{path}`` for required arguments in the
    usage line; those read as placeholders to fill in.
    """
    from typer import core

    def option_type(self, ctx):
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        label = self.display_type(ctx).strip("<>").replace("str", "text").upper()
        return label + ("..." if self.nargs != 1 else "")

    def argument_usage(self) -> str:
        name = (self.metavar or self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    core.TyperOption.display_type_rich = option_type
    core.TyperArgument.display_type_rich = lambda self, ctx: None
    core.TyperArgument._usage_display_name = argument_usage


_click_style_help()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="astroreason")
    except SystemExit as exc:  # click exits after every command; success returns normally
        if exc.code not in (0, None):
            raise
    except AstroReasonError as err:
        if "--debug" in args:
            raise
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
