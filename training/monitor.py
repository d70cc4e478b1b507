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
  checkpoint) and at the last step: greedy rollouts of the current in-memory model on the VAL split
  (never test) through the project's rollout runner and transformers policy. Each validation is one
  line of ``STAGE_DIR/val_curve.jsonl``: step, accuracy, and from its traces tool calls per episode,
  on-target rate, invalid-action and over-turn rates; the same numbers go to TensorBoard and W&B as
  ``val/accuracy``, ``val/on_target``, ``val/tool_calls``, ``val/invalid``, ``val/over_turn``. At the
  stage's end one line compares the last validation with the first, and an alarm fires when the
  accuracy ended below where it started;
* writes ``astroreason.json`` (:mod:`astroreason.checkpoint_settings`) and a model card
  (``README.md``, in place of TRL's) into every model folder the stage saves: each
  ``checkpoint-N`` and, at the end, the stage folder;
* writes the trainer's log history to ``STAGE_DIR/log_history.json`` and draws
  ``STAGE_DIR/curves.png`` (:func:`astroreason.training.curves.plot_curves`) at every checkpoint,
  at the end, and when the run crashes or is interrupted, so a run killed overnight (even by
  SIGKILL, after its last checkpoint) still leaves its curves, linked from the experiment log;
* stops cleanly (``should_save`` then ``should_training_stop``) past ``max_wall_s`` or
  ``max_generated_tokens``;
* keeps the stage run's entry in the experiment log (:mod:`astroreason.training.experiment_log`):
  written at the start (command, config, data hash and split, git commit), updated at each
  checkpoint and at the end (status, step, last metrics, alarms, the curves picture), also when
  the run crashes or is interrupted (Ctrl-C first saves a checkpoint at the last finished step).

The checks are pure functions of metric series, tested on planted failures.

The pieces live by job: the alarm rules in :mod:`~astroreason.training.alarms`, validation in
:mod:`~astroreason.training.validation`, the model card in :mod:`~astroreason.training.cards`,
checkpoints and resuming in :mod:`~astroreason.training.checkpoints`, git and data hashing in
:mod:`~astroreason.training.provenance`; this module keeps the callback and :func:`train_logged`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from astroreason.checkpoint_settings import CheckpointSettings, write_settings
from astroreason.training.alarms import (
    check_accuracy_ceiling,
    check_invalid_rise,
    check_loss_collapse,
    check_tool_collapse,
    check_val_drop,
)
from astroreason.training.cards import config_name, model_card
from astroreason.training.checkpoints import (
    last_complete_checkpoint,
    resume_checkpoint,
    save_interrupted,
)
from astroreason.training.config import TrainConfig, checkpoint_settings
from astroreason.training.curves import LOG_HISTORY, VAL_CURVE, curve_rows, plot_curves
from astroreason.training.experiment_log import ExperimentLog, is_main_process
from astroreason.training.provenance import data_hash, git_commit, split_summary
from astroreason.training.terminal import ProgressLine, use_progress_line
from astroreason.training.validation import (
    VAL_SCALARS,
    is_real_number,
    trace_metrics,
    val_summary,
    validate,
)

_SHOWN = ProgressLine.FIELDS  # the metrics an interrupted run's line shows


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
        base_model: The model the stage starts from, for the model cards (default ``cfg.model``).

    ``trainer`` (set by :func:`train_logged`) gives it the trainer's TensorBoard writer and W&B run.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        stage: str,
        command: str | None = None,
        stats: Any = None,
        validate_fn: Any = None,
        leaks: list[str] | None = None,
        base_model: str | None = None,
    ):
        self.cfg = cfg
        self.base_model = base_model or cfg.model
        self.trainer: Any = None
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
        losses = [(h["step"], h["loss"]) for h in self.history if is_real_number(h.get("loss"))]
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
            rates = [h[key] for h in self.history if is_real_number(h.get(key))]
            msg = check_tool_collapse(rates)
            if msg:
                self.alarm(msg, step)
        invalid = [
            h["episode/invalid_rate"]
            for h in self.history
            if is_real_number(h.get("episode/invalid_rate"))
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
                f.write(json.dumps(row, default=_float_or_text) + "\n")
        except OSError as e:  # a full disk must not end a training run
            print(f"[{self.stage}] could not write {VAL_CURVE}: {e}", file=sys.stderr)
        print(f"[{self.stage}] step {step}: val accuracy {accuracy:.3f}", file=sys.stderr)
        self.report_scalars(step, row)
        msg = check_accuracy_ceiling(accuracy, self.cfg.acc_ceiling)
        if msg:
            self.alarm(msg, step)

    def report_scalars(self, step: int, row: dict[str, Any]) -> None:
        """Send a validation's ``VAL_SCALARS`` to the trainer's TensorBoard writer and W&B run.

        Written directly, not through ``trainer.log``: transformers' reporters rename every logged
        key to ``train/...``. A failure is a warning (tracking must not end a run).
        """
        scalars = {
            name: float(row[key]) for key, name in VAL_SCALARS if is_real_number(row.get(key))
        }
        trainer = self.trainer
        if not scalars or trainer is None:
            return
        try:
            from transformers.integrations import TensorBoardCallback

            for cb in trainer.callback_handler.callbacks:
                if not isinstance(cb, TensorBoardCallback):
                    continue
                writer, own = getattr(cb, "tb_writer", None), False
                make, where = getattr(cb, "_SummaryWriter", None), getattr(cb, "logging_dir", None)
                if writer is None and make and where:  # its on_train_end closed it already
                    writer, own = make(log_dir=where), True
                if writer is None:
                    continue
                for name, value in scalars.items():
                    writer.add_scalar(name, value, step)
                writer.flush()
                if own:
                    writer.close()
            wandb = sys.modules.get("wandb")
            report_to = getattr(trainer.args, "report_to", None) or []
            if "wandb" in report_to and getattr(wandb, "run", None) is not None:
                wandb.log({**scalars, "train/global_step": step})  # WandbCallback's step axis
        except Exception as e:
            print(f"[{self.stage}] could not report the validation: {e}", file=sys.stderr)

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
        """Enforce the budget guards; validate every ``val_every`` steps and at the last step.

        The last step's validation comes before its checkpoint is saved (the card shows it) and
        while the reporters are open.
        """
        cfg = self.cfg
        self._state = state
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
        due = self.val_every > 0 and state.global_step % self.val_every == 0
        last = control.should_training_stop and cfg.val_episodes > 0
        if (due or last) and not any(s == state.global_step for s, _ in self.val_history):
            self._validate(state, kwargs)
        return control

    def cost(self, args: Any = None) -> float | None:
        """Wall hours so far x devices x ``price_per_device_hour`` (None without a price)."""
        price = self.cfg.price_per_device_hour
        if price is None:
            return None
        devices = max(1, int(getattr(args, "world_size", 1) or 1))
        return (time.perf_counter() - self._t0) / 3600.0 * devices * price

    def on_train_end(self, args, state, control, **kwargs):
        """Validate the final model unless its step was; report the stage's validation; draw.

        Validation needs ``val_episodes`` > 0; :meth:`report_end` prints the line and alarms on a
        drop; the log history and curves are written last.
        """
        if self.cfg.val_episodes > 0 and not any(
            s == state.global_step for s, _ in self.val_history
        ):
            self._validate(state, kwargs)
        if _main_process(state):
            self.report_end(state.global_step)
            self.write_curves(state)

    def val_ends(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(first, last) validation rows of the stage (None, None without any).

        From ``val_curve.jsonl`` (a resumed run's earlier rows included), else this run's.
        """
        rows = curve_rows(self.stage_dir) or self.val_rows
        if not rows:
            return None, None
        return rows[0], rows[-1]

    def report_end(self, step: int) -> str | None:
        """Print ``STAGE val: accuracy A (start S), on-target ...``; alarm on a drop.

        The line is the last validation's (:func:`val_summary`); the alarm fires when its accuracy
        is below the stage's first (:func:`check_val_drop`). Returns the line (None without one).
        """
        start, last = self.val_ends()
        if last is None:
            return None
        line = f"{self.stage} val: {val_summary(last, start)}"
        print(line, file=sys.stderr, flush=True)
        if start is not None and start["step"] < last["step"]:
            msg = check_val_drop(float(start["accuracy"]), float(last["accuracy"]), start["step"])
            if msg:
                self.alarm(msg, step)
        return line

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
            text = json.dumps(history, indent=1, default=_float_or_text)
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

        The checkpoint gets ``astroreason.json`` and the card; the stage folder's ``README.md``
        (TRL rewrites its own there at every checkpoint) becomes the in-progress card. The curves
        so far are drawn at every checkpoint: a run killed outright (SIGKILL, power loss) still
        leaves the picture up to its last checkpoint.
        """
        self._state = state
        step = state.global_step
        folder = Path(args.output_dir) / f"checkpoint-{step}"
        if _main_process(state):
            if folder.is_dir():
                self.write_model_files(folder, state, checkpoint=folder.name)
            if (Path(args.output_dir) / "README.md").is_file():
                self.write_card(args.output_dir, state, checkpoint=f"in progress: {folder.name}")
            self.write_curves(state)
        self._log_update(
            step=step,
            checkpoint=str(Path(args.output_dir) / f"checkpoint-{step}"),
            alarms=self.alarms,
            val_history=self.val_history,
            **self._curves_field(),
        )

    def crashed(self, status: str, state: Any = None, checkpoint: str | None = None) -> None:
        """Mark the entry ``crashed: ...`` or ``stopped by user`` (the exception goes on).

        The entry gets the step reached and the last logged metrics, and one line on stderr says
        them and the checkpoint to resume from (``checkpoint``, else the stage's newest). The
        curves of what was logged before the crash are drawn and linked (``state``: the
        trainer's, else the last one a callback saw, else this monitor's own logs).
        """
        state = state if state is not None else self._state
        if state is not None:
            step = int(getattr(state, "global_step", 0) or 0)
        else:
            step = int(self.history[-1]["step"]) if self.history else 0
        metrics = self.last_metrics()
        if _main_process(state) and is_main_process():
            self.write_curves(state)
        fields: dict[str, Any] = {"checkpoint": checkpoint} if checkpoint else {}
        self._log_update(
            status=status[:300],
            step=step,
            metrics=metrics,
            alarms=self.alarms,
            val_history=self.val_history,
            **fields,
            **self._curves_field(),
        )
        if not is_main_process():
            return
        planned = int(getattr(state, "max_steps", 0) or 0)
        shown = [
            f"{label} {fmt.format(metrics[key])}"
            for key, label, fmt in _SHOWN
            if is_real_number(metrics.get(key))
        ]
        resume = checkpoint or last_complete_checkpoint(self.stage_dir)
        print(
            f"[{self.stage}] {status[:300]} at step {step}"
            + (f"/{planned}" if planned else "")
            + (f"; last logged: {' '.join(shown)}" if shown else "; nothing logged yet")
            + (
                f"; checkpoint {resume} (--resume continues from it)"
                if resume
                else "; no checkpoint to resume from"
            ),
            file=sys.stderr,
            flush=True,
        )

    def last_metrics(self) -> dict[str, float]:
        """The newest value of every number logged so far, rounded, and ``val_accuracy``."""
        last = {k: v for h in self.history for k, v in h.items() if is_real_number(v)}
        metrics = {k: round(float(v), 5) for k, v in last.items() if k != "step"}
        if self.val_history:
            metrics["val_accuracy"] = self.val_history[-1][1]
        return metrics

    # -- the model folders -----------------------------------------------------------------
    def settings(self, steps: int) -> CheckpointSettings:
        """The ``astroreason.json`` settings of this stage's model at ``steps``."""
        return checkpoint_settings(
            self.cfg,
            self.stage,
            config=config_name(self.command),
            steps=int(steps),
            command=self.command,
        )

    def write_card(self, folder: str | Path, state: Any, checkpoint: str | None = None) -> Path:
        """Write :func:`model_card` as ``folder/README.md``; returns its path."""
        steps = int(getattr(state, "global_step", 0) or 0)
        start, last = self.val_ends()
        text = model_card(
            self.settings(steps),
            base_model=self.base_model,
            data=str(self.cfg.data),
            split_seed=self.cfg.split_seed,
            steps=steps,
            max_steps=int(getattr(state, "max_steps", 0) or 0) or None,
            val_last=last,
            val_start=start,
            val_episodes=self.cfg.val_episodes,
            command=self.command,
            checkpoint=checkpoint,
            folder=str(folder),
        )
        path = Path(folder) / "README.md"
        path.write_text(text)
        return path

    def write_model_files(
        self, folder: str | Path, state: Any, checkpoint: str | None = None
    ) -> None:
        """Write ``astroreason.json`` and the card (``README.md``) into a saved model folder.

        The stage folder after its final save, or a ``checkpoint-N`` (``checkpoint``: its name).
        Main process only; a failure is a warning (the weights are saved).
        """
        if not (_main_process(state) and is_main_process()):
            return
        try:
            write_settings(folder, self.settings(int(getattr(state, "global_step", 0) or 0)))
            self.write_card(folder, state, checkpoint=checkpoint)
        except Exception as e:
            print(f"[{self.stage}] could not write the settings of {folder}: {e}", file=sys.stderr)

    def _curves_field(self) -> dict[str, str]:
        """``{"curves": path}`` for the experiment log when the picture exists, else nothing."""
        if self.curves is not None and self.curves.is_file():
            return {"curves": str(self.curves)}
        return {}

    def finish(self, state: Any, summary: dict[str, Any]) -> Path:
        """Close this stage run's entry (result, metrics, curves, alarms); returns the log's path."""
        metrics = self.last_metrics()
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
    RNG states and the data order's position: the trainer's own resume), and says so. Progress is
    one line per logged step (:class:`~astroreason.training.terminal.ProgressLine`). Ctrl-C saves
    a checkpoint at the last finished step first (:func:`save_interrupted`); the entry and one
    stderr line then give the step, the last logged metrics and the checkpoint to resume from.
    """
    resume = resume_checkpoint(cfg, stage_dir)
    monitor.trainer = trainer
    use_progress_line(trainer, monitor.stage)
    monitor.begin(resumed_from=resume)
    try:
        return trainer.train(resume_from_checkpoint=resume)
    except KeyboardInterrupt:
        saved = save_interrupted(trainer, stage_dir)
        monitor.crashed("stopped by user", getattr(trainer, "state", None), checkpoint=saved)
        raise
    except BaseException as e:
        monitor.crashed(f"crashed: {type(e).__name__}: {e}", getattr(trainer, "state", None))
        raise


def _main_process(state: Any) -> bool:
    return bool(getattr(state, "is_world_process_zero", True))


def _float_or_text(x: Any) -> Any:
    """JSON fallback for log values (tensors, numpy scalars): a float, else the text."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)
