"""`astroreason train` (SFT, GRPO) and `astroreason sweep`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astroreason.cli.app import app
from astroreason.cli.options import (
    _CONFIG_HELP,
    _SET_HELP,
    AllowLeakyOpt,
    ResumeOpt,
)

train_app = typer.Typer(
    help="Training: SFT warm start and multi-turn GRPO (TRL).", no_args_is_help=True
)
app.add_typer(train_app, name="train")


def _train(
    stage: str, config: str, overrides: list[str] | None, allow_leaky: bool, resume: bool
) -> None:
    import shlex

    from astroreason.training.bootstrap import ensure_tiny_assets
    from astroreason.training.config import load_config, stage_overrides

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
