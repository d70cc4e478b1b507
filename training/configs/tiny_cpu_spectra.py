"""Tiny CPU run on spectra: the pretrained tiny Qwen3-VL on synthetic SDSS spectra, two cores, minutes.

The spectrum twin of ``tiny-cpu``: the same base (``checkpoints/tiny-base``, which read 128 x 64
spectrum plots in pretraining), ``AstroReason/Spectrum-v0`` in the ``subclass`` task (STAR, GALAXY
STARFORMING, GALAXY AGN, QSO BROADLINE: the [N II]/H-alpha ratio, unresolved in the 128 px
overview, tells the two galaxy families apart), one ``spectrum_window`` call allowed. Builds (or
reuses) ``runs/tiny_cpu_spectra/spectra`` on first use. Launch::

    astroreason train sft --config tiny-cpu-spectra
    astroreason train grpo --config tiny-cpu-spectra

Override any field: ``--set spectrum_table=true --set condition=no-tools``.
"""

import dataclasses

from astroreason.training.configs.tiny_cpu import CONFIG as GALAXIES

CONFIG = dataclasses.replace(
    GALAXIES,
    env="spectrum",
    data="runs/tiny_cpu_spectra/spectra",
    output_dir="runs/tiny_cpu_spectra",
    synth_n=1200,
    view_width=128,
    view_height=64,
    spectrum_task="subclass",
    sft_episodes=0,  # every train row: the base never called spectrum_window
    sft_epochs=4.0,
    sft_window_grid=50,  # bounds on a 50 A grid: at 10 A the window barely moved with the line
)
