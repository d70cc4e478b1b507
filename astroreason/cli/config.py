"""`astroreason config`: the named training configs and every field."""

from __future__ import annotations

from typing import Annotated

import typer

from astroreason.cli.app import app
from astroreason.cli.options import (
    _SET_HELP,
)

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
