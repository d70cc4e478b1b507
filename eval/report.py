"""The evaluation report: one self-contained HTML page per run, or one page over several runs.

:func:`write_report` writes ``RUN_DIR/report.html``; :func:`write_combined_report` writes one page
with a section per run (e.g. galaxies and spectra of one demo). Figures are matplotlib PNGs embedded
as base64, the CSS is inlined from ``templates/report.css`` and nothing is fetched from the network,
so a page can be mailed or archived alone. Links to example traces point into each run's
``traces.html`` (``traces.html#ep=<id>``, relative to the page). Both pages are the Jinja2 template
``templates/report.html`` (autoescaped, so every string from data or a model is escaped); the body of
one run is the macro ``report_body`` in ``templates/report_section.html``.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from astroreason.errors import ConfigError, DataError
from astroreason.eval.format import HEADLINE_COLUMNS, fmt_pct, fmt_pp, headline_rows, sample_rows
from astroreason.eval.metrics import METRICS_FILE, oracle_conditions
from astroreason.eval.templating import render
from astroreason.eval.viewer.render import VIEWER_FILE

REPORT_FILE = "report.html"
TITLE = "AstroReason evaluation report"


def _png(fig) -> str:
    """The figure as base64 PNG data (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def accuracy_figure(metrics: dict[str, Any]) -> str:
    """Accuracy per condition with 95% intervals and the majority and random baselines (base64 PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = metrics["conditions"]
    names = list(conds)
    acc = np.array([_nan(conds[c]["accuracy"]) for c in names])
    lo = np.array([_nan(conds[c]["accuracy_ci"][0]) for c in names])
    hi = np.array([_nan(conds[c]["accuracy_ci"][1]) for c in names])
    fig, ax = plt.subplots(figsize=(1.6 + 1.25 * len(names), 3.6))
    x = np.arange(len(names))
    err = np.nan_to_num(np.vstack([acc - lo, hi - acc]), nan=0.0).clip(min=0)
    # lists, not an array: matplotlib tests its first row with math.isfinite, which NumPy deprecates
    ax.bar(x, np.nan_to_num(acc), yerr=err.tolist(), capsize=5, color="#4c78a8", width=0.6)
    first = next(iter(conds.values()), {})
    if first.get("majority_baseline") is not None and not math.isnan(first["majority_baseline"]):
        ax.axhline(first["majority_baseline"], color="#e45756", ls="--", lw=1.2, label="majority")
    if first.get("random_baseline") is not None and not math.isnan(first["random_baseline"]):
        ax.axhline(first["random_baseline"], color="#888", ls=":", lw=1.2, label="random (1/K)")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def wrap_label(name: str, width: int = 14) -> str:
    """A class name on lines of about ``width`` characters (two for Galaxy10's), never cut.

    Breaks at spaces only (not at hyphens, nor inside a word), so joining the lines with spaces
    gives the name back.
    """
    width = max(width, math.ceil(len(name) / 2))
    return "\n".join(textwrap.wrap(name, width, break_long_words=False, break_on_hyphens=False))


def confusion_plot(cond: str, m: dict[str, Any]):
    """The row-normalised confusion matrix of one condition as a matplotlib Figure (None if empty).

    Counts sit in the cells, the last column is "no answer"; class names are whole, wrapped by
    :func:`wrap_label`, and the figure grows with their length.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(m["confusion"], dtype=np.float64)
    if cm.size == 0:
        return None
    names = [wrap_label(str(n)) for n in m["class_names"]]
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(names)
    chars = max((len(line) for n in names for line in n.split("\n")), default=4)
    label_in = 0.06 * chars  # room for the longest label line at fontsize 7
    fig, ax = plt.subplots(
        figsize=(1.2 + label_in + 0.5 * (k + 1), 1.0 + label_in + 0.45 * k), layout="constrained"
    )
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                color = "white" if norm[i, j] > 0.6 else "black"
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(k + 1), [*names, "none"], rotation=45, ha="right", fontsize=7)
    for t in ax.get_xticklabels():
        t.set_rotation_mode("anchor")
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(cond, fontsize=10)
    return fig


def confusion_figure(cond: str, m: dict[str, Any]) -> str:
    """:func:`confusion_plot` as base64 PNG; empty (``""``) when the matrix is."""
    fig = confusion_plot(cond, m)
    return "" if fig is None else _png(fig)


def tools_figure(metrics: dict[str, Any]) -> str:
    """Histogram of tool calls per episode, one bar group per condition (base64 PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = metrics["conditions"]
    counts = sorted({int(k) for m in conds.values() for k in m["tool_calls_hist"]} or {0})
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    width = 0.8 / max(1, len(conds))
    for i, (c, m) in enumerate(conds.items()):
        n = max(1, m["n"])
        share = [m["tool_calls_hist"].get(str(k), 0) / n for k in counts]
        ax.bar(np.arange(len(counts)) + i * width - 0.4 + width / 2, share, width, label=c)
    ax.set_xticks(range(len(counts)), [str(k) for k in counts])
    ax.set_xlabel("tool calls in the episode")
    ax.set_ylabel("share of episodes")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _example(ep_id: str | None, traces: str = VIEWER_FILE) -> dict[str, str] | None:
    """Link target of one example trace in the viewer at ``traces``, None when there is none."""
    if not ep_id:
        return None
    return {"id": ep_id, "href": traces + "#ep=" + quote(ep_id, safe="")}


def report_context(
    metrics: dict[str, Any],
    traces: str = VIEWER_FILE,
    links: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """What ``report_body`` in ``templates/report_section.html`` shows of one run.

    Args:
        metrics: The run's metrics.json.
        traces: Href of the run's ``traces.html`` from the page (example links point into it).
        links: (label, href) pairs in the header line (default: ``all traces`` -> ``traces``).
    """
    setup = metrics.get("setup", {})
    conds = metrics["conditions"]
    checks = metrics.get("skeptic", [])
    comparisons = []
    for c in metrics.get("comparisons") or []:
        lo, hi = c["difference_ci"]
        comparisons.append(
            [
                f"{c['a']} vs {c['b']}",
                str(c["n_pairs"]),
                f"{fmt_pct(c['accuracy_a'])} vs {fmt_pct(c['accuracy_b'])}",
                f"{fmt_pp(c['difference'])} [{fmt_pp(lo)}, {fmt_pp(hi)}]",
                str(c["a_only"]),
                str(c["b_only"]),
                f"{_nan(c['p_value']):.3g}",
            ]
        )
    per_class = [
        {
            "condition": c,
            "macro_f1": f"{_nan(m['macro_f1']):.3f}",
            "rows": [
                [name, str(m["support"][i]), fmt_pct(m["precision"][i]), fmt_pct(m["recall"][i])]
                + [f"{m['f1'][i]:.3f}"]
                for i, name in enumerate(m["class_names"])
            ],
        }
        for c, m in conds.items()
    ]
    tool_rows = [
        [
            c,
            f"{_nan(m['tool_calls_mean']):.2f}",
            fmt_pct(m["crop_on_target_rate"]),
            f"{_nan(m['turns_mean']):.2f}",
            fmt_pct(m["invalid_action_rate"]),
            fmt_pct(m["over_turn_rate"]),
            fmt_pct(m["no_answer_rate"]),
            f"{_nan(m['prompt_tokens_mean']):.0f}",
            f"{_nan(m['completion_tokens_mean']):.0f}",
            f"{_nan(m['wall_s_mean']):.2f}",
        ]
        for c, m in conds.items()
    ]
    names = next(iter(conds.values()))["class_names"] if conds else []
    examples = [
        {
            "name": name,
            "cells": [
                {
                    "right": _example(m["examples"].get(name, {}).get("right"), traces),
                    "wrong": _example(m["examples"].get(name, {}).get("wrong"), traces),
                }
                for m in conds.values()
            ],
        }
        for name in names
    ]
    return {
        "setup": [
            (k, v)
            for k, v in (
                ("policy", setup.get("policy")),
                ("model", setup.get("model")),
                ("data", setup.get("data")),
                ("split", setup.get("split")),
                ("observation", _observation(setup)),
                ("created", metrics.get("created")),
            )
            if v is not None
        ],
        "links": list(links) if links is not None else [("all traces", traces)],
        "checks": checks,
        "n_failed": sum(c["status"] == "fail" for c in checks),
        "oracle": oracle_conditions(metrics),
        "headline_header": list(HEADLINE_COLUMNS),
        "headline_rows": headline_rows(metrics),
        "accuracy_png": accuracy_figure(metrics),
        "samples": sample_rows(metrics),
        "comparisons": comparisons,
        "solved": metrics.get("solved_only_with_tools") or None,
        "curves": training_curves(metrics.get("training_runs") or {}),
        "confusion_pngs": [confusion_figure(c, m) for c, m in conds.items() if m["n"]],
        "per_class": per_class,
        "tools_png": tools_figure(metrics),
        "tool_rows": tool_rows,
        "conditions": list(conds),
        "examples": examples,
    }


def render_report(metrics: dict[str, Any]) -> str:
    """The report of one run as an HTML string (see the module docstring)."""
    return render("report.html", title=TITLE, combined=False, run=report_context(metrics))


def training_curves(runs: dict[str, str]) -> list[dict[str, str]]:
    """The learning-curve pictures each training stage drew (``RUN/STAGE/curves.png``).

    One ``{"arm", "stage", "path", "data"}`` per picture found, ``data`` the PNG in base64.
    """
    out = []
    for arm, folder in runs.items():
        for stage in ("sft", "grpo"):
            png = Path(folder) / stage / "curves.png"
            if png.is_file():
                data = base64.b64encode(png.read_bytes()).decode("ascii")
                out.append({"arm": arm, "stage": stage, "path": str(png), "data": data})
    return out


def _observation(setup: dict[str, Any]) -> str | None:
    """``tokens (codec NAME)`` for runs that showed codec ids; None (not shown) for pixels."""
    if setup.get("observation") != "tokens":
        return None
    return f"tokens (codec {setup.get('codec')})"


def write_report(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``RUN_DIR/report.html`` and return its path."""
    path = Path(run_dir) / REPORT_FILE
    path.write_text(render_report(metrics), encoding="utf-8")
    return path


def _href(target: Path, page_dir: Path) -> str:
    """URL of ``target`` relative to a page in ``page_dir`` (a file URI across drives)."""
    try:
        rel = os.path.relpath(target.resolve(), page_dir.resolve())
    except ValueError:
        return target.resolve().as_uri()
    return quote(Path(rel).as_posix())


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {METRICS_FILE}; evaluate or summarize that run first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, f"not valid JSON ({e})") from None


def _summary(checks: list[dict[str, Any]]) -> tuple[str, str]:
    """Worst status of a run's skeptic checks and one line counting them."""
    if not checks:
        return "warn", "no skeptic checks in metrics.json"
    fails = sum(c["status"] == "fail" for c in checks)
    warns = sum(c["status"] == "warn" for c in checks)
    line = f"{fails} of {len(checks)} skeptic checks failed"
    if warns:
        line += f", {warns} warned"
    return ("fail" if fails else "warn" if warns else "ok"), line


def render_combined_report(
    sections: Sequence[tuple[str, dict[str, Any], str]], *, title: str = TITLE
) -> str:
    """One page over several runs, as an HTML string.

    Args:
        sections: ``(title, metrics, folder)`` per run, ``folder`` the run folder's URL relative to
            the page (``""`` for the page's own folder); links go to its report.html and traces.html.
        title: The page's title.
    """
    out = []
    for i, (name, metrics, folder) in enumerate(sections, 1):
        base = folder.rstrip("/") + "/" if folder else ""
        traces = base + VIEWER_FILE
        links = [("report", base + REPORT_FILE), ("all traces", traces)]
        run = report_context(metrics, traces, links)
        status, summary = _summary(run["checks"])
        out.append(
            {"title": name, "anchor": f"s{i}", "status": status, "summary": summary, "run": run}
        )
    n_failed = sum(s["run"]["n_failed"] for s in out)
    return render("report.html", title=title, combined=True, sections=out, n_failed=n_failed)


def write_combined_report(
    path: str | Path,
    sections: Sequence[tuple[str, str | Path]],
    *,
    title: str = TITLE,
) -> Path:
    """Write one self-contained page over several evaluation runs and return its path.

    Each section is a whole run's report (``RUN_DIR/metrics.json``) under its title, linking to the
    run's own report.html and traces.html relative to ``path``. The contents at the top counts each
    section's failed skeptic checks.

    Args:
        path: The page to write (e.g. ``runs/demo/report.html``); its folder is created.
        sections: ``(title, run_dir)`` per run, in page order.
        title: The page's title.

    Raises:
        ConfigError: No sections, a run folder without metrics.json, or ``path`` is a section's own
            report.html.
    """
    path = Path(path)
    if not sections:
        raise ConfigError(f"{path}: no sections for the combined report")
    page_dir = path.parent
    rendered = []
    for name, run_dir in sections:
        run_dir = Path(run_dir)
        if (run_dir / REPORT_FILE).resolve() == path.resolve():
            raise ConfigError(f"{path}: is the report of section {name!r}; write elsewhere")
        folder = _href(run_dir, page_dir)
        rendered.append((name, _read_metrics(run_dir), "" if folder == "." else folder))
    page_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(render_combined_report(rendered, title=title), encoding="utf-8")
    return path
