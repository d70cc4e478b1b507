"""Loading the model a stage trains, its LoRA config, and saving the stage's final model.

Shared by the SFT (:mod:`~astroreason.training.sft`) and GRPO (:mod:`~astroreason.training.grpo`)
stages.
"""

from __future__ import annotations

from typing import Any

from astroreason.training.config import TrainConfig


def load_model_and_processor(path: str, limits: Any = None):
    """Model (float32 weights; TRL's mixed precision casts) and processor from ``path``.

    ``limits`` (:class:`~astroreason.models.pixels.PixelLimits`, default its defaults) are set on the
    processor, so no view is rescaled; checkpoints saved from it carry them.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from astroreason.models.pixels import PixelLimits, apply_to_processor

    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    processor = apply_to_processor(AutoProcessor.from_pretrained(path), limits or PixelLimits())
    return model, processor


def lora_config(cfg: TrainConfig):
    """PEFT ``LoraConfig`` when ``cfg.lora`` (all linear layers of the language model), else None."""
    if not cfg.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def save_final(trainer, out_dir) -> None:
    """Save a plain checkpoint with the processor, loadable by transformers and vLLM.

    Full weights go through ``trainer.save_model`` (it gathers ZeRO-3 and FSDP shards, and only
    the main process writes); a LoRA adapter is merged into its base first (unsharded runs).
    """
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):
        if trainer.is_world_process_zero():
            model.merge_and_unload().save_pretrained(out_dir)
    else:
        trainer.save_model(str(out_dir))
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(out_dir)
    trainer.accelerator.wait_for_everyone()
