"""Commands that run models: serve, rollout, eval, compare and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astroreason.cli.app import app
from astroreason.cli.demo import DemoConfig
from astroreason.cli.options import (
    _DEMO,
    _EVAL,
    _ROLLOUT,
    _SAMPLING,
    _SERVE,
    BaseUrlOpt,
    CodecOpt,
    ConcurrencyOpt,
    DataOpt,
    EnvOpt,
    MaxTokensOpt,
    MaxToolCallsOpt,
    MaxTurnsOpt,
    ModelOpt,
    ObsOpt,
    PolicyOpt,
    SplitOpt,
    TableOpt,
    TaskOpt,
    TemperatureOpt,
    ViewHeightOpt,
    ViewSizeOpt,
    ViewWidthOpt,
    _policy,
    _run_options,
    _with_checkpoint_settings,
)
from astroreason.errors import ConfigError
from astroreason.eval.config import STANDARD_CONDITIONS, EvalConfig
from astroreason.models.serving import ServeConfig
from astroreason.policies.openai_chat import SamplingConfig
from astroreason.rollout import RolloutConfig


@app.command("serve")
def serve(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="Model folder or Hugging Face id.")],
    port: Annotated[
        int, typer.Option(help="Port (0: pick a free one; the URL is printed).")
    ] = _SERVE.port,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = _SERVE.host,
    served_model_name: Annotated[
        str | None, typer.Option(help="Name clients use (default: the --model value).")
    ] = None,
    max_model_len: Annotated[
        int, typer.Option(help="Context length in tokens.")
    ] = _SERVE.max_model_len,
    max_images: Annotated[
        int, typer.Option(help="Images per prompt (overview plus views).")
    ] = _SERVE.max_images,
    min_pixels: Annotated[
        int,
        typer.Option(
            help="Smallest image area kept (Qwen3-VL's own 256x256 upscales views; a trained "
            "checkpoint's default: its own)."
        ),
    ] = _SERVE.min_pixels,
    max_pixels: Annotated[
        int, typer.Option(help="Largest image area kept (a trained checkpoint's: its own).")
    ] = _SERVE.max_pixels,
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="GPU memory fraction (GPU only).")
    ] = _SERVE.gpu_memory_utilization,
    online: Annotated[
        bool, typer.Option(help="Allow hub downloads (a model id not yet in the local cache).")
    ] = not _SERVE.offline,
    enforce_eager: Annotated[
        bool,
        typer.Option(
            help="Skip graph compilation: starts ~5x faster on CPU (36 s vs 186 s, tiny)."
        ),
    ] = _SERVE.enforce_eager,
) -> None:
    """Serve a Qwen3-VL model with vLLM's OpenAI-compatible server (CPU or GPU), until Ctrl-C.

    A trained checkpoint's image limits (its ``astroreason.json``) are the defaults; ``eval`` and
    ``rollout`` against this server read the rest of its settings through the server.
    """
    from astroreason.models.serving import serve_forever

    if Path(model).is_dir():  # vLLM reports the folder to clients (/v1/models): make it absolute
        served_model_name = served_model_name or model
        model = str(Path(model).resolve())
        v = _with_checkpoint_settings(ctx, "transformers", model, None)  # its pixel limits
        min_pixels, max_pixels = v["min_pixels"], v["max_pixels"]

    cfg = ServeConfig(
        model=model,
        served_model_name=served_model_name,
        host=host,
        port=port,
        max_model_len=max_model_len,
        max_images=max_images,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        gpu_memory_utilization=gpu_memory_utilization,
        offline=not online,
        enforce_eager=enforce_eager,
    )
    raise typer.Exit(serve_forever(cfg))


@app.command("rollout")
def rollout(
    ctx: typer.Context,
    data: DataOpt,
    out: Annotated[Path, typer.Option(help="Run folder (traces.jsonl and images); reruns resume.")],
    env: EnvOpt = "galaxy",
    split: SplitOpt = "test",
    policy: PolicyOpt = "openai",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    condition: Annotated[
        str,
        typer.Option(
            help="tools, no-tools, no-tools-matched, blank-tools, blind, reinput, random-view "
            "(or a label NAME@TAG)."
        ),
    ] = "tools",
    episodes: Annotated[
        int | None, typer.Option(help="Episodes in all (default: the split once).")
    ] = None,
    concurrency: ConcurrencyOpt = _ROLLOUT.concurrency,
    max_turns: MaxTurnsOpt = None,
    max_tool_calls: MaxToolCallsOpt = None,
    view_size: ViewSizeOpt = None,
    obs: ObsOpt = None,
    codec: CodecOpt = None,
    task: TaskOpt = None,
    view_width: ViewWidthOpt = None,
    view_height: ViewHeightOpt = None,
    table: TableOpt = None,
    temperature: TemperatureOpt = _SAMPLING.temperature,
    max_tokens: MaxTokensOpt = _SAMPLING.max_tokens,
    seed: Annotated[int, typer.Option(help="Seed of resets and sampling.")] = _ROLLOUT.seed,
) -> None:
    """Run multi-turn episodes of a policy in an environment and write traces (resumable).

    A trained checkpoint (``--policy transformers --model FOLDER``, or the folder an ``openai``
    server serves) runs with the settings it was trained with (env, condition, view size, tool
    budget, turns, reply length, temperature) unless a flag says otherwise.
    """
    from astroreason.envs.factory import env_factory
    from astroreason.rollout import run_rollouts

    v, opts = _run_options(ctx)
    env, condition = v["env"], v["condition"]
    make, probe = env_factory(env, data, split, condition, opts)
    sampling = SamplingConfig(temperature=v["temperature"], max_tokens=v["max_tokens"], seed=seed)
    pol = _policy(policy, base_url, model, sampling, probe, seed)
    cfg = RolloutConfig(episodes=episodes, concurrency=concurrency, seed=seed)
    meta = {"model": model or policy, "data": str(data)}
    s = run_rollouts(make, pol, out, cfg, run_meta=meta)
    typer.echo(
        f"{s.written} new episodes ({s.already_done} already done) in {s.wall_s:.1f}s; "
        f"accuracy of new episodes {s.accuracy:.3f}; traces in {out}/traces.jsonl"
    )


@app.command("demo")
def demo(
    out: Annotated[
        Path, typer.Option(help="Demo folder (data, model, runs); reruns resume.")
    ] = _DEMO.out,
    task: Annotated[
        str,
        typer.Option(
            help="galaxies (make demo), spectra, tokens (the galaxies as codec ids in text, paired "
            "with the galaxies task's arms), or all (make demo-all: every task, then one combined "
            "report in the demo folder)."
        ),
    ] = _DEMO.task,
    n: Annotated[int, typer.Option(help="Synthetic galaxies to generate.")] = _DEMO.n_galaxies,
    n_spectra: Annotated[
        int, typer.Option(help="Synthetic spectra to generate.")
    ] = _DEMO.n_spectra,
    view_size: Annotated[int, typer.Option(help="Galaxy view side in pixels.")] = _DEMO.view_size,
    sft_episodes: Annotated[
        int | None,
        typer.Option(
            help="Oracle conversations for SFT (0: every train row; default: tiny-cpu's)."
        ),
    ] = None,
    sft_epochs: Annotated[
        float | None, typer.Option(help="SFT passes over the conversations (default: tiny-cpu's).")
    ] = None,
    grpo_steps: Annotated[
        int | None,
        typer.Option(help="GRPO steps per arm after SFT (0: none; default: tiny-cpu's)."),
    ] = None,
    val_episodes: Annotated[
        int | None, typer.Option(help="Val episodes per validation in GRPO (default: tiny-cpu's).")
    ] = None,
    episodes: Annotated[
        int | None, typer.Option(help="Test episodes per condition (default: the split once).")
    ] = None,
    eval_split: Annotated[
        str,
        typer.Option(
            help="Evaluate on test (the report) or val (choose a recipe without seeing test: "
            "EVAL_DIR-val/, same trained arms)."
        ),
    ] = _DEMO.eval_split,
    base: Annotated[
        Path | None,
        typer.Option(
            help="Pretrained base every arm starts from (default: checkpoints/tiny-base)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Arms trained at once, each in its own process (1: one after another, here)."
        ),
    ] = _DEMO.workers,
) -> None:
    """Train and evaluate tiny agents on CPU: synthetic galaxies and spectra, SFT + GRPO, vLLM, report.

    Tasks: galaxies (pixels), spectra, and tokens (the galaxies again, each view given as the ids of
    the shipped image codec in text, no image; paired with the galaxies arms on the same items).

    Per task (each stage resumes when rerun): synthetic data (Galaxy10-format galaxies, SDSS-format
    spectra), leakage audit and split; the pretrained tiny base; SFT then GRPO for the tools arm
    and the same training for the no-tools, no-tools-matched and reinput arms (and random-view for
    galaxies); every arm served by vLLM on CPU and evaluated on the held-out test split
    (tools@grpo, tools@sft, the arms' conditions, tools-off: the tools arm's own checkpoint with no
    tools, blank-tools, blind); per task a report with paired tests, learning curves and skeptic
    checks and a trace viewer, and with several tasks one combined report. Ends with where the
    time went (data, SFT, GRPO, vLLM start-ups, rollouts, report).
    """
    from astroreason.cli.demo import run_demo

    run_demo(
        DemoConfig(
            out=out,
            task=task,
            **({"base": base} if base else {}),
            n_galaxies=n,
            n_spectra=n_spectra,
            view_size=view_size,
            sft_episodes=sft_episodes,
            sft_epochs=sft_epochs,
            grpo_steps=grpo_steps,
            val_episodes=val_episodes,
            eval_episodes=episodes,
            eval_split=eval_split,
            workers=workers,
        )
    )


@app.command("eval")
def eval_(
    ctx: typer.Context,
    data: DataOpt,
    out: Annotated[
        Path, typer.Option(help="Run folder: one subfolder per condition, reports; reruns resume.")
    ],
    env: EnvOpt = "galaxy",
    split: SplitOpt = "test",
    policy: PolicyOpt = "openai",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    conditions: Annotated[
        str, typer.Option(help="Comma-separated conditions, in report order.")
    ] = ",".join(STANDARD_CONDITIONS),
    episodes: Annotated[
        int | None, typer.Option(help="Test items per condition (default: the whole split).")
    ] = None,
    samples: Annotated[
        int,
        typer.Option(
            help="Episodes per item and condition, seeds differing: avg@k and pass@k (k > 1 "
            "needs --temperature > 0); paired tests use each item's first sample."
        ),
    ] = _EVAL.samples,
    concurrency: ConcurrencyOpt = _EVAL.concurrency,
    max_turns: MaxTurnsOpt = None,
    max_tool_calls: MaxToolCallsOpt = None,
    view_size: ViewSizeOpt = None,
    obs: ObsOpt = None,
    codec: CodecOpt = None,
    task: TaskOpt = None,
    view_width: ViewWidthOpt = None,
    view_height: ViewHeightOpt = None,
    table: TableOpt = None,
    temperature: TemperatureOpt = _SAMPLING.temperature,
    max_tokens: MaxTokensOpt = _SAMPLING.max_tokens,
    seed: Annotated[int, typer.Option(help="Seed of resets, sampling and bootstrap.")] = _EVAL.seed,
    human_ceiling: Annotated[
        float, typer.Option(help="Accuracy above which a result is an alarm.")
    ] = _EVAL.human_ceiling,
    audit: Annotated[
        bool, typer.Option(help="Run the leakage audit of the data file.")
    ] = _EVAL.audit,
    training_run: Annotated[
        list[str] | None,
        typer.Option(
            help="ARM=DIR: a training run folder whose learning curves the report shows "
            "(repeat for several arms)."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when a skeptic check fails (for scripts and CI).")
    ] = False,
) -> None:
    """Evaluate a policy on held-out data in every condition: metrics, skeptic checks, report, viewer.

    A trained checkpoint (``--policy transformers --model FOLDER``, or the folder an ``openai``
    server serves) runs with the settings it was trained with (env, view size, tool budget, turns,
    reply length, temperature) unless a flag says otherwise. With ``--strict`` a failed skeptic
    check exits 1.
    """
    from astroreason.eval.evaluate import evaluate

    v, opts = _run_options(ctx)
    env, temperature, max_tokens = v["env"], v["temperature"], v["max_tokens"]

    conds = tuple(c.strip() for c in conditions.split(",") if c.strip())
    cfg = EvalConfig(
        conditions=conds,
        episodes=episodes,
        samples=samples,
        concurrency=concurrency,
        seed=seed,
        human_ceiling=human_ceiling,
        audit=audit,
    )
    sampling = SamplingConfig(temperature=temperature, max_tokens=max_tokens, seed=seed)
    if samples > 1 and temperature == 0 and policy in ("openai", "transformers"):
        typer.echo(
            f"warning: --samples {samples} with --temperature 0: greedy replies repeat, so the "
            "samples are copies (pass@k = avg@k); sample with --temperature > 0",
            err=True,
        )

    from astroreason.envs.factory import env_factory

    def make_env_factory(condition: str):
        return env_factory(env, data, split, condition, opts)[0]

    # one policy for every condition (policies reopen their connections after aclose), built
    # before any episode runs so that a bad --policy fails at once
    _, probe = env_factory(env, data, split, cfg.conditions[0], opts)
    pol = _policy(policy, base_url, model, sampling, probe, seed)
    probe.close()

    def make_policy():
        return pol

    meta = {"model": model or policy, "data": str(data)}
    metrics = evaluate(
        make_env_factory,
        make_policy,
        out,
        cfg,
        data=str(data),
        run_meta=meta,
        training_runs=_training_runs(training_run or []),
    )
    failed = [c["name"] for c in metrics.get("skeptic", []) if c.get("status") == "fail"]
    if strict and failed:
        typer.echo(f"--strict: {len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)


def _training_runs(items: list[str]) -> dict[str, Path]:
    """``ARM=DIR`` options as {arm: folder}; a bad item or a missing folder is a one-line error."""
    runs: dict[str, Path] = {}
    for item in items:
        arm, eq, folder = item.partition("=")
        if not eq or not arm.strip() or not folder.strip():
            raise ConfigError(f"--training-run: expected ARM=DIR, got {item!r}")
        if not Path(folder).is_dir():
            raise ConfigError(f"--training-run: {folder}: no such folder")
        runs[arm.strip()] = Path(folder)
    return runs


@app.command("compare")
def compare(
    runs: Annotated[
        list[Path], typer.Argument(help="Evaluation run folders; the first is the baseline.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for compare.html and compare.json (default: the first run's)."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="The page (default: compare.html in the --out folder).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON instead of tables.")
    ] = False,
) -> None:
    """Paired tests between evaluation runs (SFT vs GRPO, two seeds, two recipes) on shared episodes.

    Every run against the first, per condition present in both (episodes matched on condition,
    split, row and sample; with several samples per item, each item's first sample): accuracy of
    each, the difference with a bootstrap 95% interval, the discordant counts and the exact
    McNemar p; and inside each run the NAME@TAG arms of one NAME (tools@grpo vs tools@sft).
    """
    from astroreason.eval.compare import (
        COMPARE_JSON,
        COMPARE_PAGE,
        compare_runs,
        print_comparison,
        to_json,
        write_compare_json,
        write_compare_page,
    )

    result = compare_runs(runs)
    folder = out if out is not None else runs[0]
    page = write_compare_page(html or folder / COMPARE_PAGE, result)
    write_compare_json(folder / COMPARE_JSON, result)
    if as_json:
        typer.echo(to_json(result))
        return
    print_comparison(result)
    typer.echo(f"compare: {page}")
