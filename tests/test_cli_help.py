"""``--help`` texts wrap as prose: the terminal, not the docstring's line breaks, decides the width."""

import re

import pytest
from typer.testing import CliRunner

from astroreason.cli import app, prose


def _commands(group, path=()):
    for command in group.registered_commands:
        yield (*path, command.name or command.callback.__name__.replace("_", "-")), command
    for sub in group.registered_groups:
        yield from _commands(sub.typer_instance, (*path, sub.name))


def test_prose_joins_paragraph_lines_and_keeps_items():
    doc = """First line.

    A paragraph that
    goes on here.

    - one item
    - another
      continued
    """
    assert prose(doc) == (
        "First line.\n\nA paragraph that goes on here.\n\n- one item\n- another continued"
    )


@pytest.mark.parametrize("path", [p for p, _ in _commands(app)], ids=" ".join)
def test_every_command_help_is_prose(path):
    cmd = dict(_commands(app))[path]
    for para in re.split(r"\n\s*\n", cmd.callback.__doc__ or ""):
        lines = para.strip().splitlines()
        assert all(line.startswith(("- ", "* ")) for line in lines[1:]), para


def test_a_long_paragraph_renders_on_one_line_in_a_wide_terminal():
    out = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert out.exit_code == 0, out.output
    assert "leakage audit and split; the pretrained tiny base" in out.output


@pytest.mark.parametrize("path", [p for p, _ in _commands(app)], ids=" ".join)
def test_help_shows_no_placeholders(path):
    """Click's style: ``--n INT``, nothing beside a flag, ``PATH`` for an argument; no ``<bool>``,
    ``{path}`` or raw reST ``double back-quotes``."""
    out = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert out.exit_code == 0, out.output
    assert not re.search(r"<[a-z_]+>|\{[a-z_]+\}|``", out.output), out.output
    assert "--help " in out.output


def test_flags_show_no_type_and_values_show_theirs():
    out = CliRunner().invoke(app, ["data", "info", "--help"], env={"COLUMNS": "200"})
    assert "Usage: astroreason data info [OPTIONS] PATH" in out.output
    assert re.search(r"--json\s+Print the summary", out.output)
    assert re.search(r"--sample\s+INT\s+Rows read", out.output)
