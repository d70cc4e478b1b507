"""Training: SFT warm start on oracle traces, then multi-turn GRPO with TRL.

* ``config``: ``TrainConfig`` and its translation into TRL's ``SFTConfig`` / ``GRPOConfig``;
* ``bootstrap``: synthetic data and a random tiny model where a tiny run's are missing;
* ``env_adapter``: TRL's ``environment_factory`` around the galaxy environment, and the reward;
* ``model_loading``: the model and processor a stage trains, its LoRA config, the final save;
* ``sft``: oracle conversations from the environment, ``SFTTrainer`` with assistant-only loss;
* ``grpo``: ``GRPOTrainer`` with the adapter;
* ``monitor``: the ``TrainerCallback`` (metrics, budget guards, model files, the experiment log)
  and ``train_logged``; built on ``alarms`` (alarm rules), ``validation`` (greedy val rollouts),
  ``cards`` (model cards), ``checkpoints`` (interval, resume, Ctrl-C save) and ``provenance``
  (git commit, data hash);
* ``terminal``: a quiet terminal while a stage trains (progress lines; library noise to a file);
* ``configs/``: named configs with their launch commands.
"""
