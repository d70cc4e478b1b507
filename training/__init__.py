"""Training: SFT warm start on oracle traces, then multi-turn GRPO with TRL.

* ``config``: ``TrainConfig`` and its translation into TRL's ``SFTConfig`` / ``GRPOConfig``;
* ``env_adapter``: TRL's ``environment_factory`` around the galaxy environment, and the reward;
* ``sft``: oracle conversations from the environment, ``SFTTrainer`` with assistant-only loss;
* ``grpo``: ``GRPOTrainer`` with the adapter;
* ``monitor``: alarms, validation, budget guards, checkpoint settings and cards, and the
  experiment log (a ``TrainerCallback``);
* ``terminal``: a quiet terminal while a stage trains (progress lines; library noise to a file);
* ``configs/``: named configs with their launch commands.
"""
