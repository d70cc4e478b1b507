"""A quiet terminal while a stage trains: one line per logged step, third-party noise in a file.

:func:`quiet_stage` sends what libraries print while a stage runs (Python warnings, e.g. TRL's
vLLM-version ones, and the records of ``THIRD_PARTY_LOGGERS``, e.g. GRPO's dump of a whole row
when every reward is None) to ``STAGE_DIR/train.log``, each distinct message once (repeats are
counted at the end), and turns transformers' progress bars off; errors still reach the screen.
:class:`ProgressLine` replaces the trainer's tqdm bar and its dicts of numbers-as-strings with one
line per logged step (``sft step 12/75 loss 1.23 lr 4.1e-04 (2.1 s/step, 2m left)``). Global state
(loggers, ``warnings.showwarning``, the progress-bar switch, ``VLLM_CONFIGURE_LOGGING``) is put back
when the stage ends, also when it fails.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

TRAIN_LOG = "train.log"
"""File of a stage folder that receives third-party warnings and log records."""

THIRD_PARTY_LOGGERS = (
    "transformers",
    "trl",
    "accelerate",
    "datasets",
    "peft",
    "torch",
    "vllm",
    "huggingface_hub",
    "py.warnings",
)
"""Loggers whose records go to ``train.log`` while a stage runs (errors also to stderr)."""


class _Once(logging.Filter):
    """Pass each distinct message (logger and first line) once; count the repeats."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[tuple[str, str]] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        first = getattr(record, "once_key", None) or record.getMessage().split("\n", 1)[0]
        key = (record.name, first[:200])
        self.counts[key] += 1
        return self.counts[key] == 1


class _LazyFile(logging.FileHandler):
    """An appending file handler that makes its folder and file at the first record only."""

    def __init__(self, path: Path, fmt: str):
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        self.setFormatter(logging.Formatter(fmt))

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        stream = super()._open()
        stream.write(f"--- {dt.datetime.now().isoformat(timespec='seconds')}: a stage run\n")
        return stream


@contextlib.contextmanager
def quiet_stage(stage_dir: str | Path) -> Iterator[Path]:
    """Third-party warnings and log records go to ``STAGE_DIR/train.log`` inside the block.

    Yields the log file's path (made at the first message only). On exit the loggers,
    ``warnings.showwarning``, transformers' progress-bar switch and the environment are as they
    were, and the file says how often each message repeated.
    """
    from transformers.utils import logging as hf_logging

    path = Path(stage_dir) / TRAIN_LOG
    rank = int(os.environ.get("RANK", "0"))
    who = f" rank {rank}" if rank else ""
    once = _Once()
    to_file = _LazyFile(path, f"%(asctime)s{who} %(levelname)s %(name)s: %(message)s")
    to_file.addFilter(once)
    to_screen = logging.StreamHandler(sys.stderr)
    to_screen.setLevel(logging.ERROR)

    saved = []
    for name in THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate))
        logger.handlers = [to_file, to_screen]
        logger.propagate = False
    # vLLM configures its own console handler when first imported (TRL imports it): not in here
    vllm_env = "vllm" not in sys.modules and "VLLM_CONFIGURE_LOGGING" not in os.environ
    if vllm_env:
        os.environ["VLLM_CONFIGURE_LOGGING"] = "0"
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    py_warnings = logging.getLogger("py.warnings")
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if file is not None:  # an explicit destination is honoured
            return shown(message, category, filename, lineno, file, line)
        text = warnings.formatwarning(message, category, filename, lineno, line)
        once_key = f"{category.__name__}: {message}"  # the same warning from several lines: once
        py_warnings.warning("%s", text.rstrip(), extra={"once_key": once_key})

    warnings.showwarning = show
    try:
        yield path
    finally:
        warnings.showwarning = shown
        if bars:
            hf_logging.enable_progress_bar()
        if vllm_env:
            os.environ.pop("VLLM_CONFIGURE_LOGGING", None)
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate
        repeats = [(name, first, n) for (name, first), n in once.counts.items() if n > 1]
        if repeats and to_file.stream is not None:
            for name, first, n in repeats:
                to_file.stream.write(f"({n - 1} more from {name}: {first})\n")
        to_file.close()


def _duration(seconds: float) -> str:
    """``42s``, ``12m``, ``3h05m``."""
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


class ProgressLine(TrainerCallback):
    """One stderr line per logged step, numbers as numbers (main process only).

    ``grpo step 12/60 loss 0.021 reward 0.41 acc 0.38 tools 0.94 lr 1.0e-05 (3.7 s/step, 3m left)``;
    the fields a stage does not log are left out. Replaces transformers' ``ProgressCallback``.

    Args:
        stage: The name that starts each line.
    """

    FIELDS = (
        ("loss", "loss", "{:.4g}"),
        ("reward", "reward", "{:.3g}"),
        ("episode/accuracy", "acc", "{:.2f}"),
        ("mean_token_accuracy", "token acc", "{:.3f}"),
        ("episode/tool_calls", "tools", "{:.2f}"),
        ("learning_rate", "lr", "{:.1e}"),
    )
    """(log key, label, format) of the fields shown, in order."""

    def __init__(self, stage: str):
        self.stage = stage
        self._t0 = time.perf_counter()
        self._step0 = 0

    def on_train_begin(self, args, state, control, **kwargs):
        """Start the clock of the step rate."""
        self._t0 = time.perf_counter()
        self._step0 = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Print the line of a training log (not the trainer's closing summary)."""
        if not state.is_world_process_zero or not logs or "train_runtime" in logs:
            return
        line = self.line(state.global_step, state.max_steps, logs)
        print(line, file=sys.stderr, flush=True)

    def line(self, step: int, max_steps: int, logs: dict[str, Any]) -> str:
        """The progress line of a log at ``step`` (of ``max_steps``)."""
        parts = [f"{self.stage} step {step}/{max_steps}"]
        for key, label, fmt in self.FIELDS:
            value = logs.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                parts.append(f"{label} {fmt.format(value)}")
        done = step - self._step0
        if done > 0:
            per_step = (time.perf_counter() - self._t0) / done
            left = f", {_duration(per_step * (max_steps - step))} left" if max_steps > step else ""
            parts.append(f"({per_step:.1f} s/step{left})")
        return " ".join(parts)


def use_progress_line(trainer: Any, stage: str) -> None:
    """Replace the trainer's tqdm bar (or its printer of raw log dicts) with :class:`ProgressLine`."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    if not hasattr(trainer, "callback_handler"):  # not a transformers Trainer (a test double)
        return

    for cls in (ProgressCallback, PrinterCallback):
        while any(isinstance(cb, cls) for cb in trainer.callback_handler.callbacks):
            trainer.remove_callback(cls)
    trainer.add_callback(ProgressLine(stage))
