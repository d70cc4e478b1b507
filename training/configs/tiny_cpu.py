"""Tiny CPU run: the offline tiny Qwen3-VL on synthetic galaxies, two cores, a few minutes.

Builds (or reuses) ``runs/tiny_cpu/model`` and ``runs/tiny_cpu/galaxy.h5`` on first use. Launch::

    astroreason train sft --config tiny-cpu
    astroreason train grpo --config tiny-cpu    # starts from runs/tiny_cpu/sft when it exists

Override any field: ``--set max_steps=5 --set condition=no-tools``.
"""

from astroreason.training.config import TrainConfig

CONFIG = TrainConfig(
    model="runs/tiny_cpu/model",
    data="runs/tiny_cpu/galaxy.h5",
    output_dir="runs/tiny_cpu",
    bootstrap_tiny=True,
    synth_n=120,
    view_size=64,
    max_turns=4,
    max_tool_calls=3,
    max_steps=4,
    learning_rate=1e-5,
    per_device_batch_size=4,
    num_generations=4,
    max_completion_length=192,
    sft_episodes=32,
    sft_epochs=2.0,
    sft_learning_rate=1e-3,
    use_cpu=True,
    bf16=False,
    report_to="tensorboard",
    val_every=0,
    val_episodes=8,
    val_max_new_tokens=96,
    max_wall_s=1800.0,
)
