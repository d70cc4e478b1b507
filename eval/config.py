"""What an evaluation runs (light: the CLI reads its defaults at start-up)."""

from __future__ import annotations

from dataclasses import dataclass

from astroreason.conditions import CONDITIONS, check_condition
from astroreason.errors import ConfigError, check_concurrency, check_counts

STANDARD_CONDITIONS = ("tools", "no-tools", "no-tools-matched", "blank-tools", "blind")
"""The conditions ``astroreason eval`` runs unless told: the policy with and without tools, the
pixel-matched overview, blank tool views and the blind probe."""


@dataclass(frozen=True)
class EvalConfig:
    """What an evaluation runs.

    Attributes:
        conditions: Conditions to run, in report order (see :mod:`astroreason.conditions`).
        episodes: Test items (rows) per condition (None: the whole split).
        samples: Episodes per item and condition (k of avg@k and pass@k; different seeds).
        concurrency: Episodes in flight at once (1 to 1024; never more than the episodes left).
        seed: Seed of the environments' resets and of the bootstrap.
        human_ceiling: Accuracy above which a result is an alarm (skeptic check).
        n_boot: Bootstrap resamples of the intervals.
        audit: Run the leakage audit of the data file (skeptic check).
        progress: Show progress bars.
    """

    conditions: tuple[str, ...] = CONDITIONS
    episodes: int | None = None
    samples: int = 1
    concurrency: int = 8
    seed: int = 0
    human_ceiling: float = 0.90
    n_boot: int = 2000
    audit: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.conditions:
            raise ConfigError("conditions: give at least one")
        for c in self.conditions:
            check_condition(c)
        if len(set(self.conditions)) != len(self.conditions):
            raise ConfigError(f"conditions: repeated in {','.join(self.conditions)}")
        check_counts(episodes=self.episodes, samples=self.samples)
        check_concurrency(self.concurrency)
        if not 0 < self.human_ceiling <= 1:
            raise ConfigError(f"human_ceiling: must be in (0, 1], got {self.human_ceiling}")
