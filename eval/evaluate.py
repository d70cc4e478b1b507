"""Run an evaluation: every condition on the same held-out episodes, then metrics, checks and pages.

``evaluate`` runs :func:`astroreason.rollout.run_rollouts` once per condition into
``RUN_DIR/<condition>/`` (resumable: rerunning the same command finishes what is missing), then writes

* ``RUN_DIR/metrics.json``: per-condition metrics, paired comparisons, skeptic checks, the setup;
* ``RUN_DIR/report.html``: the self-contained report (:mod:`astroreason.eval.report`);
* ``RUN_DIR/traces.html``: the trace viewer (:mod:`astroreason.eval.viewer`).

Every condition runs the same rows of the same split with the same samples, so conditions can be
compared episode by episode. With ``samples`` = k > 1 each row runs k times per condition (sample
0, 1, ...: different seeds), metrics.json gains avg@k and pass@k, and paired tests use each item's
first sample (see :mod:`astroreason.eval.metrics`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from astroreason.conditions import CONDITIONS
from astroreason.errors import ConfigError
from astroreason.eval.config import EvalConfig
from astroreason.eval.format import HEADLINE_COLUMNS, fmt_pp, headline_rows, sample_rows
from astroreason.eval.metrics import METRICS_FILE, compute_metrics, solved_only_with_tools
from astroreason.eval.skeptic import Check, print_checks, run_checks
from astroreason.rollout import RolloutConfig, run_rollouts
from astroreason.runlock import make_run_folder
from astroreason.traces import TRACES_FILE, TraceRecord, read_traces


def report_conditions(run_dir: str | Path, conditions: Sequence[str]) -> list[str]:
    """``conditions``, plus every other condition folder already in ``run_dir``.

    With no other folder the order is ``conditions``'; with others, the union in CONDITIONS order
    (so the report does not depend on which step ran last). An evaluation can be built in steps,
    e.g. the tool-trained model on ``tools,blank-tools,blind`` and then the no-tools-trained model
    on ``no-tools,no-tools-matched`` into the same folder (one served model at a time); the report
    covers them all, each with its own model.
    """
    present = [c for c in CONDITIONS if (Path(run_dir) / c / TRACES_FILE).exists()]
    if set(present) <= set(conditions):
        return list(conditions)
    return [c for c in CONDITIONS if c in present or c in conditions]


def load_condition_records(
    run_dir: str | Path, conditions: Sequence[str]
) -> dict[str, list[TraceRecord]]:
    """The trace records of each condition's folder (conditions without traces are left out)."""
    out = {}
    for c in conditions:
        if (Path(run_dir) / c / TRACES_FILE).exists():
            out[c] = list(read_traces(Path(run_dir) / c))
    return out


def _train_labels(env) -> np.ndarray | None:
    from astroreason.data.quality.splits import split_for

    u = env.unwrapped
    try:
        sp = split_for(u.source, u.cfg.split_seed)
        return np.asarray(u.source.labels())[sp.rows("train")]
    except Exception:  # noqa: BLE001 - a source without a split: no majority baseline
        return None


def _audit_findings(env) -> tuple[list[dict[str, Any]] | None, str]:
    from astroreason.data.quality.audit import cached_audit

    source = env.unwrapped.source
    report = cached_audit(source, progress=False)
    return [f.to_dict() for f in report.findings], str(source.path)


def evaluate(
    make_env_factory: Callable[[str], Callable[[], Any]],
    make_policy: Callable[[], Any],
    run_dir: str | Path,
    cfg: EvalConfig = EvalConfig(),
    *,
    data: str | None = None,
    run_meta: dict[str, Any] | None = None,
    console=None,
    training_runs: dict[str, str | Path] | None = None,
) -> dict[str, Any]:
    """Run every condition, then write metrics.json, report.html and traces.html (module docstring).

    Args:
        make_env_factory: condition -> zero-argument environment factory (as ``run_rollouts`` takes).
        make_policy: The policy for a condition, called once per condition; it may return the same
            instance each time (``run_rollouts`` closes it at the end; policies reopen lazily).
        run_dir: Output folder; a rerun with the same settings resumes.
        cfg: What to run.
        data: The data file's name, for the report (default: the source's path).
        run_meta: Extra fields stored in every trace record and checked on resume (model, data, ...).
        console: A rich console (default: a new one).
        training_runs: Arm name -> its training run folder: the report shows its learning curves.

    Returns:
        The contents of metrics.json.
    """
    t0 = time.perf_counter()
    run_conditions(make_env_factory, make_policy, run_dir, cfg, run_meta=run_meta)
    return summarize(
        run_dir,
        make_env_factory(cfg.conditions[0]),
        cfg,
        data=data,
        run_meta=run_meta,
        console=console,
        eval_s=time.perf_counter() - t0,
        training_runs=training_runs,
    )


def run_conditions(
    make_env_factory: Callable[[str], Callable[[], Any]],
    make_policy: Callable[[], Any],
    run_dir: str | Path,
    cfg: EvalConfig = EvalConfig(),
    *,
    run_meta: dict[str, Any] | None = None,
) -> None:
    """The episodes of every condition of ``cfg`` into ``run_dir/<condition>/`` (resumable), no pages.

    :func:`evaluate` is this followed by :func:`summarize`; an evaluation built in steps (one model
    per step) calls this per step and :func:`summarize` once.
    """
    run_dir = Path(run_dir)
    make_run_folder(run_dir)
    rcfg = RolloutConfig(
        episodes=cfg.episodes,
        samples_per_row=cfg.samples,
        concurrency=cfg.concurrency,
        seed=cfg.seed,
        progress=cfg.progress,
    )
    for cond in cfg.conditions:
        run_rollouts(make_env_factory(cond), make_policy(), run_dir / cond, rcfg, run_meta=run_meta)


def summarize(
    run_dir: str | Path,
    make_env: Callable[[], Any],
    cfg: EvalConfig = EvalConfig(),
    *,
    data: str | None = None,
    run_meta: dict[str, Any] | None = None,
    console=None,
    eval_s: float | None = None,
    training_runs: dict[str, str | Path] | None = None,
) -> dict[str, Any]:
    """Metrics, checks, report and viewer from the traces already in ``run_dir`` (no episode runs).

    Args:
        run_dir: The evaluation folder (one subfolder per condition).
        make_env: A factory of the evaluated environment (train labels for the majority baseline,
            the data source for the audit).
        cfg: The evaluation's settings (conditions for the order, seed, ceiling, audit).
        data: The data file's name, for the report (default: the source's path).
        run_meta: As for :func:`evaluate`.
        console: A rich console (default: a new one).
        eval_s: Wall time of the episodes, for the record.
        training_runs: Arm name -> its training run folder: the report shows the learning
            curves (``STAGE/curves.png``) each stage drew there.

    Returns:
        The contents of metrics.json.
    """
    from astroreason.eval.report import write_report
    from astroreason.eval.viewer import write_viewer

    console = console or _console()
    run_dir = Path(run_dir)
    by_cond = load_condition_records(run_dir, report_conditions(run_dir, cfg.conditions))
    if not by_cond:
        raise ConfigError(f"{run_dir}: no condition folder with traces to summarize")
    first_env = make_env()
    train = _train_labels(first_env)
    findings, source_path = _audit_findings(first_env) if cfg.audit else (None, None)
    codec = getattr(first_env.unwrapped, "codec", None)  # galaxies in the tokens observation
    first_env.close()
    data = data or source_path
    metrics = compute_metrics(by_cond, train_labels=train, n_boot=cfg.n_boot, seed=cfg.seed)
    metrics["solved_only_with_tools"] = solved_only_with_tools(by_cond)
    checks = run_checks(
        metrics,
        by_cond,
        audit_findings=findings,
        data=data,
        human_ceiling=cfg.human_ceiling,
    )
    any_rec = next(iter(next(iter(by_cond.values()))), {})
    metrics.update(
        {
            "skeptic": [c.to_dict() for c in checks],
            "config": asdict(cfg),
            "setup": {
                "policy": any_rec.get("policy"),
                "data": data,
                "split": any_rec.get("split"),
                "env": any_rec.get("env"),
                "observation": "tokens" if codec is not None else "pixels",
                "codec": codec.name if codec is not None else None,
                **{k: v for k, v in (run_meta or {}).items() if k != "data"},
                "model": _common_model(metrics["conditions"], run_meta),
            },
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "eval_s": None if eval_s is None else round(eval_s, 2),
            "training_runs": {k: str(v) for k, v in (training_runs or {}).items()},
        }
    )
    write_metrics(run_dir, metrics)
    write_viewer(run_dir)
    write_report(run_dir, metrics)
    print_headline(metrics, console)
    print_checks(checks, console)
    console.print(f"report: {run_dir / 'report.html'}")
    console.print(f"traces: {run_dir / 'traces.html'}")
    return metrics


def _console():
    from rich.console import Console

    c = Console()
    return c if c.is_terminal else Console(width=150)


def _common_model(conds: dict[str, Any], run_meta: dict[str, Any] | None) -> str | None:
    models = {m.get("model") for m in conds.values()} - {None}
    if len(models) > 1:
        return "per condition (see the table)"
    return next(iter(models), (run_meta or {}).get("model"))


def write_metrics(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """Write metrics.json (NaN becomes null, so the file is strict JSON)."""
    path = Path(run_dir) / METRICS_FILE
    path.write_text(json.dumps(json_ready(metrics), indent=1) + "\n")
    return path


def json_ready(o: Any) -> Any:
    """``o`` as strict JSON values: NaN and infinities as None, numpy scalars as Python ones."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): json_ready(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_ready(v) for v in o]
    if isinstance(o, np.generic):
        return json_ready(o.item())
    if isinstance(o, Check):
        return json_ready(o.to_dict())
    return o


def print_headline(metrics: dict[str, Any], console=None) -> None:
    """Print the headline table and the paired tests (rich)."""
    from rich.table import Table

    console = console or _console()
    setup = metrics.get("setup", {})
    title = f"AstroReason eval: {setup.get('policy', '?')} on {setup.get('data', '?')}"
    table = Table(title=f"{title} ({setup.get('split', '?')} split)")
    for col in HEADLINE_COLUMNS:
        table.add_column(col, justify="left" if col == "condition" else "right")
    for row in headline_rows(metrics):
        table.add_row(*row)
    console.print(table)
    samples = sample_rows(metrics)
    if samples:
        t1 = Table(title="k samples per item: avg@k and unbiased pass@k")
        for col in samples[0]:
            t1.add_column(col, justify="left" if col == "condition" else "right")
        for row in samples[1]:
            t1.add_row(*row)
        console.print(t1)
    if metrics["comparisons"]:
        each = "; first sample of each item" if samples else ""
        t2 = Table(title=f"paired comparisons (same episodes{each}; exact McNemar)")
        for col in ("a vs b", "pairs", "a - b [95% CI]", "only a right", "only b right", "p"):
            t2.add_column(col, justify="right")
        for c in metrics["comparisons"]:
            lo, hi = c["difference_ci"]
            t2.add_row(
                f"{c['a']} vs {c['b']}",
                str(c["n_pairs"]),
                f"{fmt_pp(c['difference'])} [{fmt_pp(lo)}, {fmt_pp(hi)}]",
                str(c["a_only"]),
                str(c["b_only"]),
                f"{c['p_value']:.3g}",
            )
        console.print(t2)
    solved = metrics.get("solved_only_with_tools")
    if solved:
        console.print(
            f"solved only with tools: {solved['solved_only_with_tools']} of {solved['items']} "
            f"test items right in {solved['method']} and wrong in every control "
            f"({', '.join(solved['controls'])}); {solved['missed_only_with_tools']} the reverse"
        )
