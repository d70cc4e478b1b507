"""Moved to astroreason.data.synthesis.spectra; this path re-exports it."""

from astroreason.data.synthesis.spectra import *  # noqa: F401,F403
