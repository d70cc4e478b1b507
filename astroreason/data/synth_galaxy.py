"""Moved to astroreason.data.synthesis.galaxy; this path re-exports it."""

from astroreason.data.synthesis.galaxy import *  # noqa: F401,F403
