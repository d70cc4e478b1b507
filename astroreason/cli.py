"""The ``astroreason`` command line: the only module that wires every layer together.

User mistakes (bad files, bad options) print one line naming the file, the field and the problem and exit
with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from astroreason.errors import AstroReasonError

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
    n: Annotated[int, typer.Option(help="Number of galaxies (all ten classes, balanced).")] = 1000,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 256,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 0,
) -> None:
    """Render synthetic galaxies with GalSim into a Galaxy10 DECaLS-format HDF5 file."""
    from astroreason.data.synth_galaxy import GalaxySynthConfig, write_galaxy_file

    write_galaxy_file(out, GalaxySynthConfig(n=n, size=size, seed=seed), progress=True)
    typer.echo(f"wrote {n} galaxies to {out}")


@synth_app.command("spectra")
def synth_spectra(
    out: Annotated[Path, typer.Option(help="Output folder for spec-*.fits files.")],
    n: Annotated[int, typer.Option(help="Number of spectra (classes balanced).")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 0,
) -> None:
    """Write synthetic SDSS-format spectra (STAR, GALAXY STARFORMING/AGN, QSO BROADLINE)."""
    from astroreason.data.synth_spectra import SpectraSynthConfig, write_spectra_dir

    write_spectra_dir(out, SpectraSynthConfig(n=n, seed=seed), progress=True)
    typer.echo(f"wrote {n} spectra to {out}")


@data_app.command("info")
def data_info(path: Annotated[Path, typer.Argument(help="A data file or folder.")]) -> None:
    """Show what a data file holds: reader, size, classes and counts."""
    from rich.console import Console
    from rich.table import Table

    from astroreason.data import open_source

    src = open_source(path)
    table = Table(title=f"{src.path}  ({type(src).__name__}, {len(src)} samples)")
    table.add_column("label")
    table.add_column("class")
    table.add_column("count", justify="right")
    for i, (name, c) in enumerate(zip(src.class_names, src.class_counts(), strict=True)):
        table.add_row(str(i), name, str(int(c)))
    Console().print(table)


@data_app.command("split")
def data_split(
    path: Annotated[Path, typer.Argument(help="A data file or folder.")],
    seed: Annotated[int, typer.Option(help="Split seed.")] = 0,
    val: Annotated[float, typer.Option(help="Validation fraction.")] = 0.1,
    test: Annotated[float, typer.Option(help="Test fraction.")] = 0.2,
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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="astroreason")
    except AstroReasonError as err:
        if "--debug" in args:
            raise
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
