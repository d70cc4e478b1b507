"""Data and model bootstrap for tiny runs: synthetic data and a random tiny model where missing."""

from __future__ import annotations

from pathlib import Path

from astroreason.errors import ConfigError
from astroreason.training.config import TrainConfig


def ensure_tiny_assets(cfg: TrainConfig) -> None:
    """With ``bootstrap_tiny``: build the synthetic data, and a random tiny model, where missing.

    The pretrained tiny base (``TINY_BASE``) is never replaced by random weights: when it is
    missing this says how to build it.
    """
    if not cfg.bootstrap_tiny:
        return
    from astroreason.models.tiny import TINY_BASE, build_tiny_model

    if not (Path(cfg.model) / "config.json").is_file():
        if Path(cfg.model).resolve() == TINY_BASE:
            raise ConfigError(
                f"model: {cfg.model} is missing; build the tiny base once with "
                "`astroreason model pretrain` (about an hour on 2 cores)"
            )
        build_tiny_model(cfg.model)
    if not Path(cfg.data).exists():
        write_synthetic_data(cfg.env, Path(cfg.data), cfg.synth_n, cfg.seed)


def write_synthetic_data(env: str, path: Path, n: int, seed: int) -> None:
    """Synthetic data for ``env`` at ``path``: a Galaxy10-format file, or a folder of SDSS spectra."""
    if env == "spectrum":
        from astroreason.data.synthesis.spectra import SpectraSynthConfig, write_spectra_dir

        write_spectra_dir(path, SpectraSynthConfig(n=n, seed=seed), progress=True)
        return
    from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file

    path.parent.mkdir(parents=True, exist_ok=True)
    write_galaxy_file(path, GalaxySynthConfig(n=n, seed=seed), progress=True)
