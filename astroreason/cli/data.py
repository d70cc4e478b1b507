"""`astroreason data`: synthetic data, info, boxes, repack, split and the leakage audit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astroreason.cli.app import app
from astroreason.cli.options import (
    _GALAXY_SYNTH,
    _SPECTRA_SYNTH,
    _SPLIT,
)
from astroreason.data.quality.splits import SplitConfig
from astroreason.data.synthesis.galaxy import GalaxySynthConfig
from astroreason.data.synthesis.spectra import SpectraSynthConfig
from astroreason.errors import ConfigError

data_app = typer.Typer(help="Synthetic data, splits and the leakage audit.", no_args_is_help=True)
synth_app = typer.Typer(help="Write synthetic data sets in the real formats.", no_args_is_help=True)
app.add_typer(data_app, name="data")
data_app.add_typer(synth_app, name="synth")


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
    from astroreason.data.synthesis.galaxy import write_galaxy_file

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
    from astroreason.data.synthesis.spectra import write_spectra_dir

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
    from astroreason.data.quality.info import describe, print_info

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
    from astroreason.data.quality.boxes import has_own_boxes, shared_cache
    from astroreason.data.quality.splits import split_for

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
    from astroreason.data.readers.galaxy10 import repack

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
    from astroreason.data.quality.splits import load_or_create_split

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
    from astroreason.data.quality.audit import audit_source, print_report

    report = audit_source(open_source(path))
    if as_json:
        typer.echo(report.to_json())
    else:
        print_report(report)
    if strict and report.has_high:
        raise typer.Exit(1)
