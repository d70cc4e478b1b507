"""``python -m astroreason.cli``: the same as the ``astroreason`` command."""

from astroreason.cli import main

main()
