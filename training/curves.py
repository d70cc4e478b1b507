"""Learning-curve pictures of a training stage: ``STAGE_DIR/curves.png`` from the monitor's files.

:class:`~astroreason.training.monitor.TrainingMonitor` leaves two files in a stage folder
(``OUTPUT_DIR/sft`` or ``OUTPUT_DIR/grpo``):

* ``log_history.json``: the trainer's log history (``loss``, GRPO's ``reward``, the ``episode/*``
  metrics the env adapter logs for the training rollouts), one dict per log, each with ``step``;
* ``val_curve.jsonl``: one line per validation on the val split (step 0 first when ``val_every`` > 0):
  ``step``, ``accuracy``, ``tool_calls``, ``on_target_rate``, ``invalid_rate``, ``over_turn_rate``.

:func:`plot_curves` draws a small panel per quantity that has data (loss; reward; accuracy; tool
calls per episode; on-target rate; invalid and over-turn rates), training series as lines (with a
marker at each point when short, so one point shows) and validation as dots, against the optimizer
step (:func:`curves_figure` returns the figure). It uses the Agg canvas directly (no pyplot, no
global backend switch), so it runs headless and inside training processes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

LOG_HISTORY = "log_history.json"
VAL_CURVE = "val_curve.jsonl"
CURVES_PNG = "curves.png"

# (panel title, y label, [(source, key, legend label, colour)]); source "train" is the log history
# (training rollouts), "val" the validation curve
PANELS: list[tuple[str, str, list[tuple[str, str, str, str]]]] = [
    ("loss", "loss", [("train", "loss", "train", "C0")]),
    ("reward", "mean reward", [("train", "reward", "train", "C0")]),
    (
        "accuracy",
        "accuracy",
        [("train", "episode/accuracy", "train rollouts", "C0"), ("val", "accuracy", "val", "C1")],
    ),
    (
        "tool calls per episode",
        "calls",
        [("train", "episode/tool_calls", "train", "C0"), ("val", "tool_calls", "val", "C1")],
    ),
    (
        "on-target rate",
        "rate",
        [
            ("train", "episode/on_target_rate", "train", "C0"),
            ("val", "on_target_rate", "val", "C1"),
        ],
    ),
    (
        "invalid and over-turn rates",
        "rate",
        [
            ("train", "episode/invalid_rate", "invalid (train)", "C3"),
            ("train", "episode/over_turn_rate", "over-turn (train)", "C4"),
            ("val", "invalid_rate", "invalid (val)", "C3"),
            ("val", "over_turn_rate", "over-turn (val)", "C4"),
        ],
    ),
]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def curve_rows(stage_dir: str | Path) -> list[dict[str, Any]]:
    """The validation curve of a stage: the rows of ``val_curve.jsonl`` in step order ([] if none).

    A torn or unreadable line (a run killed while writing) is skipped.
    """
    path = Path(stage_dir) / VAL_CURVE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and _finite(row.get("step")):
            rows.append(row)
    return sorted(rows, key=lambda r: r["step"])


def log_rows(stage_dir: str | Path) -> list[dict[str, Any]]:
    """The trainer's log history of a stage (``log_history.json``), entries with a step ([] if none)."""
    path = Path(stage_dir) / LOG_HISTORY
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    if not isinstance(rows, list):
        return []
    return [r for r in rows if isinstance(r, dict) and _finite(r.get("step"))]


def series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` over ``rows``, finite values only."""
    pts = [(float(r["step"]), float(r[key])) for r in rows if _finite(r.get(key))]
    return [s for s, _ in pts], [v for _, v in pts]


def _panels(stage_dir: Path) -> list[tuple[str, str, list[tuple[str, str, str, list, list]]]]:
    sources = {"train": log_rows(stage_dir), "val": curve_rows(stage_dir)}
    panels = []
    for title, ylabel, specs in PANELS:
        lines = []
        for source, key, label, colour in specs:
            xs, ys = series(sources[source], key)
            if xs:
                lines.append((source, label, colour, xs, ys))
        if lines:
            panels.append((title, ylabel, lines))
    return panels


def panel_titles(stage_dir: str | Path) -> list[str]:
    """Titles of the panels :func:`plot_curves` draws for a stage (those with data), in order."""
    return [title for title, _, _ in _panels(Path(stage_dir))]


def curves_figure(stage_dir: str | Path):
    """The stage's learning curves as a matplotlib Figure (Agg canvas), None when nothing to draw.

    Series of under 30 points carry a marker at every point, so a one-point series (one log, one
    validation) is a visible dot, not an empty panel.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    stage_dir = Path(stage_dir)
    panels = _panels(stage_dir)
    if not panels:
        return None

    stage = stage_dir.name or "stage"
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.7 * nrows), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (title, ylabel, lines) in zip(axes, panels, strict=False):
        for source, label, colour, xs, ys in lines:
            if source == "val":
                ax.plot(xs, ys, "o--", color=colour, ms=4, lw=1, label=label)
            else:
                dots = "o" if len(xs) == 1 else "." if len(xs) < 30 else None
                ax.plot(xs, ys, "-", color=colour, lw=1.2, marker=dots, ms=5, label=label)
        ax.set_title(f"{stage}: {title}", fontsize=9)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=6, loc="best")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(f"{stage} learning curves: {stage_dir.resolve().parent.name}", fontsize=9)
    return fig


def plot_curves(stage_dir: str | Path, out: str | Path | None = None) -> Path | None:
    """Draw the stage's learning curves (:func:`curves_figure`) into ``out`` (``STAGE_DIR/curves.png``).

    Args:
        stage_dir: A stage folder holding ``log_history.json`` and/or ``val_curve.jsonl``; its name
            (``sft``, ``grpo``) titles the panels.
        out: Where the PNG goes.

    Returns:
        The PNG's path, or None when neither file has a point to draw (nothing is written then).
    """
    stage_dir = Path(stage_dir)
    fig = curves_figure(stage_dir)
    if fig is None:
        return None
    path = Path(out) if out is not None else stage_dir / CURVES_PNG
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
