"""``python -m astroreason``: the same as the ``astroreason`` command (for launchers such as accelerate)."""

from astroreason.cli import main

main()
