"""Moved to astroreason.data.quality.audit; this path re-exports it."""

from astroreason.data.quality.audit import *  # noqa: F401,F403
