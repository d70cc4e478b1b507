"""The Jinja2 environment of the HTML pages: templates, CSS and JS in ``eval/templates/``.

Autoescape is on for every template, so a string from data or a model is escaped wherever a template
prints it; only markup that is safe by construction is passed in as :class:`markupsafe.Markup`. A
name a template uses but the context lacks raises (``StrictUndefined``) instead of printing nothing.
CSS and JS files are pulled in with ``{% include %}``, so each page stays one self-contained file.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

TEMPLATES = "templates"


@cache
def environment() -> Environment:
    """The shared environment (autoescape on, strict undefined), loading from the package."""
    return Environment(
        loader=PackageLoader("astroreason.eval", TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template_name: str, **context: Any) -> str:
    """Render ``eval/templates/<template_name>`` with ``context``."""
    return environment().get_template(template_name).render(**context)
