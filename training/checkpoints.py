"""Checkpoints of a training stage: their interval, which one to resume from, saving on Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from astroreason.training.config import TrainConfig


def save_interrupted(trainer: Any, stage_dir: str | Path) -> str | None:
    """Save ``checkpoint-N`` of an interrupted run at its last finished step N.

    As the trainer's own saves do (weights, optimizer, scheduler, RNG and trainer state, then the
    ``on_save`` callbacks), so ``--resume`` continues from it; the step in progress is redone.

    Returns the folder, or None: no step finished, a multi-process run (its processes would have
    to save together; the last periodic checkpoint stands), or the save failed (a warning).
    """
    state = getattr(trainer, "state", None)
    step = int(getattr(state, "global_step", 0) or 0)
    folder = Path(stage_dir) / f"checkpoint-{step}"
    args = getattr(trainer, "args", None)
    if step <= 0 or args is None or int(getattr(args, "world_size", 1) or 1) > 1:
        return None
    if (folder / "trainer_state.json").is_file():  # interrupted right after a save
        return str(folder)
    print(f"[{Path(stage_dir).name}] interrupted: saving {folder}", file=sys.stderr, flush=True)
    try:
        trainer._save_checkpoint(trainer.model, trial=None)
        trainer.control = trainer.callback_handler.on_save(trainer.args, state, trainer.control)
    except Exception as e:
        print(f"[{Path(stage_dir).name}] could not save {folder}: {e}", file=sys.stderr)
        return None
    return str(folder)


def scaled_save_steps(save_steps: int, planned_steps: int | None) -> int:
    """The checkpoint interval of a stage: ``min(save_steps, max(1, planned_steps // 4))``.

    At most a quarter of the planned optimizer steps, so a short run (40 steps at the default 500)
    also leaves checkpoints for ``--resume``; an unknown plan keeps ``save_steps``. The trainer
    also saves at the last step.

    >>> scaled_save_steps(500, 40), scaled_save_steps(500, 3), scaled_save_steps(5, 400)
    (10, 1, 5)
    >>> scaled_save_steps(500, None)
    500
    """
    if not planned_steps or planned_steps <= 0:
        return save_steps
    return min(save_steps, max(1, planned_steps // 4))


def last_complete_checkpoint(stage_dir: str | Path) -> str | None:
    """The highest ``checkpoint-N`` that holds a ``trainer_state.json`` and whose files are whole.

    The trainer writes that file last, so a run killed while saving leaves a folder without it,
    which is skipped; so is one whose weights or optimizer state are truncated (a full disk, a
    copy cut short): :func:`checkpoint_problem` says why, on stderr, and the one before is used.
    """
    found = []
    for d in Path(stage_dir).glob("checkpoint-*"):
        step = d.name.split("-")[-1]
        if step.isdigit() and (d / "trainer_state.json").is_file():
            found.append((int(step), d))
    for _, d in sorted(found, reverse=True):
        problem = checkpoint_problem(d)
        if problem is None:
            return str(d)
        print(f"[{Path(stage_dir).name}] skipping {d}: {problem}", file=sys.stderr)
    return None


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (None: it can), read cheaply.

    Safetensors weights must open (their header covers the file exactly); ``.pt``/``.bin`` files
    (optimizer, scheduler, RNG) must be whole zip archives (their central directory is at the end).
    """
    import zipfile

    from safetensors import safe_open

    weights = sorted(folder.glob("*.safetensors"))
    if not weights and not any(folder.glob("*.bin")):
        return "no weights"
    for path in weights:
        try:
            with safe_open(str(path), "pt"):
                pass
        except Exception as err:  # safetensors raises its own error type
            return f"{path.name} is damaged ({str(err).splitlines()[0]})"
    for path in [*folder.glob("*.pt"), *folder.glob("*.pth")]:
        try:
            with zipfile.ZipFile(path):
                pass
        except (zipfile.BadZipFile, OSError) as err:
            return f"{path.name} is damaged ({err})"
    return None


def resume_checkpoint(cfg: TrainConfig, stage_dir: Path) -> str | None:
    """The checkpoint to resume from (``cfg.resume``), announced on stderr; None to start afresh."""
    last = last_complete_checkpoint(stage_dir)
    if cfg.resume and last:
        step = Path(last).name.split("-")[-1]
        print(f"[{Path(stage_dir).name}] resuming from {last} (step {step})", file=sys.stderr)
        return last
    if cfg.resume:
        print(
            f"[{Path(stage_dir).name}] --resume: no checkpoint in {stage_dir}; starting at step 0",
            file=sys.stderr,
        )
    elif last:
        print(
            f"[{Path(stage_dir).name}] {last} is from an earlier run; this run starts afresh "
            "(--resume continues it)",
            file=sys.stderr,
        )
    return None
