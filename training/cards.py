"""The model card (``README.md``) a training stage writes into each model folder it saves."""

from __future__ import annotations

import shlex
from typing import Any

from astroreason.checkpoint_settings import CheckpointSettings, settings_table
from astroreason.training.validation import val_summary

STAGE_WORDS = {
    "sft": "SFT stage (supervised warm start on oracle tool-use conversations from the environment)",
    "grpo": "GRPO stage (multi-turn reinforcement learning in the environment, rewarded by it)",
}


def model_card(
    settings: CheckpointSettings,
    *,
    base_model: str,
    data: str,
    split_seed: int,
    steps: int,
    max_steps: int | None = None,
    val_last: dict[str, Any] | None = None,
    val_start: dict[str, Any] | None = None,
    val_episodes: int | None = None,
    command: str | None = None,
    checkpoint: str | None = None,
    folder: str | None = None,
) -> str:
    """The ``README.md`` of a model folder a stage saved (it replaces TRL's generated card).

    Args:
        settings: The folder's ``astroreason.json`` settings (stage in ``settings.trained``).
        base_model: The model the stage started from.
        data: The data file or folder.
        split_seed: Seed of its train/val/test split.
        steps: Optimizer steps the model had when saved.
        max_steps: Steps the stage planned (None: not known).
        val_last: The last validation row (``val_curve.jsonl``), None without one.
        val_start: The stage's first validation row.
        val_episodes: Episodes per validation.
        command: The command that trains the stage.
        checkpoint: ``checkpoint-N`` for a checkpoint folder; ``in progress: checkpoint-N`` for the
            stage folder while the stage runs; None for the stage's final model.
        folder: The model folder, for the evaluation command (default ``FOLDER``).
    """
    stage = str(settings.trained.get("stage", "stage"))
    if checkpoint and checkpoint.startswith("in progress: "):
        newest = checkpoint.removeprefix("in progress: ")
        title = f"AstroReason {stage} (in progress: {newest})"
        status = (
            f"The stage has not finished: its newest checkpoint is `{newest}/`; the final model is "
            "saved in this folder when it ends."
        )
        folder = f"{folder}/{newest}" if folder else None
    elif checkpoint:
        title = f"AstroReason {stage} {checkpoint}"
        status = (
            f"A checkpoint of the stage at step {steps}: the model, and the optimizer, scheduler, RNG "
            "and trainer states that `--resume` continues from."
        )
    else:
        title = f"AstroReason {stage} model"
        status = "The stage's final model."
    of = f" of {max_steps}" if max_steps and max_steps != steps else ""
    opts = " ".join(f"{k}={v}" for k, v in settings.env_options.items())
    if val_last:
        n = f", {val_episodes} episodes" if val_episodes else ""
        val = f"step {val_last.get('step')}{n}, greedy: {val_summary(val_last, val_start)}"
    else:
        val = "none"
    lines = [
        "---",
        "library_name: transformers",
        "tags:",
        "- astroreason",
        f"- {stage}",
        "---",
        "",
        f"# {title}: {settings.env}, {settings.condition}",
        "",
        f"A Qwen3-VL agent from AstroReason's {STAGE_WORDS.get(stage, stage + ' stage')}. {status}",
        "",
        f"- stage: {stage}, {steps} optimizer steps{of}",
        f"- base model: `{base_model}`",
        f"- data: `{data}` (train split, split seed {split_seed}); validated on the val split",
        f"- condition: {settings.condition}",
        f"- env options: {opts}",
        f"- last validation: {val}",
        f"- settings (`astroreason.json`: what eval, rollout and serve default to): "
        f"{settings_table(settings)}",
        f"- rebuild: `{command}`" if command else "- rebuild: unknown (not started by the CLI)",
        "",
        "Evaluate it on the test split: `astroreason eval --policy transformers --model "
        f"{shlex.quote(folder or 'FOLDER')} --data {shlex.quote(data)}"
        + (f" --env {settings.env}" if settings.env != "galaxy" else "")
        + " --out OUT`",
        "",
    ]
    return "\n".join(lines)


def config_name(command: str | None) -> str | None:
    """The ``--config`` value of a command line (None when it has none)."""
    try:
        words = shlex.split(command or "")
    except ValueError:
        return None
    for i, w in enumerate(words):
        if w == "--config" and i + 1 < len(words):
            return words[i + 1]
        if w.startswith("--config="):
            return w.split("=", 1)[1]
    return None
