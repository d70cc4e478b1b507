"""Multi-turn GRPO with TRL: ``GRPOTrainer(environment_factory=...)`` around the galaxy or spectrum env.

Algorithm choices (TRL 1.16 defaults unless set in ``TrainConfig``): group-relative advantages over
``num_generations`` rollouts of one prompt, DAPO token-level loss, ``beta=0`` (no reference model),
one generation per optimizer step. A rollout is a whole episode: TRL generates, runs the adapter's
tools (``zoom``/``crop``, or ``spectrum_window``; their results are masked out of the loss through
TRL's ``tool_mask``), and generates again, up to ``max_tool_calling_iterations`` rounds;
:func:`episode_reward` then hands the final reply to the env, whose return is the reward. Cut-off
episodes are unscorable (None: advantage 0). The prompt rows carry only the system prompt and
``row_id``; ``reset`` adds the overview image, which TRL feeds to both generation and the training
forward pass.

Start point: ``OUTPUT_DIR/sft`` when it holds a model (the SFT stage's output), else ``cfg.model``.
Condition ``tools`` offers the tools; ``no-tools`` uses an adapter with none (one reply). Prompts
render the environment's tool schemas, as evaluation does (:func:`render_env_schemas`).
On the CPU, generation is transformers' ``generate`` (``use_vllm=False``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from astroreason.training.config import (
    TrainConfig,
    build_grpo_config,
    env_options,
    pixel_limits,
)
from astroreason.training.env_adapter import (
    EpisodeStats,
    adapter_factory,
    config_env,
    env_tool_schemas,
    episode_reward,
    grpo_rows,
    open_config_source,
)
from astroreason.training.model_loading import load_model_and_processor, lora_config, save_final


def start_checkpoint(cfg: TrainConfig) -> str:
    """``OUTPUT_DIR/sft`` when the SFT stage saved a model there, else ``cfg.model``."""
    sft = Path(cfg.sft_dir)
    return str(sft) if (sft / "config.json").is_file() else cfg.model


def vllm_model_dir(cfg: TrainConfig) -> str:
    """The folder GRPO loads: the start checkpoint, or (vLLM colocated) one that carries the limits.

    TRL's colocated vLLM reads the processor files of the folder the model was loaded from; a hub
    checkpoint's say 256 x 256 pixels at least, so a folder of links to its files with the config's
    pixel limits is made under ``OUTPUT_DIR/model-pixel-limits`` (no weights copied).
    """
    start = start_checkpoint(cfg)
    if not (cfg.use_vllm and cfg.vllm_mode == "colocate"):
        return start
    from astroreason.models.pixels import folder_with_limits, local_folder

    out = Path(cfg.output_dir) / "model-pixel-limits"
    return folder_with_limits(local_folder(start), pixel_limits(cfg), out)


def build_trainer(
    cfg: TrainConfig,
    monitor: Any = None,
    source: Any = None,
    trl_overrides: dict[str, Any] | None = None,
):
    """The configured ``GRPOTrainer`` and the adapters' shared ``EpisodeStats``.

    Args:
        cfg: Our config.
        monitor: A ``TrainingMonitor`` (it receives the shared stats), or None.
        source: An opened data source shared by every environment (default: open ``cfg.data``).
        trl_overrides: Extra ``GRPOConfig`` fields (see ``build_grpo_config``).
    """
    from datasets import Dataset
    from trl import GRPOTrainer

    from astroreason.training.checkpoints import scaled_save_steps

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    source = source if source is not None else open_config_source(cfg)
    opts = env_options(cfg)
    stats = EpisodeStats()
    adapter = adapter_factory(
        source,
        cfg.condition,
        opts,
        split="train",
        stats=stats,
        env=cfg.env,
        mask_truncated=cfg.mask_truncated,
        seed=cfg.seed,
    )
    rows = grpo_rows(config_env(cfg, source, "train"))
    model, processor = load_model_and_processor(vllm_model_dir(cfg), pixel_limits(cfg))
    if cfg.grpo_freeze_vision:
        freeze_vision(model)
    if monitor is not None:
        monitor.stats = stats
    trl_overrides = dict(trl_overrides or {})
    if cfg.use_vllm:  # completions must not write image tokens (vllm_colocate.IMAGE_TOKENS)
        from astroreason.training.vllm_colocate import no_image_tokens

        kwargs = dict(trl_overrides.get("generation_kwargs") or {})
        trl_overrides["generation_kwargs"] = {**no_image_tokens(processor), **kwargs}
    args = build_grpo_config(cfg, **trl_overrides)
    if "save_steps" not in trl_overrides:
        args.save_steps = scaled_save_steps(cfg.save_steps, args.max_steps)
    from astroreason.training.vllm_colocate import (
        cpu_engine_options,
        install_colocate_fixes,
        version_problem,
    )

    if cfg.use_vllm and (problem := version_problem()):
        print(f"warning: {problem}", file=sys.stderr)
    on_cpu = cfg.use_vllm and cfg.vllm_mode == "colocate" and args.use_cpu
    with cpu_engine_options() if on_cpu else contextlib.nullcontext():
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[episode_reward],
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=processor,
            peft_config=lora_config(cfg),
            environment_factory=adapter,
            callbacks=[monitor] if monitor is not None else None,
        )
    render_env_schemas(trainer, env_tool_schemas(adapter))
    install_colocate_fixes(trainer)  # TRL #6294, and the CPU weight sync (vllm_colocate)
    return trainer, stats


def freeze_vision(model: Any) -> int:
    """Stop gradients through the vision tower and its mergers; returns the parameters frozen."""
    visual = model.model.visual
    for p in visual.parameters():
        p.requires_grad_(False)
    return sum(p.numel() for p in visual.parameters())


def render_env_schemas(trainer: Any, schemas: list[dict[str, Any]] | None) -> None:
    """Make TRL render the environment's tool schemas in prompts (the calls still go to the methods).

    TRL builds the schemas it renders from the adapter methods' signatures (``get_json_schema``),
    which cannot carry the bounds of ``TOOL_SCHEMAS``; evaluation renders the env's schemas, and a
    model trained on other prompt text is evaluated off its training distribution (the tiny model
    then answers garbage). TRL 1.16 keeps the rendered list per environment in ``_env_tools`` and
    runs tools through separate name -> method tables, so the list can hold the env's dicts.
    """
    env_tools = getattr(trainer, "_env_tools", None)
    if not isinstance(env_tools, dict):
        raise RuntimeError(
            "this TRL version has no GRPOTrainer._env_tools; training prompts would not match "
            "evaluation prompts (update training/grpo.py:render_env_schemas)"
        )
    names = sorted(s["function"]["name"] for s in schemas or [])
    for key, tools in env_tools.items():
        have = sorted(getattr(t, "__name__", None) or t["function"]["name"] for t in tools)
        if have != names:
            raise RuntimeError(f"adapter tools {have} differ from the environment's {names}")
        env_tools[key] = list(schemas or [])


def run_grpo(cfg: TrainConfig, command: str | None = None) -> dict[str, Any]:
    """Train with GRPO and save to ``cfg.grpo_dir``; returns a summary of the run.

    Third-party warnings (TRL's vLLM-version ones, its dump of a row whose rewards are all None)
    go to ``grpo/train.log`` (:func:`~astroreason.training.terminal.quiet_stage`). Checkpoints come
    every :func:`~astroreason.training.checkpoints.scaled_save_steps` steps and at the end; every model
    folder saved holds ``astroreason.json`` and our ``README.md``.
    """
    from astroreason.training.terminal import quiet_stage

    with quiet_stage(cfg.grpo_dir):
        return _run_grpo(cfg, command)


def _run_grpo(cfg: TrainConfig, command: str | None) -> dict[str, Any]:
    from astroreason.training.leakage import audit_gate
    from astroreason.training.monitor import TrainingMonitor, train_logged
    from astroreason.training.validation import validate

    source = open_config_source(cfg)
    leaks = audit_gate(cfg, source)
    monitor = TrainingMonitor(
        cfg,
        stage="grpo",
        command=command,
        leaks=leaks,
        validate_fn=lambda m, p, d: validate(m, p, cfg, d, source),
        base_model=start_checkpoint(cfg),
    )
    trainer, stats = build_trainer(cfg, monitor, source)
    t0 = time.perf_counter()
    result = train_logged(trainer, monitor, cfg, cfg.grpo_dir)
    save_final(trainer, cfg.grpo_dir)
    monitor.write_model_files(cfg.grpo_dir, trainer.state)
    logged = [h for h in trainer.state.log_history if "reward" in h or "loss" in h]
    last = logged[-1] if logged else {}
    summary = {
        "stage": "grpo",
        "start": start_checkpoint(cfg),
        "steps": trainer.state.global_step,
        "train_loss": float(result.training_loss),
        "reward": last.get("reward"),
        "tool_calls_per_episode": stats.tool_calls / max(1, stats.episodes),
        "over_turn_rate": stats.over_turn / max(1, stats.episodes),
        "train_accuracy": stats.correct / max(1, stats.episodes),
        "generated_tokens": stats.completion_tokens,
        "wall_s": round(time.perf_counter() - t0, 1),
        "checkpoint": str(cfg.grpo_dir),
    }
    if monitor.stopped_by:
        summary["stopped_by"] = monitor.stopped_by
    monitor.finish(trainer.state, summary)
    return summary
