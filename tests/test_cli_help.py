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


def _source_doc(callback) -> str:
    """The docstring as written in the source (the CLI rewrites ``__doc__`` when it is imported)."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(callback)))
    return ast.get_docstring(tree.body[0]) or ""


def _unjoined_paragraphs(group, path, doc: str) -> list[str]:
    """The paragraphs of ``doc`` that the rendered ``--help`` of ``path`` does not show on one line."""
    out = CliRunner().invoke(group, [*path, "--help"], env={"COLUMNS": "3000"}, terminal_width=3000)
    assert out.exit_code == 0, out.output
    lines = [" ".join(line.split()) for line in out.output.splitlines()]  # rich pads: words only
    missing = []
    for para in re.split(r"\n\s*\n", doc.strip()):
        if para.lstrip().startswith(("- ", "* ")):
            continue
        joined = " ".join(para.replace("``", "`").split())
        if not any(joined in line for line in lines):
            missing.append(joined)
    return missing


@pytest.mark.parametrize("path", [p for p, _ in _commands(app)], ids=" ".join)
def test_every_command_help_shows_each_paragraph_on_one_line(path):
    """What users see: each docstring paragraph as one line of the rendered help (a wide terminal)."""
    cmd = dict(_commands(app))[path]
    assert _unjoined_paragraphs(app, path, _source_doc(cmd.callback)) == []


def test_the_help_check_fails_on_a_docstring_left_as_written():
    """Mutation: a command whose docstring was not rewritten renders broken lines, and the check says so."""
    import typer

    from astroreason.cli.app import help_as_prose

    doc = "First line.\n\n    A paragraph that\n    goes on here.\n    "

    def build(rewrite: bool) -> typer.Typer:
        group = typer.Typer()

        @group.command("x")
        def x() -> None:
            pass

        @group.command("y")
        def y() -> None:
            pass

        x.__doc__ = y.__doc__ = doc
        if rewrite:
            help_as_prose(group)
        return group

    assert _unjoined_paragraphs(build(False), ["x"], doc) == ["A paragraph that goes on here."]
    assert _unjoined_paragraphs(build(True), ["x"], doc) == []


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
