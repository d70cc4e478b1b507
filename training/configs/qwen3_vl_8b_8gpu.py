r"""Qwen3-VL-8B-Instruct on 8 GPUs: 7 train with DeepSpeed ZeRO-3, 1 serves vLLM for rollouts.

Launch, on one 8-GPU node::

    # GPU 7: the rollout server (TRL's server mode needs --enable-scale-out on our server)
    CUDA_VISIBLE_DEVICES=7 trl vllm-serve --model Qwen/Qwen3-VL-8B-Instruct --port 8000
    #   or: CUDA_VISIBLE_DEVICES=7 astroreason serve --model Qwen/Qwen3-VL-8B-Instruct --port 8000

    # GPUs 0-6: the trainer (SFT first, then GRPO from runs/qwen3_vl_8b_8gpu/sft)
    CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6 accelerate launch \
        --config_file training/configs/accelerate_zero3.yaml --num_processes 7 \
        -m astroreason.cli train sft --config qwen3-vl-8b-8gpu
    CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6 accelerate launch \
        --config_file training/configs/accelerate_zero3.yaml --num_processes 7 \
        -m astroreason.cli train grpo --config qwen3-vl-8b-8gpu

``training/configs/accelerate_fsdp2.yaml`` is the FSDP2 alternative to ZeRO-3. The SFT stage does
not need the vLLM server.
"""

from astroreason.training.config import TrainConfig

CONFIG = TrainConfig(
    model="Qwen/Qwen3-VL-8B-Instruct",
    data="data/Galaxy10_DECals.h5",
    output_dir="runs/qwen3_vl_8b_8gpu",
    view_size=256,
    max_turns=4,
    max_tool_calls=3,
    max_steps=1000,
    learning_rate=1e-6,
    per_device_batch_size=8,
    gradient_accumulation_steps=8,
    num_generations=8,
    max_completion_length=4096,
    temperature=1.0,
    use_vllm=True,
    vllm_mode="server",
    vllm_server_base_url="http://127.0.0.1:8000",
    bf16=True,
    use_cpu=False,
    gradient_checkpointing=True,
    sft_episodes=8000,
    sft_epochs=1.0,
    sft_learning_rate=1e-5,
    save_steps=50,
    val_every=50,
    val_episodes=256,
    val_max_new_tokens=256,
    max_wall_s=24 * 3600.0,
    max_generated_tokens=2_000_000_000,
)
