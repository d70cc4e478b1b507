"""Moved to astroreason.data.readers.galaxy10; this path re-exports it."""

from astroreason.data.readers.galaxy10 import *  # noqa: F401,F403
