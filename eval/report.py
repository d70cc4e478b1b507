"""``RUN_DIR/report.html``: the evaluation report, one self-contained file.

Figures are matplotlib PNGs embedded as base64, the CSS is inlined from ``templates/report.css`` and
nothing is fetched from the network, so the file can be mailed or archived alone. Links to example
traces point into ``traces.html`` beside it (``traces.html#ep=<id>``). The page is the Jinja2
template ``templates/report.html`` (autoescaped), so every string from data or a model is escaped.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from astroreason.eval.metrics import HEADLINE_COLUMNS, fmt_pct, headline_rows
from astroreason.eval.templating import render

REPORT_FILE = "report.html"


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
    ax.bar(x, np.nan_to_num(acc), yerr=err, capsize=5, color="#4c78a8", width=0.6)
    first = next(iter(conds.values()), {})
    if first.get("majority_baseline") is not None:
        ax.axhline(first["majority_baseline"], color="#e45756", ls="--", lw=1.2, label="majority")
    if first.get("random_baseline") is not None and not math.isnan(first["random_baseline"]):
        ax.axhline(first["random_baseline"], color="#888", ls=":", lw=1.2, label="random (1/K)")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def confusion_figure(cond: str, m: dict[str, Any]) -> str:
    """Row-normalised confusion matrix (counts in the cells; last column: no answer), base64 PNG.

    Empty (``""``) when the matrix is.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(m["confusion"], dtype=np.float64)
    names = [str(n)[:16] for n in m["class_names"]]
    if cm.size == 0:
        return ""
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(names)
    fig, ax = plt.subplots(figsize=(1.8 + 0.42 * (k + 1), 1.4 + 0.38 * k))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                color = "white" if norm[i, j] > 0.6 else "black"
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(k + 1), [*names, "none"], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(cond, fontsize=10)
    return _png(fig)


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


def _example(ep_id: str | None) -> dict[str, str] | None:
    """Link target of one example trace in ``traces.html``, None when there is none."""
    if not ep_id:
        return None
    return {"id": ep_id, "href": "traces.html#ep=" + quote(ep_id, safe="")}


def render_report(metrics: dict[str, Any]) -> str:
    """The report as an HTML string (see the module docstring)."""
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
                f"{_pp(c['difference'])} [{_pp(lo)}, {_pp(hi)}]",
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
                    "right": _example(m["examples"].get(name, {}).get("right")),
                    "wrong": _example(m["examples"].get(name, {}).get("wrong")),
                }
                for m in conds.values()
            ],
        }
        for name in names
    ]
    return render(
        "report.html",
        setup=[
            (k, v)
            for k, v in (
                ("policy", setup.get("policy")),
                ("model", setup.get("model")),
                ("data", setup.get("data")),
                ("split", setup.get("split")),
                ("created", metrics.get("created")),
            )
            if v is not None
        ],
        checks=checks,
        n_failed=sum(c["status"] == "fail" for c in checks),
        headline_header=list(HEADLINE_COLUMNS),
        headline_rows=headline_rows(metrics),
        accuracy_png=accuracy_figure(metrics),
        comparisons=comparisons,
        solved=metrics.get("solved_only_with_tools") or None,
        curves=training_curves(metrics.get("training_runs") or {}),
        confusion_pngs=[confusion_figure(c, m) for c, m in conds.items() if m["n"]],
        per_class=per_class,
        tools_png=tools_figure(metrics),
        tool_rows=tool_rows,
        conditions=list(conds),
        examples=examples,
    )


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


def _pp(x: Any) -> str:
    v = _nan(x)
    return "-" if math.isnan(v) else f"{100 * v:+.1f} pp"


def write_report(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``RUN_DIR/report.html`` and return its path."""
    path = Path(run_dir) / REPORT_FILE
    path.write_text(render_report(metrics), encoding="utf-8")
    return path
