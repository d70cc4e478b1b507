"""Watching a training run: metrics, alarms, validation, budget guards and the experiment log.

``TrainingMonitor`` is a ``transformers.TrainerCallback`` (TRL's trainers accept callbacks), so
nothing of TRL is touched. It reads what TRL logs (``loss``, ``reward``, ``tools/call_frequency``)
plus the ``episode/*`` metrics the reward function logs (accuracy, tool calls per episode,
invalid-action rate, over-turn rate), and:

* raises alarms, printed loudly and appended to ``STAGE_DIR/alarms.log``:

  * the loss falling by ``loss_collapse_factor`` within ``loss_collapse_window`` steps to below
    ``loss_collapse_floor``. Learning the reply format also divides the loss by 10 early on but
    leaves the answer's uncertainty; a leaked label or memorised data takes it to about zero
    (measured on real tiny runs: honest SFT levels off at 0.13-0.5 per token, a prompt that
    names the class falls from 0.45 to 0.09 in ~100 steps). Positive losses only: GRPO's loss
    sits near 0 and changes sign;
  * validation accuracy above ``acc_ceiling`` (leakage or a too easy set);
  * the tool-call rate collapsing to zero, the invalid-action rate rising;
* validates every ``val_every`` steps (and then at step 0 too, so curves start at the stage's start
  checkpoint) and at the end: greedy rollouts of the current in-memory model on the VAL split (never
  test) through the project's rollout runner and transformers policy. Each validation is one line of
  ``STAGE_DIR/val_curve.jsonl``: step, accuracy, and from its traces tool calls per episode,
  on-target rate, invalid-action and over-turn rates;
* writes the trainer's log history to ``STAGE_DIR/log_history.json`` and draws
  ``STAGE_DIR/curves.png`` (:func:`astroreason.training.curves.plot_curves`) at every checkpoint,
  at the end, and when the run crashes or is interrupted, so a run killed overnight (even by
  SIGKILL, after its last checkpoint) still leaves its curves, linked from the experiment log;
* stops cleanly (``should_save`` then ``should_training_stop``) past ``max_wall_s`` or
  ``max_generated_tokens``;
* keeps the stage run's entry in the experiment log (:mod:`astroreason.training.experiment_log`):
  written at the start (command, config, data hash and split, git commit), updated at each
  checkpoint and at the end (status, final metrics, alarms, the curves picture).

The checks are pure functions of metric series, tested on planted failures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from astroreason.policies.transformers_local import TransformersPolicy
from astroreason.training.config import TrainConfig
from astroreason.training.curves import LOG_HISTORY, VAL_CURVE, curve_rows, plot_curves
from astroreason.training.experiment_log import ExperimentLog, is_main_process


# ----------------------------------------------------------------------------------------------
# pure checks: each returns an alarm message or None
# ----------------------------------------------------------------------------------------------
def check_loss_collapse(
    steps: Sequence[int],
    losses: Sequence[float],
    factor: float = 4.0,
    window: int = 100,
    floor: float = 0.1,
) -> str | None:
    """Alarm when a positive loss fell by ``factor`` or more within ``window`` steps, to below ``floor``.

    >>> check_loss_collapse([1, 2, 3], [2.0, 1.9, 1.8]) is None
    True
    >>> check_loss_collapse([1, 2, 3], [2.0, 1.0, 0.05]) is not None
    True
    >>> check_loss_collapse([1, 2, 3], [7.0, 2.0, 0.5]) is None  # the format learnt, not a leak
    True
    """
    if len(losses) < 2:
        return None
    s_now, l_now = steps[-1], losses[-1]
    if l_now >= floor:
        return None
    for s, value in zip(steps[:-1], losses[:-1], strict=True):
        if s_now - s <= window and value > 1e-8 and l_now >= 0 and l_now * factor <= value:
            return (
                f"loss collapsed {value:.4g} -> {l_now:.4g} (x{value / max(l_now, 1e-12):.0f}) "
                f"between steps {s} and {s_now}: memorising, a leak, or a broken mask?"
            )
    return None


def check_accuracy_ceiling(accuracy: float, ceiling: float = 0.90) -> str | None:
    """Alarm when validation accuracy is above ``ceiling`` (too good to be true here).

    >>> check_accuracy_ceiling(0.95) is not None, check_accuracy_ceiling(0.5) is None
    (True, True)
    """
    if accuracy > ceiling:
        return (
            f"validation accuracy {accuracy:.3f} is above the ceiling {ceiling:.2f}: "
            "check for leakage (ids, file order, duplicates across splits) before believing it"
        )
    return None


def check_tool_collapse(rates: Sequence[float], patience: int = 3) -> str | None:
    """Alarm when tool calls per episode were positive and the last ``patience`` logs are zero.

    >>> check_tool_collapse([1.0, 0.8, 0.0, 0.0, 0.0]) is not None
    True
    >>> check_tool_collapse([0.0, 0.0, 0.0]) is None
    True
    """
    if len(rates) <= patience or max(rates[:-patience]) <= 0:
        return None
    if all(r == 0 for r in rates[-patience:]):
        return (
            f"tool calls per episode collapsed to 0 for {patience} logs "
            f"(was up to {max(rates[:-patience]):.2f}): the policy stopped looking"
        )
    return None


def check_invalid_rise(rates: Sequence[float], rise: float = 0.25, k: int = 3) -> str | None:
    """Alarm when the mean invalid-action rate of the last ``k`` logs exceeds the first ``k``'s by ``rise``.

    >>> check_invalid_rise([0.0, 0.1, 0.0, 0.5, 0.6, 0.7]) is not None
    True
    >>> check_invalid_rise([0.1, 0.1, 0.1, 0.1, 0.1, 0.1]) is None
    True
    """
    if len(rates) < 2 * k:
        return None
    first = sum(rates[:k]) / k
    last = sum(rates[-k:]) / k
    if last - first > rise:
        return f"invalid-action rate rose from {first:.2f} to {last:.2f}: format drift"
    return None


# ----------------------------------------------------------------------------------------------
# validation with the in-memory model
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# the callback
# ----------------------------------------------------------------------------------------------
class TrainingMonitor(TrainerCallback):
    """Metrics, alarms, validation, budget guards and the experiment log (see the module docstring).

    Args:
        cfg: The run's config.
        stage: ``sft`` or ``grpo`` (the stage folder under ``cfg.output_dir``).
        command: The command line to record (default: ``sys.argv``).
        stats: The adapters' shared ``EpisodeStats`` (GRPO), for the token budget.
        validate_fn: ``(model, processor, run_dir) -> accuracy`` (or a dict of metrics with
            ``accuracy``); default :func:`validate`. The traces it leaves in ``run_dir`` add
            :func:`trace_metrics` to the validation's row of ``val_curve.jsonl``.
        leaks: The high-severity leakage findings this run was allowed to train with
            (``allow_leaky``), one line each; written into the experiment log.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        stage: str,
        command: str | None = None,
        stats: Any = None,
        validate_fn: Any = None,
        leaks: list[str] | None = None,
    ):
        self.cfg = cfg
        self.leaks = list(leaks or [])
        self.stage = stage
        self.stage_dir = Path(cfg.output_dir) / stage
        self.command = command if command is not None else " ".join(sys.argv)
        self.stats = stats
        self.validate_fn = validate_fn
        self.history: list[dict[str, Any]] = []
        self.alarms: list[str] = []
        self.val_history: list[tuple[int, float]] = []
        self.val_rows: list[dict[str, Any]] = []
        self.curves: Path | None = None
        self.stopped_by: str | None = None
        self._seen: set[str] = set()
        self._state: Any = None  # the trainer's state, last seen in a callback (for a crash)
        self._t0 = time.perf_counter()
        self.log: ExperimentLog | None = None
        self.run_id: str | None = None

    # -- alarms ----------------------------------------------------------------------------
    def alarm(self, message: str, step: int = 0) -> None:
        """Record an alarm: loud on stderr, one line in ``alarms.log``; each kind once a stage."""
        key = " ".join(message.split()[:2])  # "loss collapsed", "validation accuracy", ...
        if key in self._seen:
            return
        self._seen.add(key)
        line = f"[step {step}] {message}"
        self.alarms.append(line)
        if not is_main_process():  # every process sees the same logs: one writer
            return
        bar = "!" * 78
        print(f"\n{bar}\nALARM ({self.stage}) {line}\n{bar}\n", file=sys.stderr, flush=True)
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        with open(self.stage_dir / "alarms.log", "a") as f:
            f.write(f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} {line}\n")

    def check(self, step: int) -> None:
        """Run every series check on the history so far."""
        cfg = self.cfg
        losses = [(h["step"], h["loss"]) for h in self.history if _num(h.get("loss"))]
        if losses and self.stage == "sft":  # GRPO's loss is a policy-gradient surrogate near 0
            steps, values = zip(*losses, strict=True)
            msg = check_loss_collapse(
                steps,
                values,
                cfg.loss_collapse_factor,
                cfg.loss_collapse_window,
                cfg.loss_collapse_floor,
            )
            if msg:
                self.alarm(msg, step)
        if cfg.condition == "tools":
            key = "episode/tool_calls"
            rates = [h[key] for h in self.history if _num(h.get(key))]
            msg = check_tool_collapse(rates)
            if msg:
                self.alarm(msg, step)
        invalid = [
            h["episode/invalid_rate"] for h in self.history if _num(h.get("episode/invalid_rate"))
        ]
        msg = check_invalid_rise(invalid, cfg.invalid_rise)
        if msg:
            self.alarm(msg, step)

    def record_validation(
        self, step: int, accuracy: float, metrics: dict[str, Any] | None = None
    ) -> None:
        """Keep a validation result, append it to ``val_curve.jsonl``, check it against the ceiling."""
        self.val_history.append((step, accuracy))
        row = {"step": int(step), **(metrics or {}), "accuracy": float(accuracy)}
        self.val_rows.append(row)
        try:
            self.stage_dir.mkdir(parents=True, exist_ok=True)
            with open(self.stage_dir / VAL_CURVE, "a") as f:
                f.write(json.dumps(row, default=_plain) + "\n")
        except OSError as e:  # a full disk must not end a training run
            print(f"[{self.stage}] could not write {VAL_CURVE}: {e}", file=sys.stderr)
        print(f"[{self.stage}] step {step}: val accuracy {accuracy:.3f}", file=sys.stderr)
        msg = check_accuracy_ceiling(accuracy, self.cfg.acc_ceiling)
        if msg:
            self.alarm(msg, step)

    # -- TrainerCallback hooks -------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        """Start the wall-clock budget; with ``val_every`` > 0 validate the starting model."""
        self._t0 = time.perf_counter()
        if _main_process(state):
            self._restart_curve(state.global_step)
        if self.val_every > 0:
            self._validate(state, kwargs)

    @property
    def val_every(self) -> int:
        """This stage's validation interval (``sft_val_every`` for SFT when set, else ``val_every``)."""
        if self.stage == "sft" and self.cfg.sft_val_every is not None:
            return self.cfg.sft_val_every
        return self.cfg.val_every

    def _restart_curve(self, step: int) -> None:
        """Drop ``val_curve.jsonl`` rows from ``step`` on (a rerun of the stage starts afresh)."""
        path = self.stage_dir / VAL_CURVE
        if not path.is_file():
            return
        keep = [r for r in curve_rows(self.stage_dir) if r["step"] < step]
        path.write_text("".join(json.dumps(r) + "\n" for r in keep))

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Keep the logged metrics and run the checks."""
        self._state = state
        if logs:
            self.history.append({"step": state.global_step, **logs})
            self.check(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        """Validate every ``val_every`` steps; enforce the budget guards."""
        cfg = self.cfg
        if self.val_every > 0 and state.global_step % self.val_every == 0:
            if not any(s == state.global_step for s, _ in self.val_history):
                self._validate(state, kwargs)
        why = None
        if cfg.max_wall_s is not None and time.perf_counter() - self._t0 > cfg.max_wall_s:
            why = f"wall time over max_wall_s={cfg.max_wall_s:g}"
        tokens = getattr(self.stats, "completion_tokens", 0)
        if cfg.max_generated_tokens is not None and tokens > cfg.max_generated_tokens:
            why = f"{tokens} generated tokens over max_generated_tokens={cfg.max_generated_tokens}"
        cost = self.cost(args)
        if cfg.max_cost is not None and cost is not None and cost > cfg.max_cost:
            why = f"cost {cost:.2f} over max_cost={cfg.max_cost:g}"
        if why and self.stopped_by is None:
            self.stopped_by = why
            print(f"[{self.stage}] budget guard: {why}; saving and stopping", file=sys.stderr)
            control.should_save = True
            control.should_training_stop = True
        return control

    def cost(self, args: Any = None) -> float | None:
        """Wall hours so far x devices x ``price_per_device_hour`` (None without a price)."""
        price = self.cfg.price_per_device_hour
        if price is None:
            return None
        devices = max(1, int(getattr(args, "world_size", 1) or 1))
        return (time.perf_counter() - self._t0) / 3600.0 * devices * price

    def on_train_end(self, args, state, control, **kwargs):
        """Validate the final model (when ``val_episodes`` > 0); write the log history and curves."""
        if self.cfg.val_episodes > 0 and not any(
            s == state.global_step for s, _ in self.val_history
        ):
            self._validate(state, kwargs)
        if _main_process(state):
            self.write_curves(state)

    def _validate(self, state: Any, kwargs: dict[str, Any]) -> None:
        """Validate on the main process only (one writer of the traces and the curve)."""
        model, processor = kwargs.get("model"), kwargs.get("processing_class")
        if model is None or processor is None or self.cfg.val_episodes <= 0:
            return
        if not _main_process(state):
            return
        step = state.global_step
        run_dir = self.stage_dir / "val" / f"step-{step}"
        if run_dir.exists():  # traces of an earlier run's model would be resumed, not redone
            shutil.rmtree(run_dir)
        fn = self.validate_fn or (lambda m, p, d: validate(m, p, self.cfg, d))
        result = fn(model, processor, run_dir)
        metrics = dict(result) if isinstance(result, dict) else {"accuracy": result}
        accuracy = float(metrics.pop("accuracy"))
        try:
            metrics = {**trace_metrics(run_dir), **metrics}
        except Exception as e:  # the curve loses a few columns, the run goes on
            print(f"[{self.stage}] could not read the validation traces: {e}", file=sys.stderr)
        self.record_validation(step, accuracy, metrics)

    def write_curves(self, state: Any = None) -> Path | None:
        """Write ``log_history.json`` (the trainer's, else this monitor's) and draw ``curves.png``.

        Returns the picture's path, or None when there was nothing to draw or drawing failed (a
        warning; the stage's results stand without it).
        """
        history = list(getattr(state, "log_history", None) or self.history)
        try:
            self.stage_dir.mkdir(parents=True, exist_ok=True)
            text = json.dumps(history, indent=1, default=_plain)
            (self.stage_dir / LOG_HISTORY).write_text(text + "\n")
            self.curves = plot_curves(self.stage_dir)
        except Exception as e:
            print(f"[{self.stage}] could not draw the learning curves: {e}", file=sys.stderr)
            self.curves = None
        return self.curves

    # -- the experiment log ----------------------------------------------------------------
    def begin(self, resumed_from: str | None = None) -> None:
        """Write this stage run's ``running`` entry into the experiment log (before any step)."""
        cfg = self.cfg
        self.log = ExperimentLog(cfg.output_dir)
        self.run_id = self.log.start(
            stage=self.stage,
            command=self.command,
            git_commit=git_commit(),
            data=str(cfg.data),
            data_hash=data_hash(cfg.data),
            split=split_summary(cfg),
            leaks=self.leaks,
            resumed_from=resumed_from,
            config=dataclasses.asdict(cfg),
        )

    def _log_update(self, **fields: Any) -> None:
        if self.run_id is None:
            self.begin()
        try:
            self.log.update(self.run_id, **fields)
        except OSError as e:  # a full disk must not end a training run
            print(f"[{self.stage}] could not update the experiment log: {e}", file=sys.stderr)

    def on_save(self, args, state, control, **kwargs):
        """Record the checkpoint just written (step, folder) in the experiment log; redraw the curves.

        The curves so far are drawn at every checkpoint: a run killed outright (SIGKILL, power
        loss) still leaves the picture up to its last checkpoint.
        """
        self._state = state
        step = state.global_step
        if _main_process(state):
            self.write_curves(state)
        self._log_update(
            step=step,
            checkpoint=str(Path(args.output_dir) / f"checkpoint-{step}"),
            alarms=self.alarms,
            val_history=self.val_history,
            **self._curves_field(),
        )

    def crashed(self, status: str, state: Any = None) -> None:
        """Mark the entry ``crashed: ...`` or ``stopped by user`` (the exception goes on).

        The curves of what was logged before the crash are drawn and linked (``state``: the
        trainer's, else the last one a callback saw, else this monitor's own logs).
        """
        state = state if state is not None else self._state
        if _main_process(state) and is_main_process():
            self.write_curves(state)
        self._log_update(
            status=status[:300],
            alarms=self.alarms,
            val_history=self.val_history,
            **self._curves_field(),
        )

    def _curves_field(self) -> dict[str, str]:
        """``{"curves": path}`` for the experiment log when the picture exists, else nothing."""
        if self.curves is not None and self.curves.is_file():
            return {"curves": str(self.curves)}
        return {}

    def finish(self, state: Any, summary: dict[str, Any]) -> Path:
        """Close this stage run's entry (result, metrics, curves, alarms); returns the log's path."""
        last = {k: v for h in self.history for k, v in h.items() if _num(v)}
        metrics = {k: round(float(v), 5) for k, v in last.items() if k != "step"}
        if self.val_history:
            metrics["val_accuracy"] = self.val_history[-1][1]
        if self.curves is None or not self.curves.is_file():
            self.write_curves(state)
        status = f"stopped by budget: {self.stopped_by}" if self.stopped_by else "finished"
        self._log_update(
            status=status,
            step=int(getattr(state, "global_step", 0)),
            result=summary,
            metrics=metrics,
            stopped_by=self.stopped_by,
            val_history=self.val_history,
            curves=str(self.curves) if self.curves is not None else None,
            alarms=self.alarms,
        )
        return self.log.md_path


def train_logged(trainer: Any, monitor: TrainingMonitor, cfg: TrainConfig, stage_dir: Path) -> Any:
    """``trainer.train()`` inside the experiment log: entry at start, status on crash or interrupt.

    With ``cfg.resume`` training continues from the stage's last checkpoint (optimizer, scheduler,
    RNG states and the data order's position: the trainer's own resume), and says so.
    """
    resume = resume_checkpoint(cfg, stage_dir)
    monitor.begin(resumed_from=resume)
    try:
        return trainer.train(resume_from_checkpoint=resume)
    except KeyboardInterrupt:
        monitor.crashed("stopped by user", getattr(trainer, "state", None))
        raise
    except BaseException as e:
        monitor.crashed(f"crashed: {type(e).__name__}: {e}", getattr(trainer, "state", None))
        raise


def last_complete_checkpoint(stage_dir: str | Path) -> str | None:
    """The highest ``checkpoint-N`` holding a ``trainer_state.json``.

    The trainer writes that file last, so a run killed while saving leaves a folder without it,
    which is skipped.
    """
    found = []
    for d in Path(stage_dir).glob("checkpoint-*"):
        step = d.name.split("-")[-1]
        if step.isdigit() and (d / "trainer_state.json").is_file():
            found.append((int(step), str(d)))
    return max(found)[1] if found else None


def resume_checkpoint(cfg: TrainConfig, stage_dir: Path) -> str | None:
    """The checkpoint to resume from (``cfg.resume``), announced on stderr; None to start afresh."""
    last = last_complete_checkpoint(stage_dir)
    if cfg.resume and last:
        step = Path(last).name.split("-")[-1]
        print(f"[{Path(stage_dir).name}] resuming from {last} (step {step})", file=sys.stderr)
        return last
    if cfg.resume:
        print(f"[{Path(stage_dir).name}] --resume: no checkpoint in {stage_dir}; starting at step 0",
              file=sys.stderr)
    elif last:
        print(f"[{Path(stage_dir).name}] {last} is from an earlier run; this run starts afresh "
              "(--resume continues it)", file=sys.stderr)
    return None


def _main_process(state: Any) -> bool:
    return bool(getattr(state, "is_world_process_zero", True))


def _plain(x: Any) -> Any:
    """JSON fallback for log values (tensors, numpy scalars): a float, else the text."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


def git_commit() -> str:
    """HEAD of the repository holding this file, with ``+dirty`` when the tree has changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def data_hash(data: str | Path) -> str:
    """sha256 of a data file, or of a folder's files (names and bytes, sorted); first 16 hex."""
    p = Path(data)
    h = hashlib.sha256()
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    for f in files:
        if not f.exists():
            return "missing"
        h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def split_summary(cfg: TrainConfig) -> str:
    """``split seed S: train N / val M / test K rows`` of the persisted split."""
    try:
        from astroreason.data.splits import split_for
        from astroreason.training.env_adapter import open_config_source

        sp = split_for(open_config_source(cfg), cfg.split_seed)
        sizes = " / ".join(f"{n} {len(sp.rows(n))}" for n in ("train", "val", "test"))
    except Exception as e:  # the log must still be written
        return f"split unavailable ({type(e).__name__}: {e})"
    return f"split seed {cfg.split_seed}: {sizes} rows"
