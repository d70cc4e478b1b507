"""The embedded default end to end: ``astroreason demo`` / ``make demo``, on CPU, nothing downloaded.

Stages, each skipped when its output is already complete (a rerun resumes where it stopped):

1. ``data/galaxies.h5``: synthetic Galaxy10-format galaxies (GalSim), then the leakage audit and
   the persisted train/val/test split (70/10/20).
2. The pretrained tiny base (``checkpoints/tiny-base``, built once by ``astroreason model
   pretrain``): every arm starts from it, as a real user starts from a released Qwen3-VL.
3. ``train-ARM/`` for each arm (``ARMS``): the same training, SFT warm start on oracle
   conversations of the train split that look only part of the time, then GRPO through the
   environment, same budget. The tools arm zooms; the placebo arms call the same tools but get
   the overview again (``reinput``) or a view of a random place (``random-view``); the ablations
   answer from the 64 px overview, or from the pixel-matched 96 px one.
4. ``eval/``: every arm served by vLLM on CPU (one server at a time), every condition on the
   held-out test split: the tools arm's GRPO model as ``tools@grpo`` (also in ``blank-tools`` and
   ``blind``) and its SFT start as ``tools@sft``; then the report with paired tests, learning
   curves, skeptic checks and the trace viewer.

This module wires every layer (data, models, training, evaluation), like the CLI that runs it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astroreason.models.tiny import TINY_BASE

ARMS = ("tools", "no-tools", "no-tools-matched", "reinput", "random-view")
"""Training arms: the condition each model is trained in."""

EVAL_CONDITIONS = {
    "tools": ("tools@grpo", "blank-tools", "blind"),
    "no-tools": ("no-tools",),
    "no-tools-matched": ("no-tools-matched",),
    "reinput": ("reinput",),
    "random-view": ("random-view",),
}
"""Which conditions each arm's final (GRPO) model is evaluated in."""

SFT_CONDITIONS = {"tools": ("tools@sft",)}
"""Which conditions each arm's SFT checkpoint is evaluated in (the start GRPO must beat)."""


@dataclass(frozen=True)
class DemoConfig:
    """What ``astroreason demo`` runs; training settings come from the ``tiny-cpu`` config."""

    out: Path = Path("runs/demo")
    """Demo folder: data, training runs, evaluation."""

    base: Path = TINY_BASE
    """The pretrained tiny base every arm starts from (``astroreason model pretrain`` builds it)."""

    n_galaxies: int = 2000
    """Synthetic galaxies (70/10/20 train/val/test split)."""

    view_size: int = 64
    """Side of the overview and of every tool view, in pixels."""

    sft_episodes: int | None = None
    """Oracle conversations for SFT (None: ``tiny-cpu``'s; 0: every train row once)."""

    sft_epochs: float | None = None
    """SFT passes over the train split (None: ``tiny-cpu``'s)."""

    grpo_steps: int | None = None
    """GRPO optimizer steps per arm after SFT (None: ``tiny-cpu``'s; 0: SFT only)."""

    val_episodes: int | None = None
    """Val episodes per validation during GRPO (None: ``tiny-cpu``'s)."""

    eval_episodes: int | None = None
    """Test episodes per condition (None: the test split once)."""

    max_tokens: int = 48
    """Tokens per reply at most, in evaluation."""

    seed: int = 0
    """Seed of the data, the model, training and evaluation."""


def train_config(cfg: DemoConfig, arm: str):
    """The ``TrainConfig`` of one arm: ``tiny-cpu`` with the demo's paths, condition and budget."""
    from astroreason.training.config import load_config

    base = load_config("tiny-cpu")
    changes: dict[str, Any] = {
        "model": str(cfg.base),
        "data": str(cfg.out / "data" / "galaxies.h5"),
        "output_dir": str(cfg.out / f"train-{arm}"),
        "bootstrap_tiny": False,
        "condition": arm,
        "view_size": cfg.view_size,
        "seed": cfg.seed,
    }
    if cfg.sft_episodes is not None:
        changes["sft_episodes"] = cfg.sft_episodes
    if cfg.sft_epochs is not None:
        changes["sft_epochs"] = cfg.sft_epochs
    if cfg.val_episodes is not None:
        changes["val_episodes"] = cfg.val_episodes
    if cfg.grpo_steps is not None:
        changes["max_steps"] = cfg.grpo_steps
    return dataclasses.replace(base, **changes)


def env_options(tcfg: Any) -> dict[str, Any]:
    """Evaluation env settings: the ones the arm was trained with."""
    return {
        "view_size": tcfg.view_size,
        "max_turns": tcfg.max_turns,
        "max_tool_calls": tcfg.max_tool_calls,
    }


def _done(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def run_demo(cfg: DemoConfig = DemoConfig(), console: Any = None) -> dict[str, Any]:
    """Run every stage (module docstring); returns the evaluation's metrics."""
    from rich.console import Console

    from astroreason.data import open_source
    from astroreason.data.audit import audit_source, print_report
    from astroreason.data.splits import SplitConfig, load_or_create_split
    from astroreason.data.synth_galaxy import GalaxySynthConfig, write_galaxy_file
    from astroreason.errors import ConfigError
    from astroreason.training.grpo import run_grpo
    from astroreason.training.sft import run_sft

    console = console or Console()
    if not (cfg.base / "config.json").is_file():
        raise ConfigError(
            f"base: {cfg.base} has no model; build it once with `astroreason model pretrain "
            f"--out {cfg.base}` (about an hour on 2 cores)"
        )
    t0 = time.perf_counter()
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data" / "galaxies.h5"
    console.rule("1. synthetic galaxies, leakage audit, split")
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        write_galaxy_file(
            data, GalaxySynthConfig(n=cfg.n_galaxies, size=256, seed=cfg.seed), progress=True
        )
    source = open_source(data)
    print_report(audit_source(source), console=console)
    console.print(load_or_create_split(source, SplitConfig(seed=0)).summary())

    console.rule("2. the pretrained tiny base")
    console.print(f"every arm starts from {cfg.base} (card: {cfg.base / 'README.md'})")

    finals: dict[str, Path] = {}
    starts: dict[str, Path] = {}
    for k, arm in enumerate(ARMS):
        tcfg = train_config(cfg, arm)
        console.rule(f"3.{k + 1} training the {arm} arm: SFT then GRPO ({tcfg.output_dir})")
        if not _done(tcfg.sft_dir):
            run_sft(tcfg, command=f"astroreason demo (arm {arm}, SFT)")
        else:
            console.print(f"SFT done before: {tcfg.sft_dir}")
        final = tcfg.sft_dir
        if tcfg.max_steps > 0:
            if not _done(tcfg.grpo_dir):
                run_grpo(tcfg, command=f"astroreason demo (arm {arm}, GRPO)")
            else:
                console.print(f"GRPO done before: {tcfg.grpo_dir}")
            final = tcfg.grpo_dir
            starts[arm] = tcfg.sft_dir
        finals[arm] = final

    console.rule("4. evaluation on the held-out test split, served by vLLM on CPU")
    metrics = evaluate_arms(cfg, eval_plan(finals, starts), console)
    minutes = (time.perf_counter() - t0) / 60
    console.print(f"demo finished in {minutes:.1f} min")
    console.print(f"report:  {out / 'eval' / 'report.html'}")
    console.print(f"traces:  {out / 'eval' / 'traces.html'}")
    console.print(f"training logs: {out}/train-*/experiment_log.md (TensorBoard: same folders)")
    return metrics


def eval_plan(finals: dict[str, Path], starts: dict[str, Path]) -> list[tuple[str, Path, tuple]]:
    """(arm, model folder, condition labels) to serve, one server each.

    Each arm's final model in ``EVAL_CONDITIONS``; arms that ran GRPO also their SFT start in
    ``SFT_CONDITIONS``. Without GRPO the final model is the SFT one: ``tools@grpo`` is then called
    ``tools`` (no label may claim a stage that did not run).
    """
    plan = []
    for arm, model_dir in finals.items():
        conds = EVAL_CONDITIONS[arm]
        if arm not in starts:
            conds = tuple(c.removesuffix("@grpo") for c in conds)
        plan.append((arm, model_dir, conds))
        if arm in starts and arm in SFT_CONDITIONS:
            plan.append((arm, starts[arm], SFT_CONDITIONS[arm]))
    return plan


def evaluate_arms(
    cfg: DemoConfig, plan: list[tuple[str, Path, tuple]], console: Any
) -> dict[str, Any]:
    """Serve each planned model with vLLM and evaluate it in its conditions, into one report.

    A model whose conditions are all on disk already is not served again (a rerun only rewrites
    the report). Learning curves of every arm's training stages go into the report.
    """
    from astroreason.envs.factory import env_factory
    from astroreason.eval.evaluate import EvalConfig, run_conditions, summarize
    from astroreason.models.serving import ServeConfig, VLLMServer
    from astroreason.policies.openai_chat import OpenAIChatPolicy, SamplingConfig
    from astroreason.traces import TRACES_FILE, read_traces

    data = cfg.out / "data" / "galaxies.h5"
    run_dir = cfg.out / "eval"
    sampling = SamplingConfig(temperature=0.0, max_tokens=cfg.max_tokens, seed=cfg.seed)

    opts = env_options(train_config(cfg, "tools"))  # every arm shares these settings

    def make_env_factory(condition: str):
        return env_factory("galaxy", data, "test", condition, opts)[0]

    def complete(condition: str) -> bool:
        env = make_env_factory(condition)()
        planned = cfg.eval_episodes or len(env.unwrapped.rows)
        env.close()
        folder = run_dir / condition
        return (folder / TRACES_FILE).exists() and len(list(read_traces(folder))) >= planned

    all_conds = tuple(c for _, _, conds in plan for c in conds)
    ecfg = EvalConfig(conditions=all_conds, episodes=cfg.eval_episodes, seed=cfg.seed)
    for arm, model_dir, conds in plan:
        if all(complete(c) for c in conds):
            console.print(f"{model_dir}: {', '.join(conds)} evaluated before")
            continue
        name = f"{arm}-model"
        serve = ServeConfig(model=str(model_dir), served_model_name=name, max_model_len=4096)
        console.print(f"[bold]{arm}[/] model {model_dir}: conditions {', '.join(conds)}")
        with VLLMServer(serve) as server:
            policy = OpenAIChatPolicy(server.base_url, name, sampling=sampling)
            run_conditions(
                make_env_factory,
                lambda policy=policy: policy,
                run_dir,
                dataclasses.replace(ecfg, conditions=conds),
                run_meta={"model": str(model_dir), "data": str(data)},
            )
    training = {arm: cfg.out / f"train-{arm}" for arm, _, _ in plan}
    return summarize(
        run_dir,
        make_env_factory(all_conds[0]),
        ecfg,
        data=str(data),
        console=console,
        training_runs=training,
    )
