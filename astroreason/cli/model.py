"""`astroreason model`: the tiny Qwen3-VL (random or pretrained), pixel limits, the image codec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astroreason.cli.app import app
from astroreason.cli.options import (
    _CODEC,
    _PRETRAIN,
)
from astroreason.codecs.train import CodecTrainConfig
from astroreason.errors import ConfigError
from astroreason.models.pixels import MAX_PIXELS, MIN_PIXELS
from astroreason.training.pretrain import PretrainConfig

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
    from astroreason.codecs.train import train_codec

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
