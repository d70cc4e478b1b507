"""Named training configs: each module defines ``CONFIG = TrainConfig(...)`` and its launch command."""
