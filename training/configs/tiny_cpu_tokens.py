"""Tiny CPU run on galaxies as codec tokens: the seed experiment's second arm, two cores, minutes.

The tokens twin of ``tiny-cpu``: the same base, data and split, but ``obs="tokens"``: the model
sees no image, each view (the 64 px overview, each zoom) arrives as the 8 x 8 ids of the shipped
``tiny-vq`` codec written as text (``[3, 141, 7, ...]``), and a zoom returns the tokens of the view
it asks for. ``no-tools-matched`` gets the overview at 88 px: 11 x 11 = 121 tokens, the nearest
square to the 128 tokens of the overview plus one zoom. Builds (or reuses)
``runs/tiny_cpu_tokens/galaxy.h5`` on first use. Launch::

    astroreason train sft --config tiny-cpu-tokens
    astroreason train grpo --config tiny-cpu-tokens

Override any field: ``--set condition=no-tools --set codec=aion:/path/to/weights``.
"""

import dataclasses

from astroreason.training.configs.tiny_cpu import CONFIG as GALAXIES

CONFIG = dataclasses.replace(
    GALAXIES,
    obs="tokens",
    codec="tiny-vq",
    data="runs/tiny_cpu_tokens/galaxy.h5",
    output_dir="runs/tiny_cpu_tokens",
    max_completion_length=384,  # a zoom's tokens come back inside the completion (~200 tokens)
)
