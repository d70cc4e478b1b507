"""Validation during training: greedy rollouts of the in-memory model on the VAL split (never test).

:func:`validate` runs the project's rollout runner with :class:`InMemoryPolicy` (the
transformers policy around the model being trained); :func:`trace_metrics` reads the validation's
traces; :func:`val_summary` puts one validation row in words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astroreason.policies.transformers_local import TransformersPolicy
from astroreason.training.config import TrainConfig


class InMemoryPolicy(TransformersPolicy):
    """The project's transformers policy around a model already in memory (the one training)."""

    def __init__(self, model, processor, *, max_tokens: int, device: str = "cpu"):
        from astroreason.policies.openai_chat import SamplingConfig

        self.name = "transformers:in-training"
        self.sampling = SamplingConfig(temperature=0.0, max_tokens=max_tokens)
        self.batch_size = 8
        self.max_wait_s = 0.005
        self.processor = processor
        self.processor.tokenizer.padding_side = "left"
        self.model = model
        self.device = device
        self._queue = None
        self._loop_task = None


def validate(model, processor, cfg: TrainConfig, run_dir: Path, source: Any = None) -> float:
    """Greedy accuracy of ``model`` on ``cfg.val_episodes`` episodes of the val split."""
    from astroreason.rollout import RolloutConfig, run_rollouts
    from astroreason.training.env_adapter import config_env

    data = source if source is not None else cfg.data

    def make():
        return config_env(cfg, data, "val")

    was_training = model.training
    side = processor.tokenizer.padding_side
    model.eval()
    try:
        device = str(next(model.parameters()).device)
        policy = InMemoryPolicy(model, processor, max_tokens=cfg.val_max_new_tokens, device=device)
        rcfg = RolloutConfig(
            episodes=cfg.val_episodes, concurrency=4, seed=cfg.seed, progress=False
        )
        summary = run_rollouts(make, policy, run_dir, rcfg, run_meta={"model": "in-training"})
    finally:
        processor.tokenizer.padding_side = side
        model.train(was_training)
    return summary.correct / max(1, summary.written)


def trace_metrics(run_dir: str | Path) -> dict[str, Any]:
    """Per-episode means of a validation run's traces (``{}`` when it wrote none).

    ``n`` episodes; ``tool_calls`` per episode; ``on_target_rate`` over the episodes with a
    scorable zoom/crop target (None when none is, e.g. no-tools); ``invalid_rate`` invalid actions
    per reply and ``over_turn_rate`` (as the training rollouts' ``episode/*`` metrics);
    ``answer_rate``; ``return`` (the mean episode return).
    """
    from astroreason.targets import episode_on_target
    from astroreason.traces import TRACES_FILE, read_traces

    if not (Path(run_dir) / TRACES_FILE).is_file():
        return {}
    recs = list(read_traces(run_dir))
    if not recs:
        return {}
    n = len(recs)
    m = [r.get("metrics") or {} for r in recs]
    hits = [episode_on_target(r) for r in recs]
    scored = [h for h in hits if h is not None]
    replies = max(1, sum(int(x.get("turns", 0)) for x in m))
    return {
        "n": n,
        "tool_calls": sum(int(x.get("tool_calls", 0)) for x in m) / n,
        "on_target_rate": sum(scored) / len(scored) if scored else None,
        "invalid_rate": sum(int(x.get("invalid_actions", 0)) for x in m) / replies,
        "over_turn_rate": sum(bool(x.get("over_turn")) for x in m) / n,
        "answer_rate": sum(r.get("prediction") is not None for r in recs) / n,
        "return": sum(float(x.get("return", 0.0)) for x in m) / n,
    }


VAL_SCALARS = (
    ("accuracy", "val/accuracy"),
    ("on_target_rate", "val/on_target"),
    ("tool_calls", "val/tool_calls"),
    ("invalid_rate", "val/invalid"),
    ("over_turn_rate", "val/over_turn"),
)
"""(``val_curve.jsonl`` column, tracking name) of the validation numbers sent to TensorBoard/W&B."""


def val_summary(last: dict[str, Any], start: dict[str, Any] | None = None) -> str:
    """One validation row in words: ``accuracy 0.620 (start 0.550), on-target 0.80, ...``.

    ``start``: the stage's first row, shown when it is an earlier one; missing numbers are ``-``.
    """

    def num(key: str, fmt: str) -> str:
        return fmt.format(last[key]) if is_real_number(last.get(key)) else "-"

    acc = num("accuracy", "{:.3f}")
    if (
        start is not None
        and is_real_number(start.get("accuracy"))
        and start.get("step") != last.get("step")
    ):
        acc += f" (start {start['accuracy']:.3f})"
    return (
        f"accuracy {acc}, on-target {num('on_target_rate', '{:.2f}')}, "
        f"tool calls {num('tool_calls', '{:.2f}')}, invalid {num('invalid_rate', '{:.3f}')}, "
        f"over-turn {num('over_turn_rate', '{:.3f}')}"
    )


def is_real_number(x: Any) -> bool:
    """An int or float that is not a bool and not NaN (a number a log or curve row can show)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x
