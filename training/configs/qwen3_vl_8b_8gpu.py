r"""Qwen3-VL-8B-Instruct on 8 GPUs: 7 train with DeepSpeed ZeRO-3, 1 serves vLLM for rollouts.

Launch, on one 8-GPU node::

    # the data: Galaxy10 DECaLS is sorted by class, so the training audit refuses it as it is
    astroreason data repack data/Galaxy10_DECals.h5 data/Galaxy10_DECals.shuffled.h5 --shuffle

    # GPU 7: the rollout server, reading a folder whose processor keeps 128 px views at 128 px
    # (the released processor's minimum is 256 x 256 pixels; links to the weights, nothing copied)
    astroreason model limits Qwen/Qwen3-VL-8B-Instruct --out models/qwen3-vl-8b-limits
    CUDA_VISIBLE_DEVICES=7 trl vllm-serve --model models/qwen3-vl-8b-limits --port 8000

    # GPUs 0-6: the trainer (SFT first, then GRPO from runs/qwen3_vl_8b_8gpu/sft)
    CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6 accelerate launch \
        --config_file training/configs/accelerate_zero3.yaml --num_processes 7 \
        -m astroreason train sft --config qwen3-vl-8b-8gpu
    CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6 accelerate launch \
        --config_file training/configs/accelerate_zero3.yaml --num_processes 7 \
        -m astroreason train grpo --config qwen3-vl-8b-8gpu

``training/configs/accelerate_fsdp2.yaml`` is the FSDP2 alternative to ZeRO-3. The SFT stage does
not need the vLLM server.
"""

import dataclasses

from astroreason.training.configs.qwen3_vl_2b_1gpu import CONFIG as ONE_GPU

# The 2B single-GPU recipe, scaled: bigger model and data, vLLM as a separate server, longer budget.
CONFIG = dataclasses.replace(
    ONE_GPU,
    model="Qwen/Qwen3-VL-8B-Instruct",
    data="data/Galaxy10_DECals.shuffled.h5",
    output_dir="runs/qwen3_vl_8b_8gpu",
    max_steps=1000,
    gradient_accumulation_steps=8,
    max_completion_length=4096,
    vllm_mode="server",
    vllm_server_base_url="http://127.0.0.1:8000",
    sft_episodes=8000,
    val_episodes=256,
    max_wall_s=24 * 3600.0,
    max_generated_tokens=2_000_000_000,
)
