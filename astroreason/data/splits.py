"""Moved to astroreason.data.quality.splits; this path re-exports it."""

from astroreason.data.quality.splits import *  # noqa: F401,F403
