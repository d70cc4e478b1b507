"""The embedded default end to end: ``astroreason demo`` / ``make demo``, on CPU, nothing downloaded.

Three tasks (``--task galaxies | spectra | tokens | all``, :data:`DEMO_TASKS`), each in the
same stages, each skipped when its output is already complete (a rerun resumes where it stopped).
``tokens`` is the seed experiment's second arm: the galaxies task's data and split, but every view
reaches the model as the ids of the shipped image codec (``tiny-vq``) written as text, no image;
its arms pair with the galaxies task's on the same test items (``eval-tokens/compare.html``).

1. Synthetic data (``data/galaxies.h5``: Galaxy10-format galaxies made with GalSim;
   ``data/spectra/``: SDSS-format ``spec-*.fits`` spectra of four families), then the leakage
   audit and the persisted train/val/test split (70/10/20).
2. The pretrained tiny base (``checkpoints/tiny-base``, built once by ``astroreason model
   pretrain``): every arm starts from it, as a real user starts from a released Qwen3-VL.
3. ``train-ARM/`` (galaxies) or ``train-spectra-ARM/`` for each arm of the task: the same
   training (the task's named config, ``tiny-cpu`` or ``tiny-cpu-spectra``), SFT warm start on
   oracle conversations of the train split, then GRPO through the environment, same budget. The
   tools arm zooms (galaxies) or opens a wavelength window (spectra); the placebo arms call the
   same tools but get the overview again (``reinput``) or, for galaxies, a view of a random place
   (``random-view``); the ablations answer from the overview, or from the pixel-matched larger
   one (the pixels of the overview plus one view).
4. ``eval/`` (galaxies) or ``eval-spectra/``: every arm served by vLLM on CPU (two servers at a
   time, without graph compilation: each starts in under a minute), every condition on the held-out
   test split (``--eval-split val`` writes ``eval-val/`` instead, to choose a recipe): the tools
   arm's GRPO model as ``tools@grpo``, the same model with its tools switched off (``tools-off``),
   with blank views (``blank-tools``) and with no image (``blind``), and its SFT start as
   ``tools@sft``; then the report with paired tests, learning curves, skeptic checks and the
   trace viewer. With several tasks, ``report.html`` in the demo folder shows every report on one
   page. The run ends with where the time went, by phase (``EVAL_DIR/timings.json``).

This module wires every layer (data, models, training, evaluation), like the CLI that runs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astroreason.models.tiny import TINY_BASE


@dataclass(frozen=True)
class DemoTask:
    """One task of the demo: its environment, training config, data, arms and evaluation plan.

    Attributes:
        name: ``galaxies`` or ``spectra`` (``--task``).
        title: Section title in the combined report.
        env: The environment (``galaxy`` or ``spectrum``).
        config: The named training config every arm starts from.
        data: The synthetic data's path under ``OUT/data``.
        arms: Training arms: the condition each model is trained in.
        eval_conditions: Which conditions each arm's final (GRPO) model is evaluated in.
        sft_conditions: Which conditions each arm's SFT checkpoint is evaluated in (the start GRPO
            must beat).
        train_prefix: Training folders are ``OUT/<train_prefix><arm>``.
        eval_dir: The evaluation folder under ``OUT`` (traces, metrics, report, viewer).
        paired_with: Another task on the same data and split (``tokens``: ``galaxies``); when its
            evaluation is on disk, ``astroreason compare`` pairs the two arm by arm
            (``EVAL_DIR/compare.html``).
    """

    name: str
    title: str
    env: str
    config: str
    data: str
    arms: tuple[str, ...]
    eval_conditions: dict[str, tuple[str, ...]]
    sft_conditions: dict[str, tuple[str, ...]]
    train_prefix: str
    eval_dir: str
    paired_with: str | None = None


GALAXIES = DemoTask(
    name="galaxies",
    title="Galaxies",
    env="galaxy",
    config="tiny-cpu",
    data="galaxies.h5",
    arms=("tools", "no-tools", "no-tools-matched", "reinput", "random-view"),
    eval_conditions={
        "tools": ("tools@grpo", "tools-off", "blank-tools", "blind"),
        "no-tools": ("no-tools",),
        "no-tools-matched": ("no-tools-matched",),
        "reinput": ("reinput",),
        "random-view": ("random-view",),
    },
    sft_conditions={"tools": ("tools@sft",)},
    train_prefix="train-",
    eval_dir="eval",
)

SPECTRA = DemoTask(
    name="spectra",
    title="Spectra",
    env="spectrum",
    config="tiny-cpu-spectra",
    data="spectra",
    arms=("tools", "no-tools", "no-tools-matched", "reinput"),
    eval_conditions={
        "tools": ("tools@grpo", "tools-off", "blank-tools", "blind"),
        "no-tools": ("no-tools",),
        "no-tools-matched": ("no-tools-matched",),
        "reinput": ("reinput",),
    },
    sft_conditions={"tools": ("tools@sft",)},
    train_prefix="train-spectra-",
    eval_dir="eval-spectra",
)

TOKENS = DemoTask(
    name="tokens",
    title="Galaxies as codec tokens",
    env="galaxy",
    config="tiny-cpu-tokens",
    data="galaxies.h5",  # the galaxies task's file and split: the arms pair on the same test items
    arms=("tools", "no-tools", "no-tools-matched", "reinput"),
    eval_conditions={
        "tools": ("tools@grpo", "tools-off", "blank-tools", "blind"),
        "no-tools": ("no-tools",),
        "no-tools-matched": ("no-tools-matched",),
        "reinput": ("reinput",),
    },
    sft_conditions={"tools": ("tools@sft",)},
    train_prefix="train-tokens-",
    eval_dir="eval-tokens",
    paired_with="galaxies",
)


def _minutes(stages: dict[str, float]) -> str:
    """``SFT 4.7 min, GRPO 1.3 min`` from seconds by stage."""
    return ", ".join(f"{k} {v / 60:.1f} min" for k, v in stages.items())


@dataclass
class Timings:
    """Wall-clock seconds of a demo task, by phase (printed at the end, saved as ``timings.json``)."""

    seconds: dict[str, float] = field(default_factory=dict)
    arms: dict[str, dict[str, float]] = field(default_factory=dict)
    """Seconds of each arm's stages (SFT, GRPO) run this time; arms train in parallel, so these
    add up to more than the ``training`` phase."""

    servers: dict[str, dict[str, float]] = field(default_factory=dict)
    """Seconds of each vLLM server's start-up, rollouts and stop (servers run in parallel too)."""

    def add_server(self, label: str, what: str, seconds: float) -> None:
        """Record ``seconds`` of server ``label``'s ``what`` (start-up, rollouts, stop)."""
        self.servers.setdefault(label, {})[what] = seconds

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the wall time of the ``with`` block to phase ``name``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to phase ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def total(self) -> float:
        """All phases' seconds."""
        return sum(self.seconds.values())

    def lines(self) -> list[str]:
        """One line per phase: minutes and share of the total."""
        total = self.total() or 1.0
        lines = [
            f"{name:<22} {s / 60:5.1f} min  {100 * s / total:3.0f}%"
            for name, s in self.seconds.items()
        ]
        for arm, stages in self.arms.items():
            lines.append(f"  training {arm}: {_minutes(stages)}")
        for label, parts in self.servers.items():
            took = ", ".join(f"{k} {v:.0f} s" for k, v in parts.items())
            lines.append(f"  vLLM server {label}: {took}")
        if self.servers:
            starts = sum(p.get("start-up", 0.0) + p.get("stop", 0.0) for p in self.servers.values())
            rolls = sum(p.get("rollouts", 0.0) for p in self.servers.values())
            lines.append(
                f"  all servers: start-ups and stops {starts / 60:.1f} min, rollouts "
                f"{rolls / 60:.1f} min"
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        """``{"phases": ..., "arms": ..., "servers": ...}`` for ``timings.json``."""
        return {"phases": self.seconds, "arms": self.arms, "servers": self.servers}


DEMO_TASKS = {t.name: t for t in (GALAXIES, SPECTRA, TOKENS)}
"""The demo's tasks by name, in the order ``--task all`` runs them."""

TASK_CHOICES = (*DEMO_TASKS, "all")


@dataclass(frozen=True)
class DemoConfig:
    """What ``astroreason demo`` runs; training settings come from each task's named config."""

    out: Path = Path("runs/demo")
    """Demo folder: data, training runs, evaluation."""

    task: str = "galaxies"
    """``galaxies`` (``make demo``), ``spectra``, ``tokens`` or ``all`` (every task, then one
    combined report: ``make demo-all``)."""

    base: Path = TINY_BASE
    """The pretrained tiny base every arm starts from (``astroreason model pretrain`` builds it)."""

    n_galaxies: int = 2000
    """Synthetic galaxies (70/10/20 train/val/test split)."""

    n_spectra: int = 1200
    """Synthetic spectra (70/10/20 train/val/test split)."""

    view_size: int = 64
    """Galaxies: side of the overview and of every tool view, in pixels."""

    sft_episodes: int | None = None
    """Oracle conversations for SFT (None: the task config's; 0: every train row once)."""

    sft_epochs: float | None = None
    """SFT passes over the train split (None: the task config's)."""

    grpo_steps: int | None = None
    """GRPO optimizer steps per arm after SFT (None: the task config's; 0: SFT only)."""

    val_episodes: int | None = None
    """Val episodes per validation during GRPO (None: the task config's)."""

    eval_episodes: int | None = None
    """Test episodes per condition (None: the test split once)."""

    eval_split: str = "test"
    """Split the arms are evaluated on: ``test`` (the report, once) or ``val`` (to choose a recipe
    without looking at test; written to ``EVAL_DIR-val/``, training shared with the test run)."""

    max_tokens: int = 48
    """Tokens per reply at most, in evaluation."""

    seed: int = 0
    """Seed of the data, the model, training and evaluation."""

    workers: int = 2
    """Arms trained at once, each in its own process (1: one after another, in this process)."""

    @property
    def tasks(self) -> tuple[DemoTask, ...]:
        """The tasks to run (checked)."""
        from astroreason.errors import ConfigError

        if self.eval_split not in ("val", "test"):
            raise ConfigError(f"--eval-split: {self.eval_split!r}; choose val or test")
        if self.task == "all":
            return tuple(DEMO_TASKS.values())
        if self.task not in DEMO_TASKS:
            raise ConfigError(f"--task: unknown {self.task!r}; choose {', '.join(TASK_CHOICES)}")
        return (DEMO_TASKS[self.task],)

    def data_path(self, task: DemoTask) -> Path:
        """Where the task's synthetic data lives."""
        return self.out / "data" / task.data

    def eval_folder(self, task: DemoTask) -> Path:
        """The task's evaluation folder: ``OUT/EVAL_DIR`` on test, ``OUT/EVAL_DIR-SPLIT`` else."""
        suffix = "" if self.eval_split == "test" else f"-{self.eval_split}"
        return self.out / f"{task.eval_dir}{suffix}"


def train_config(cfg: DemoConfig, task: DemoTask, arm: str):
    """The ``TrainConfig`` of one arm: the task's config with the demo's paths, condition and budget."""
    from astroreason.training.config import load_config

    base = load_config(task.config)
    changes: dict[str, Any] = {
        "model": str(cfg.base),
        "data": str(cfg.data_path(task)),
        "output_dir": str(cfg.out / f"{task.train_prefix}{arm}"),
        "bootstrap_tiny": False,
        "condition": arm,
        "seed": cfg.seed,
    }
    if task.env == "galaxy":
        changes["view_size"] = cfg.view_size
    if cfg.sft_episodes is not None:
        changes["sft_episodes"] = cfg.sft_episodes
    if cfg.sft_epochs is not None:
        changes["sft_epochs"] = cfg.sft_epochs
    if cfg.val_episodes is not None:
        changes["val_episodes"] = cfg.val_episodes
    if cfg.grpo_steps is not None:
        changes["max_steps"] = cfg.grpo_steps
    return dataclasses.replace(base, **changes)


def _done(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def run_demo(cfg: DemoConfig = DemoConfig(), console: Any = None) -> dict[str, Any]:
    """Run every stage (module docstring) of each task; returns the evaluations' metrics by task.

    Ends with where the time went, by task and phase (data and audit, training, evaluation,
    report; each arm's SFT and GRPO; each server's start-up, rollouts and stop), also saved as
    ``EVAL_DIR/timings.json``.
    """
    from rich.console import Console

    from astroreason.errors import ConfigError

    console = console or Console()
    tasks = cfg.tasks
    if not (cfg.base / "config.json").is_file():
        raise ConfigError(
            f"base: {cfg.base} has no model; build it once with `astroreason model pretrain "
            f"--out {cfg.base}` (about 72 min on 2 cores)"
        )
    t0 = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {}
    timings: dict[str, Timings] = {}
    for task in tasks:
        timings[task.name] = Timings()
        metrics[task.name] = run_task(cfg, task, console, timings[task.name])
    if len(tasks) > 1:
        from astroreason.eval.report import write_combined_report

        sections = [(t.title, cfg.eval_folder(t)) for t in tasks]
        combined = write_combined_report(cfg.out / "report.html", sections)
        console.print(f"combined report: {combined}")
    took = ", ".join(f"{name} {t.total() / 60:.1f} min" for name, t in timings.items())
    console.print(f"demo finished in {(time.perf_counter() - t0) / 60:.1f} min ({took})")
    for name, t in timings.items():
        console.print(
            f"where the time went ({name}, this run; phases done before are not counted):"
        )
        for line in t.lines():
            console.print(f"  {line}")
    for task in tasks:
        folder = cfg.eval_folder(task)
        console.print(f"{task.name} report:  {folder / 'report.html'}")
        console.print(f"{task.name} traces:  {folder / 'traces.html'}")
    console.print(f"training logs: {cfg.out}/train-*/experiment_log.md (TensorBoard: same folders)")
    return metrics


def prepare_data(cfg: DemoConfig, task: DemoTask, console: Any) -> None:
    """Write the task's synthetic data (once), then print its leakage audit and its split."""
    from astroreason.data.quality.audit import cached_audit, print_report
    from astroreason.data.quality.splits import SplitConfig, load_or_create_split
    from astroreason.training.bootstrap import write_synthetic_data
    from astroreason.training.env_adapter import open_config_source

    data = cfg.data_path(task)
    if not data.exists():
        n = cfg.n_spectra if task.env == "spectrum" else cfg.n_galaxies
        write_synthetic_data(task.env, data, n, cfg.seed)
    tcfg = train_config(cfg, task, task.arms[0])
    source = open_config_source(tcfg)  # as the env opens it: the labels it trains on
    print_report(cached_audit(source), console=console)
    console.print(load_or_create_split(source, SplitConfig(seed=tcfg.split_seed)).summary())


def run_task(
    cfg: DemoConfig, task: DemoTask, console: Any, timings: Timings | None = None
) -> dict[str, Any]:
    """Data, audit and split; every arm trained from the base; evaluation and report of one task."""
    timings = timings if timings is not None else Timings()
    what = "galaxies" if task.env == "galaxy" else "SDSS-format spectra"
    console.rule(f"{task.title} 1. synthetic {what}, leakage audit, split")
    with timings.phase("data and audit"):
        prepare_data(cfg, task, console)
    console.rule(f"{task.title} 2. the pretrained tiny base")
    console.print(f"every arm starts from {cfg.base} (card: {cfg.base / 'README.md'})")
    finals: dict[str, Path] = {}
    starts: dict[str, Path] = {}
    pending = []
    for arm in task.arms:
        tcfg = train_config(cfg, task, arm)
        finals[arm] = tcfg.grpo_dir if tcfg.max_steps > 0 else tcfg.sft_dir
        if tcfg.max_steps > 0:
            starts[arm] = tcfg.sft_dir
        if _done(finals[arm]):
            stages = "SFT done before, GRPO done before" if arm in starts else "SFT done before"
            console.print(f"{arm} arm: {stages} ({finals[arm]})")
        else:
            pending.append(arm)
    console.rule(f"{task.title} 3. training {len(pending)} arm(s): SFT then GRPO")
    with timings.phase("training"):
        arm_seconds = train_arms(cfg, task, pending, console)
    timings.arms.update(arm_seconds)
    split = cfg.eval_split
    console.rule(f"{task.title} 4. evaluation on the held-out {split} split, served by vLLM on CPU")
    metrics = evaluate_arms(cfg, task, eval_plan(task, finals, starts), console, timings)
    if task.paired_with:
        with timings.phase("report"):
            pair_with(cfg, task, DEMO_TASKS[task.paired_with], console)
    folder = cfg.eval_folder(task)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "timings.json").write_text(json.dumps(timings.to_dict(), indent=2) + "\n")
    return metrics


def train_arm(cfg: DemoConfig, task: DemoTask, arm: str, console: Any = None) -> dict[str, float]:
    """SFT then GRPO of one arm from the base, each skipped when done; seconds of each stage run."""
    from astroreason.training.grpo import run_grpo
    from astroreason.training.sft import run_sft

    tcfg = train_config(cfg, task, arm)
    label = f"astroreason demo ({task.name}, arm {arm}"
    say = console.print if console is not None else print
    stages = [("SFT", tcfg.sft_dir, run_sft)]
    if tcfg.max_steps > 0:
        stages.append(("GRPO", tcfg.grpo_dir, run_grpo))
    seconds: dict[str, float] = {}
    for stage, folder, run in stages:
        if _done(folder):
            say(f"{stage} done before: {folder}")
            continue
        t0 = time.perf_counter()
        run(tcfg, command=f"{label}, {stage})")
        seconds[stage] = time.perf_counter() - t0
    return seconds


def _train_arm_in_worker(
    cfg: DemoConfig, task_name: str, arm: str, threads: int, log: str
) -> dict[str, float]:
    """:func:`train_arm` in a worker process: ``threads`` torch threads, all output to ``log``."""
    import os
    import sys

    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", buffering=1) as f:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        return train_arm(cfg, DEMO_TASKS[task_name], arm)


def train_arms(
    cfg: DemoConfig, task: DemoTask, arms: list[str], console: Any
) -> dict[str, dict[str, float]]:
    """Train ``arms`` (SFT then GRPO each), ``cfg.workers`` at a time; seconds by arm and stage.

    With one worker (or one arm) the arms train one after another in this process, their progress
    on the console. With more, each arm trains in its own process (spawned: nothing shared but the
    files) with ``cpu_count // workers`` torch threads and its output in ``train-ARM/train.log``;
    the console gets one line per arm. The arms are independent (each its own seed, data and
    folder), so their numbers do not depend on which ran beside which.
    """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    seconds: dict[str, dict[str, float]] = {}
    workers = min(cfg.workers, len(arms))
    if workers <= 1:
        for arm in arms:
            console.rule(f"{task.title}: the {arm} arm, SFT then GRPO")
            seconds[arm] = train_arm(cfg, task, arm, console)
        return seconds
    threads = max(1, (os.cpu_count() or 1) // workers)
    logs = {arm: cfg.out / f"{task.train_prefix}{arm}" / "train.log" for arm in arms}
    console.print(
        f"{len(arms)} arms, {workers} at a time ({threads} torch thread(s) each); "
        f"progress in {cfg.out}/{task.train_prefix}ARM/train.log"
    )
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        jobs = {
            pool.submit(_train_arm_in_worker, cfg, task.name, arm, threads, str(logs[arm])): arm
            for arm in arms
        }
        for job in as_completed(jobs):
            arm = jobs[job]
            seconds[arm] = job.result()
            console.print(f"{arm} arm trained ({_minutes(seconds[arm])}); log: {logs[arm]}")
    return seconds


def pair_with(cfg: DemoConfig, task: DemoTask, other: DemoTask, console: Any) -> Path | None:
    """Paired tests of ``task``'s evaluation against ``other``'s (same data, split and labels).

    ``OUT/<eval_dir>/compare.html`` and ``compare.json``; None (and a note) when ``other`` has not
    been evaluated in this demo folder.
    """
    from astroreason.eval.compare import (
        COMPARE_JSON,
        COMPARE_PAGE,
        compare_runs,
        print_comparison,
        write_compare_json,
        write_compare_page,
    )

    mine, theirs = cfg.eval_folder(task), cfg.eval_folder(other)
    if not (theirs / "metrics.json").is_file():
        console.print(
            f"no {other.name} evaluation in {cfg.out} to pair with: run `astroreason demo --task "
            f"{other.name} --out {cfg.out}`, then `astroreason compare {theirs} {mine}`"
        )
        return None
    result = compare_runs([theirs, mine])
    print_comparison(result, console=console)
    write_compare_json(mine / COMPARE_JSON, result)
    page = write_compare_page(mine / COMPARE_PAGE, result)
    console.print(f"{task.name} vs {other.name}, paired: {page}")
    return page


def eval_plan(
    task: DemoTask, finals: dict[str, Path], starts: dict[str, Path]
) -> list[tuple[str, Path, tuple]]:
    """(arm, model folder, condition labels) to serve, one server each.

    Each arm's final model in the task's ``eval_conditions``; arms that ran GRPO also their SFT
    start in ``sft_conditions``. Without GRPO the final model is the SFT one: ``tools@grpo`` is then called
    ``tools`` (no label may claim a stage that did not run).
    """
    plan = []
    for arm, model_dir in finals.items():
        conds = task.eval_conditions[arm]
        if arm not in starts:
            conds = tuple(c.removesuffix("@grpo") for c in conds)
        plan.append((arm, model_dir, conds))
        if arm in starts and arm in task.sft_conditions:
            plan.append((arm, starts[arm], task.sft_conditions[arm]))
    return plan


def evaluate_arms(
    cfg: DemoConfig,
    task: DemoTask,
    plan: list[tuple[str, Path, tuple]],
    console: Any,
    timings: Timings | None = None,
) -> dict[str, Any]:
    """Serve each planned model with vLLM and evaluate it in its conditions, into one report.

    A model whose conditions are all on disk already is not served again (a rerun only rewrites
    the report). Learning curves of every arm's training stages go into the report. Servers skip
    graph compilation (``enforce_eager``): on 2 cores that starts each in about 40 s instead of
    about 3 min, and the rollouts take about as long. ``cfg.workers`` servers run at a time (on
    CPU each bound to its own share of the cores), each evaluating its model's conditions.
    """
    import os
    import queue
    from concurrent.futures import ThreadPoolExecutor

    from astroreason.envs.factory import env_factory
    from astroreason.eval.evaluate import EvalConfig, run_conditions, summarize
    from astroreason.models.serving import ServeConfig, VLLMServer, on_gpu
    from astroreason.policies.openai_chat import OpenAIChatPolicy, SamplingConfig
    from astroreason.traces import TRACES_FILE, read_traces
    from astroreason.training.config import env_options

    timings = timings if timings is not None else Timings()
    data = cfg.data_path(task)
    run_dir = cfg.eval_folder(task)
    sampling = SamplingConfig(temperature=0.0, max_tokens=cfg.max_tokens, seed=cfg.seed)
    opts = env_options(train_config(cfg, task, "tools"))  # every arm shares these settings

    def make_env_factory(condition: str):
        return env_factory(task.env, data, cfg.eval_split, condition, opts)[0]

    def complete(condition: str) -> bool:
        env = make_env_factory(condition)()
        planned = cfg.eval_episodes or len(env.unwrapped.rows)
        env.close()
        folder = run_dir / condition
        return (folder / TRACES_FILE).exists() and len(list(read_traces(folder))) >= planned

    all_conds = tuple(c for _, _, conds in plan for c in conds)
    ecfg = EvalConfig(conditions=all_conds, episodes=cfg.eval_episodes, seed=cfg.seed)
    todo = []
    for arm, model_dir, conds in plan:
        if all(complete(c) for c in conds):
            console.print(f"{model_dir}: {', '.join(conds)} evaluated before")
        else:
            todo.append((arm, model_dir, conds))
    workers = max(1, min(cfg.workers, len(todo)))
    cpus = os.cpu_count() or 1
    slots: queue.Queue[int] = queue.Queue()
    for k in range(workers):
        slots.put(k)

    def serve_and_run(arm: str, model_dir: Path, conds: tuple) -> None:
        slot = slots.get()
        try:
            extra_env: tuple[tuple[str, str], ...] = ()
            if workers > 1 and not on_gpu():  # each server on its own cores, not all on all
                mine = [str(c) for c in range(cpus) if c % workers == slot] or ["0"]
                extra_env = (("VLLM_CPU_OMP_THREADS_BIND", ",".join(mine)),)
            name = f"{task.name}-{arm}-model"
            serve = ServeConfig(
                model=str(model_dir),
                served_model_name=name,
                max_model_len=4096,
                enforce_eager=True,
                extra_env=extra_env,
            )
            console.print(f"[bold]{arm}[/] model {model_dir}: conditions {', '.join(conds)}")
            label = f"{arm} {model_dir.name}"
            t0 = time.perf_counter()
            with VLLMServer(serve) as server:
                timings.add_server(label, "start-up", time.perf_counter() - t0)
                policy = OpenAIChatPolicy(server.base_url, name, sampling=sampling)
                t1 = time.perf_counter()
                run_conditions(
                    make_env_factory,
                    lambda policy=policy: policy,
                    run_dir,
                    dataclasses.replace(ecfg, conditions=conds, progress=workers == 1),
                    run_meta={"model": str(model_dir), "data": str(data)},
                )
                timings.add_server(label, "rollouts", time.perf_counter() - t1)
                t2 = time.perf_counter()
            timings.add_server(label, "stop", time.perf_counter() - t2)
        finally:
            slots.put(slot)

    with timings.phase("evaluation"), ThreadPoolExecutor(max_workers=workers) as pool:
        for job in [pool.submit(serve_and_run, *entry) for entry in todo]:
            job.result()
    training = {arm: cfg.out / f"{task.train_prefix}{arm}" for arm, _, _ in plan}
    with timings.phase("report"):
        return summarize(
            run_dir,
            make_env_factory(all_conds[0]),
            ecfg,
            data=str(data),
            console=console,
            training_runs=training,
        )
