"""The ``astroreason`` command line: it only parses options and calls the library.

One module per command group (``data``, ``model``, ``run``: serve, rollout, eval, compare, demo;
``traces``, ``train``: train and sweep; ``config``), all registered on the Typer app of
:mod:`astroreason.cli.app`; shared options and their defaults (read from the config dataclasses)
in :mod:`astroreason.cli.options`. The demo pipeline is :mod:`astroreason.cli.demo`: it trains and
evaluates, so it sits at the one layer that may import both training and eval.

User mistakes (bad files, bad options) print one line naming the file, the field and the problem and exit
with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
import warnings

import typer

from astroreason.cli import config, data, model, run, traces, train  # noqa: F401 (registers)
from astroreason.cli.app import app, click_style_help, help_as_prose, prose
from astroreason.errors import AstroReasonError, AstroReasonWarning

help_as_prose(app)
click_style_help()

__all__ = ["app", "main", "prose"]


_python_form = warnings.formatwarning


def _one_line(message, category, filename, lineno, line=None):
    """``warnings.formatwarning`` for the CLI: an AstroReasonWarning is one ``warning: ...`` line.

    Our warnings (a skipped file, an ignored column) are messages to the user, so the source file and
    line are left out; other warnings keep Python's form. Recording (``catch_warnings``) is unchanged.
    """
    if issubclass(category, AstroReasonWarning):
        return f"warning: {message}\n"
    return _python_form(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    formatwarning = warnings.formatwarning
    if "--debug" not in args:
        warnings.formatwarning = _one_line
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
    finally:
        warnings.formatwarning = formatwarning
