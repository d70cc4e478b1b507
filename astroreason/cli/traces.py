"""`astroreason traces`: the HTML viewer and the terminal view of episodes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astroreason.cli.app import app

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
