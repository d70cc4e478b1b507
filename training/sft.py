"""SFT warm start: oracle conversations from the SAME environment, TRL's ``SFTTrainer``.

``oracle_dataset`` runs ``OraclePolicy`` through the configured env (galaxy or spectrum) on the
train split and keeps each episode's ``info["messages"]`` (system, user overview, assistant tool
call, tool view, assistant answer) as one row: ``messages`` with ``{"type": "image"}``
placeholders, the views in order in ``images``, tool-call ``arguments`` kept as JSON strings
(Arrow cannot hold free-form dicts).

Loss only on the model's own turns (``assistant_only_loss``): tool results, the overview and the
prompts are masked. TRL's vision collator renders conversations without ``tools=`` and fills image
placeholders of user turns only (not tool turns), so :class:`ToolConversationCollator` does the same
job with the tool schemas the environment offers (``env_tool_schemas``; evaluation and the GRPO
stage render the same ones: SFT, GRPO and evaluation prompts are token-identical) and images in
tool turns; it uses TRL's Qwen3-VL training template (``{% generation %}`` markers). It is passed
as ``data_collator``: nothing of TRL is subclassed.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from astroreason.chat import to_chat
from astroreason.images import to_pil
from astroreason.policies.scripted import OraclePolicy
from astroreason.protocol import format_answer
from astroreason.sync import run_sync
from astroreason.training.config import TrainConfig, build_sft_config, env_options, pixel_limits
from astroreason.training.env_adapter import (
    adapter_factory,
    config_env,
    env_tool_schemas,
    open_config_source,
)
from astroreason.training.model_loading import load_model_and_processor, lora_config, save_final


def conversation_row(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """One env conversation as an SFT row: ``messages`` (image placeholders) and ``images``."""
    images: list[Any] = []

    def placeholder(image: Any) -> dict[str, Any]:
        images.append(to_pil(image))
        return {"type": "image"}

    return {
        "messages": to_chat(messages, placeholder, json_arguments=True, text_blocks=True),
        "images": images,
    }


def oracle_episodes(cfg: TrainConfig, source: Any = None) -> list[list[dict[str, Any]]]:
    """``cfg.sft_episodes`` oracle conversations (env messages) on the train split (0: every row).

    A share ``1 - cfg.sft_look_share`` of them (seeded) answers at once without looking.
    """
    env = config_env(cfg, source or cfg.data, "train")
    policy = OraclePolicy(
        tool=cfg.sft_tool,
        grid=cfg.sft_grid,
        zoom_factor=cfg.sft_zoom_factor,
        window_grid=cfg.sft_window_grid,
    )
    n_rows = len(env.unwrapped.rows)
    looks = np.random.default_rng([cfg.seed, 7]).random(cfg.sft_episodes or n_rows)
    episodes = []
    for k in range(cfg.sft_episodes or n_rows):
        _, info = env.reset(seed=cfg.seed + k, options={"index": k % n_rows})
        done = False
        while not done:
            if looks[k] < cfg.sft_look_share:
                text = run_sync(policy.act(info)).text
            else:  # this conversation answers at once
                text = format_answer(info["ground_truth"]["class_name"])
            _, _, terminated, truncated, info = env.step(text)
            done = terminated or truncated
        if not info["correct"]:
            raise RuntimeError(f"oracle episode {k} ended without a correct answer: {info}")
        episodes.append(info["messages"])
    env.close()
    return episodes


def oracle_dataset(cfg: TrainConfig, source: Any = None):
    """The SFT ``datasets.Dataset`` (columns ``messages``, ``images``)."""
    from datasets import Dataset

    return Dataset.from_list([conversation_row(m) for m in oracle_episodes(cfg, source)])


def _drop_none(x: Any) -> Any:
    """Arrow fills missing struct keys with None; the chat template must not see them."""
    if isinstance(x, dict):
        return {k: _drop_none(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_drop_none(v) for v in x]
    return x


def fill_images(messages: list[dict[str, Any]], images: list[Any]) -> list[dict[str, Any]]:
    """Put ``images`` into the image placeholders of every turn, tool turns included, in order."""
    it = iter(images)
    out = []
    for m in _drop_none(messages):
        blocks = []
        for b in m.get("content", []):
            blocks.append({**b, "image": next(it)} if b.get("type") == "image" else b)
        out.append({**m, "content": blocks})
    left = sum(1 for _ in it)
    if left:
        raise ValueError(f"{left} images left over after filling the conversation's placeholders")
    return out


class ToolConversationCollator:
    """Tokenise tool conversations with images; labels only on assistant tokens.

    Args:
        processor: The model's processor (its chat template must be TRL's Qwen3-VL template).
        tools: Tool schemas rendered into the system turn (None: no tools).
        max_length: Truncate to this many tokens (None: no truncation).
    """

    def __init__(
        self, processor, tools: list[dict[str, Any]] | None, max_length: int | None = None
    ):
        from trl.chat_template_utils import get_training_chat_template, has_generation_markers

        self.processor = processor
        self.tools = tools or None
        self.max_length = max_length
        template = processor.chat_template
        self.chat_template = (
            template if has_generation_markers(template) else get_training_chat_template(processor)
        )
        if self.chat_template is None:
            raise ValueError(
                "no training chat template (with generation markers) for this processor"
            )

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Batch of ``{"messages", "images"}`` rows -> model inputs with ``labels``."""
        conversations = [fill_images(ex["messages"], ex.get("images") or []) for ex in examples]
        out = self.processor.apply_chat_template(
            conversations,
            tools=self.tools,
            chat_template=self.chat_template,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            return_assistant_tokens_mask=True,
            processor_kwargs={
                "padding": True,
                "padding_side": "right",
                "truncation": self.max_length is not None,
                "max_length": self.max_length,
                "add_special_tokens": False,
            },
        )
        labels = out["input_ids"].clone()
        labels[out["attention_mask"] == 0] = -100
        labels[out.pop("assistant_masks") == 0] = -100
        out["labels"] = labels
        return out


def planned_sft_steps(cfg: TrainConfig, n_rows: int, world_size: int = 1) -> int:
    """Optimizer steps SFT will take: ``sft_max_steps``, else epochs x updates per epoch.

    Counted as the trainer does: batches per process, then micro-batches per optimizer step.
    """
    if cfg.sft_max_steps > 0:
        return cfg.sft_max_steps
    batches = math.ceil(n_rows / (cfg.per_device_batch_size * max(1, world_size)))
    per_epoch = max(1, math.ceil(batches / cfg.gradient_accumulation_steps))
    return math.ceil(cfg.sft_epochs * per_epoch)


def run_sft(cfg: TrainConfig, command: str | None = None) -> dict[str, Any]:
    """Build the oracle data set, train with ``SFTTrainer``, save to ``cfg.sft_dir``.

    Third-party warnings go to ``sft/train.log`` (:func:`~astroreason.training.terminal.quiet_stage`).
    Checkpoints come every :func:`~astroreason.training.checkpoints.scaled_save_steps` steps and at the
    end; every model folder saved holds ``astroreason.json`` and our ``README.md``.

    Returns:
        A summary: steps, final loss, wall time and the checkpoint folder.
    """
    from astroreason.training.terminal import quiet_stage

    with quiet_stage(cfg.sft_dir):
        return _run_sft(cfg, command)


def _run_sft(cfg: TrainConfig, command: str | None) -> dict[str, Any]:
    from trl import SFTTrainer

    from astroreason.training.checkpoints import scaled_save_steps
    from astroreason.training.leakage import audit_gate
    from astroreason.training.monitor import TrainingMonitor, train_logged

    source = open_config_source(cfg)
    leaks = audit_gate(cfg, source)
    dataset = oracle_dataset(cfg, source)
    model, processor = load_model_and_processor(cfg.model, pixel_limits(cfg))
    adapter = adapter_factory(source, cfg.condition, env_options(cfg), env=cfg.env)
    tools = env_tool_schemas(adapter)
    args = build_sft_config(cfg)
    args.save_steps = scaled_save_steps(
        cfg.save_steps, planned_sft_steps(cfg, len(dataset), args.world_size)
    )
    monitor = TrainingMonitor(cfg, stage="sft", command=command, leaks=leaks)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        data_collator=ToolConversationCollator(processor, tools, cfg.sft_max_length),
        peft_config=lora_config(cfg),
        callbacks=[monitor],
    )
    t0 = time.perf_counter()
    result = train_logged(trainer, monitor, cfg, cfg.sft_dir)
    save_final(trainer, cfg.sft_dir)
    monitor.write_model_files(cfg.sft_dir, trainer.state)
    summary = {
        "stage": "sft",
        "steps": trainer.state.global_step,
        "train_loss": float(result.training_loss),
        "wall_s": round(time.perf_counter() - t0, 1),
        "checkpoint": str(cfg.sft_dir),
        "episodes": len(dataset),
    }
    if monitor.stopped_by:
        summary["stopped_by"] = monitor.stopped_by
    monitor.finish(trainer.state, summary)
    return summary
