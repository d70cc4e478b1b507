"""Sweeps: one training run per point of a grid of config values, resumable, under one budget.

``astroreason sweep --config NAME --grid key=v1,v2 [--grid ...]`` trains every point of the grid's
Cartesian product in its own run folder (``OUT/key1=v1,key2=v2``, its ``output_dir``), one after
the other, in this process. A point whose stages finished (its experiment log says so) is skipped on
a rerun; a point that was interrupted resumes from its last checkpoint. ``max_wall_s`` bounds the
whole sweep: each point gets what is left as its own wall-time budget and no point starts once it is
spent (the table says which did not run). At the end ``OUT/sweep.json``, ``OUT/sweep.md`` (a table
of the last validation of each point: accuracy, tool calls, on-target, invalid and over-turn rates)
and ``OUT/sweep.png`` (val accuracy per point) are written.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astroreason.errors import ConfigError
from astroreason.training.bootstrap import ensure_tiny_assets
from astroreason.training.config import load_config
from astroreason.training.curves import VAL_CURVE, curve_rows
from astroreason.training.experiment_log import ExperimentLog

STAGES = ("sft", "grpo")
METRICS = ("accuracy", "tool_calls", "on_target_rate", "invalid_rate", "over_turn_rate")


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["lr=1e-4,1e-3", "seed=0,1"]`` -> ``{"lr": ["1e-4", "1e-3"], "seed": ["0", "1"]}``."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not vals:
            raise ConfigError(f"--grid {spec!r}: expected key=v1,v2,...")
        if key.strip() in grid:
            raise ConfigError(f"--grid: {key.strip()!r} given twice")
        grid[key.strip()] = vals
    if not grid:
        raise ConfigError("--grid: give at least one key=v1,v2,...")
    return grid


def grid_points(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, in the order given."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


_NAME_MAX = 120


def point_name(point: dict[str, str]) -> str:
    """The run folder's name of a point: ``key1=v1,key2=v2``.

    Characters other than letters, digits and ``._=,+-`` become ``_`` (no path separators, control
    characters or spaces in folder names) and a name is cut to 120 characters; a name changed
    either way ends with ``~`` and a short hash of the whole point, so two points never share a
    folder.
    """
    raw = ",".join(f"{k}={v}" for k, v in point.items())
    name = re.sub(r"[^A-Za-z0-9._=,+-]", "_", raw)
    if name != raw or len(name) > _NAME_MAX:
        name = f"{name[: _NAME_MAX - 9]}~{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return name


@dataclass
class PointResult:
    """One point of a sweep."""

    point: dict[str, str]
    folder: str
    status: str = "not run"
    val: dict[str, Any] = field(default_factory=dict)


def _finished(folder: Path, stage: str) -> bool:
    return any(
        e.get("stage") == stage and e.get("status") == "finished"
        for e in ExperimentLog(folder).entries()
    )


def run_sweep(
    config: str,
    grid_specs: Sequence[str],
    out: str | Path,
    *,
    stages: Sequence[str] = STAGES,
    overrides: Sequence[str] = (),
    max_wall_s: float | None = None,
    allow_leaky: bool = False,
) -> list[PointResult]:
    """Train every grid point (see the module docstring); returns the points' results."""
    from astroreason.training.grpo import run_grpo
    from astroreason.training.sft import run_sft

    bad = [s for s in stages if s not in STAGES]
    if bad or not stages:
        raise ConfigError(f"--stage: {bad or stages!r}; choose from {', '.join(STAGES)}")
    grid = parse_grid(grid_specs)
    points = grid_points(grid)
    out = Path(out)
    extra = list(overrides) + (["allow_leaky=true"] if allow_leaky else [])
    for p in points:  # every point's config must load before anything trains
        load_config(config, [*extra, *(f"{k}={v}" for k, v in p.items())])
    t0 = time.perf_counter()
    results = []
    for p in points:
        folder = out / point_name(p)
        res = PointResult(p, str(folder))
        results.append(res)
        left = None if max_wall_s is None else max_wall_s - (time.perf_counter() - t0)
        todo = [s for s in stages if not _finished(folder, s)]
        if not todo:
            res.status = "finished (earlier run)"
        elif left is not None and left <= 0:
            res.status = "not run (sweep budget spent)"
        else:
            sets = [*extra, *(f"{k}={v}" for k, v in p.items()), f"output_dir={folder}"]
            sets += ["resume=true"] + ([] if left is None else [f"max_wall_s={left}"])
            cfg = load_config(config, sets)
            ensure_tiny_assets(cfg)
            command = " ".join(
                ["astroreason sweep --config", config, *(f"--set {s}" for s in sets)]
            )
            print(f"[sweep] {point_name(p)}: {', '.join(todo)}", file=sys.stderr)
            for stage in todo:
                summary = (run_sft if stage == "sft" else run_grpo)(cfg, command=command)
                res.status = "finished"
                if summary.get("stopped_by"):
                    res.status = f"stopped by budget ({stage})"
                    break
        res.val = last_validation(folder, stages)
    write_outputs(out, grid, results)
    return results


def last_validation(folder: Path, stages: Sequence[str]) -> dict[str, Any]:
    """The last ``val_curve.jsonl`` row of the last stage that has one."""
    for stage in reversed(list(stages)):
        rows = curve_rows(folder / stage) if (folder / stage / VAL_CURVE).is_file() else []
        if rows:
            return {"stage": stage, **rows[-1]}
    return {}


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else ("-" if v is None else str(v))


def write_outputs(out: Path, grid: dict[str, list[str]], results: list[PointResult]) -> None:
    """``sweep.json``, ``sweep.md`` and ``sweep.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    doc = {"grid": grid, "points": [r.__dict__ for r in results]}
    (out / "sweep.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    keys = list(grid)
    head = [*keys, "status", "stage", "step", *METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        cells = [r.point[k] for k in keys] + [r.status, r.val.get("stage"), r.val.get("step")]
        cells += [r.val.get(m) for m in METRICS]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    table = "\n".join(lines)
    (out / "sweep.md").write_text(f"# Sweep\n\n{table}\n\n![val accuracy per point](sweep.png)\n")
    plot_sweep(results, out / "sweep.png")


def plot_sweep(results: list[PointResult], path: Path) -> Path:
    """A bar chart of the last val accuracy per point (points without validation left empty)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [point_name(r.point) for r in results]
    acc = [r.val.get("accuracy") for r in results]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 2), 3.2))
    ax.bar(range(len(names)), [a if a is not None else 0.0 for a in acc], color="#4477aa")
    for i, a in enumerate(acc):
        ax.text(i, (a or 0) + 0.01, "n/a" if a is None else f"{a:.2f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("val accuracy (last validation)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
