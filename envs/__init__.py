"""Gymnasium environments, registered on import as ``AstroReason/Galaxy-v0`` and ``AstroReason/Spectrum-v0``.

``gymnasium.make("AstroReason/Galaxy-v0", data=PATH, split="test")`` after ``import astroreason.envs``
(or ``gymnasium.make("astroreason.envs:AstroReason/Galaxy-v0", ...)``, which imports it for you).
"""

import gymnasium

from astroreason.envs.base import EnvConfig, ToolEnv
from astroreason.envs.galaxy import GalaxyEnv, GalaxyEnvConfig
from astroreason.envs.spectrum import SpectrumEnv, SpectrumEnvConfig

GALAXY_ID = "AstroReason/Galaxy-v0"
SPECTRUM_ID = "AstroReason/Spectrum-v0"
ENV_IDS = {"galaxy": GALAXY_ID, "spectrum": SPECTRUM_ID}
"""The registered environments by short name (``TrainConfig.env``, ``--env``)."""

for _id, _entry in (
    (GALAXY_ID, "astroreason.envs.galaxy:GalaxyEnv"),
    (SPECTRUM_ID, "astroreason.envs.spectrum:SpectrumEnv"),
):
    if _id not in gymnasium.registry:
        gymnasium.register(id=_id, entry_point=_entry, disable_env_checker=False)

__all__ = [
    "ENV_IDS",
    "GALAXY_ID",
    "SPECTRUM_ID",
    "EnvConfig",
    "GalaxyEnv",
    "GalaxyEnvConfig",
    "SpectrumEnv",
    "SpectrumEnvConfig",
    "ToolEnv",
]
