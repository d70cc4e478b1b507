"""The Typer application every command group registers on, and its help style."""

from __future__ import annotations

import inspect
import re
from typing import Annotated

import typer

app = typer.Typer(
    name="astroreason",
    help="Teach a vision-language model to think with images in astronomy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Show tracebacks for errors, and warnings with their source line."
        ),
    ] = False,
) -> None:
    """Teach a vision-language model to think with images in astronomy."""


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


def help_as_prose(group: typer.Typer) -> None:
    """Every command's docstring in ``group`` (and its sub-groups) rewritten by :func:`prose`."""
    for command in group.registered_commands:
        if command.callback is not None and command.callback.__doc__:
            command.callback.__doc__ = prose(command.callback.__doc__)
    for sub in group.registered_groups:
        help_as_prose(sub.typer_instance)


def click_style_help() -> None:
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
