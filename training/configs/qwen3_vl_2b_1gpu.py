"""Qwen3-VL-2B-Instruct on one GPU (H100 80 GB): full fine-tuning, vLLM colocated for rollouts.

Launch (the model must be in the local Hugging Face cache or a local folder; data from
``astroreason data synth galaxy`` or the real Galaxy10 DECaLS file)::

    astroreason train sft  --config qwen3-vl-2b-1gpu --set data=data/Galaxy10_DECals.h5
    astroreason train grpo --config qwen3-vl-2b-1gpu --set data=data/Galaxy10_DECals.h5

vLLM runs inside the trainer (``vllm_mode=colocate``) and shares the GPU; TRL syncs weights to it
every step.

The real-data recipe: on 256 px cutouts the overview is shown at 128 px (``view_size``) and zoom and
crop read the full-resolution pixels, so looking can add detail; ``no-tools-matched`` then shows the
whole cutout at 256 px, the pixels of the overview plus three views (128 * sqrt(1 + 3)). The processor
keeps every view's size (``image_min_pixels`` 32 x 32 instead of Qwen3-VL's 256 x 256, which would
upscale the 128 px views to the matched image's token count); the limits are saved with the SFT
checkpoint and given to the colocated vLLM. A class-sorted file (``Galaxy10_DECals.h5``) is refused
by the training audit: ``astroreason data repack IN OUT --shuffle`` first.
"""

from astroreason.training.config import TrainConfig

CONFIG = TrainConfig(
    model="Qwen/Qwen3-VL-2B-Instruct",
    data="data/galaxy_synth.h5",
    output_dir="runs/qwen3_vl_2b_1gpu",
    view_size=128,
    image_min_pixels=32 * 32,
    image_max_pixels=2048 * 2048,
    max_turns=4,
    max_tool_calls=3,
    max_steps=500,
    learning_rate=1e-6,
    per_device_batch_size=8,
    gradient_accumulation_steps=4,
    num_generations=8,
    max_completion_length=2048,
    temperature=1.0,
    use_vllm=True,
    vllm_mode="colocate",
    bf16=True,
    use_cpu=False,
    gradient_checkpointing=True,
    sft_episodes=2000,
    sft_epochs=1.0,
    sft_learning_rate=1e-5,
    save_steps=50,
    val_every=50,
    val_episodes=128,
    val_max_new_tokens=256,
    max_wall_s=6 * 3600.0,
    max_generated_tokens=400_000_000,
)
