"""Training: SFT warm start on oracle traces, then multi-turn GRPO with TRL.

* ``config``: ``TrainConfig`` and its translation into TRL's ``SFTConfig`` / ``GRPOConfig``;
* ``env_adapter``: TRL's ``environment_factory`` around the galaxy environment, and the reward;
* ``sft``: oracle conversations from the environment, ``SFTTrainer`` with assistant-only loss;
* ``grpo``: ``GRPOTrainer`` with the adapter;
* ``monitor``: alarms, validation, budget guards and the experiment log (a ``TrainerCallback``);
* ``configs/``: named configs with their launch commands.
"""
