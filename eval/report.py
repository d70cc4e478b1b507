"""``RUN_DIR/report.html``: the evaluation report, one self-contained file.

Figures are matplotlib PNGs embedded as base64, the CSS is inline and nothing is fetched from the
network, so the file can be mailed or archived alone. Links to example traces point into
``traces.html`` beside it (``traces.html#ep=<id>``). Every string that comes from data or a model is
escaped.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from astroreason.eval.metrics import HEADLINE_COLUMNS, fmt_pct, headline_rows

REPORT_FILE = "report.html"

CSS = """
:root { --fg:#1d2430; --muted:#5b6574; --line:#d9dee6; --bg:#f6f8fb; --ok:#1f7a3a; --warn:#9a6a00;
        --fail:#b3261e; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0; background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.sub { color: var(--muted); margin-bottom: 18px; }
table { border-collapse: collapse; background: #fff; margin: 6px 0 12px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 5px 9px; text-align: right; }
th { background: #eef1f6; font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
.checks { list-style: none; padding: 0; margin: 0; }
.checks li { background: #fff; border-left: 6px solid var(--line); padding: 8px 12px; margin: 6px 0; }
.checks li.ok { border-color: var(--ok); }
.checks li.warn { border-color: var(--warn); background: #fff8e6; }
.checks li.fail { border-color: var(--fail); background: #fdecea; }
.badge { display: inline-block; min-width: 46px; text-align: center; font-weight: 700; color: #fff;
         border-radius: 4px; padding: 0 6px; margin-right: 8px; font-size: 12px; }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); }
.badge.fail { background: var(--fail); }
.banner { background: var(--fail); color: #fff; padding: 10px 14px; font-weight: 700; border-radius: 4px; }
img.cm { width: 400px; }
img.fig { max-width: 100%; background: #fff; border: 1px solid var(--line); }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
a { color: #1a5fb4; }
.right { color: var(--ok); } .wrong { color: var(--fail); }
.muted { color: var(--muted); }
details { margin: 6px 0; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _png(fig, cls: str = "fig") -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="{cls}" alt="figure" src="data:image/png;base64,{data}">'


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def accuracy_figure(metrics: dict[str, Any]) -> str:
    """Accuracy per condition with 95% intervals and the majority and random baselines."""
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
    """Row-normalised confusion matrix (counts in the cells); last column: no answer."""
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
    return _png(fig, "fig cm")


def tools_figure(metrics: dict[str, Any]) -> str:
    """Histogram of tool calls per episode, one bar group per condition."""
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


def _table(header: list[str], rows: list[list[str]], raw: bool = False) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _link(ep_id: str | None, label: str, cls: str) -> str:
    if not ep_id:
        return '<span class="muted">-</span>'
    href = "traces.html#ep=" + quote(ep_id, safe="")
    return f'<a class="{cls}" href="{_e(href)}" title="{_e(ep_id)}">{_e(label)}</a>'


def render_report(metrics: dict[str, Any]) -> str:
    """The report as an HTML string (see the module docstring)."""
    setup = metrics.get("setup", {})
    conds = metrics["conditions"]
    checks = metrics.get("skeptic", [])
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>AstroReason evaluation report</title>",
        f"<style>{CSS}</style></head><body><main>",
        "<h1>AstroReason evaluation report</h1>",
        "<div class='sub'>"
        + " &middot; ".join(
            f"{_e(k)}: <b>{_e(v)}</b>"
            for k, v in (
                ("policy", setup.get("policy")),
                ("model", setup.get("model")),
                ("data", setup.get("data")),
                ("split", setup.get("split")),
                ("created", metrics.get("created")),
            )
            if v is not None
        )
        + " &middot; <a href='traces.html'>all traces</a></div>",
    ]
    fails = [c for c in checks if c["status"] == "fail"]
    parts.append("<h2>Skeptic checks</h2>")
    if fails:
        parts.append(
            f"<p class='banner'>{len(fails)} check(s) FAILED: do not trust these numbers "
            "until the cause is found.</p>"
        )
    parts.append("<ul class='checks'>")
    for c in checks:
        st = _e(c["status"])
        parts.append(
            f"<li class='{st}'><span class='badge {st}'>{st.upper()}</span>"
            f"<b>{_e(c['name'])}</b>: {_e(c['sentence'])}</li>"
        )
    parts.append("</ul>")

    parts.append("<h2>Headline</h2>")
    parts.append(_table(list(HEADLINE_COLUMNS), headline_rows(metrics)))
    parts.append(
        "<p class='muted'>Intervals: seeded percentile bootstrap over episodes. Majority: share of "
        "the majority class among the training labels. Crop on target: share of episodes with a "
        "ground-truth box (spectra: key wavelength window) in which a successful zoom/crop "
        "(spectrum window) contains the box centre and covers at least half of it while being "
        "smaller than the whole field. Invalid: invalid replies per reply.</p>"
    )
    parts.append(accuracy_figure(metrics))

    if metrics.get("comparisons"):
        parts.append("<h2>Paired comparisons</h2>")
        rows = []
        for c in metrics["comparisons"]:
            lo, hi = c["difference_ci"]
            rows.append(
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
        parts.append(
            _table(
                ["a vs b", "pairs", "accuracy", "a - b [95% CI]", "only a right", "only b right"]
                + ["McNemar p"],
                rows,
            )
        )
        parts.append(
            "<p class='muted'>Same episodes in both conditions (split, row, sample); exact "
            "two-sided McNemar test on the discordant pairs.</p>"
        )

    solved = metrics.get("solved_only_with_tools")
    if solved:
        parts.append("<h2>Solved only with tools</h2>")
        parts.append(
            f"<p><b>{solved['solved_only_with_tools']}</b> of {solved['items']} test items are "
            f"right in {_e(solved['method'])} and wrong in every control "
            f"({_e(', '.join(solved['controls']))}); <b>{solved['missed_only_with_tools']}</b> "
            f"are wrong in {_e(solved['method'])} and right in every control.</p>"
        )

    curves = training_curves(metrics.get("training_runs") or {})
    if curves:
        parts.append("<h2>Training curves</h2>")
        parts.append(
            "<p class='muted'>Per arm and stage, from the trainer's logs and the validation "
            "rollouts on the val split (<code>STAGE/curves.png</code> in each run folder).</p>"
        )
        parts += curves

    parts.append("<h2>Confusion matrices</h2><div class='grid'>")
    parts += [confusion_figure(c, m) for c, m in conds.items() if m["n"]]
    parts.append("</div>")

    parts.append("<h2>Per-class precision and recall</h2>")
    for c, m in conds.items():
        rows = [
            [name, str(m["support"][i]), fmt_pct(m["precision"][i]), fmt_pct(m["recall"][i])]
            + [f"{m['f1'][i]:.3f}"]
            for i, name in enumerate(m["class_names"])
        ]
        parts.append(
            f"<details><summary>{_e(c)} (macro-F1 {_nan(m['macro_f1']):.3f})</summary>"
            + _table(["class", "support", "precision", "recall", "F1"], rows)
            + "</details>"
        )

    parts.append("<h2>Tool use</h2>")
    parts.append(tools_figure(metrics))
    rows = [
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
    parts.append(
        _table(
            ["condition", "tools/ep", "crop on target", "turns", "invalid", "over-turn"]
            + ["no answer", "prompt tok/ep", "completion tok/ep", "wall s/ep"],
            rows,
        )
    )

    parts.append("<h2>Example traces</h2>")
    names = next(iter(conds.values()))["class_names"] if conds else []
    rows = []
    for name in names:
        row = [_e(name)]
        for m in conds.values():
            ex = m["examples"].get(name, {})
            row.append(
                _link(ex.get("right"), "right", "right")
                + " &middot; "
                + _link(ex.get("wrong"), "wrong", "wrong")
            )
        rows.append(row)
    parts.append(_table(["true class", *conds], rows, raw=True))
    parts.append("</main></body></html>")
    return "\n".join(parts)


def training_curves(runs: dict[str, str]) -> list[str]:
    """The learning-curve pictures each training stage drew (``RUN/STAGE/curves.png``), inlined."""
    out = []
    for arm, folder in runs.items():
        for stage in ("sft", "grpo"):
            png = Path(folder) / stage / "curves.png"
            if png.is_file():
                data = base64.b64encode(png.read_bytes()).decode("ascii")
                out.append(
                    f"<details{' open' if stage == 'grpo' else ''}><summary>{_e(arm)}: "
                    f"{stage} ({_e(png)})</summary><img class='fig' alt='{_e(arm)} {stage} "
                    f"curves' src='data:image/png;base64,{data}'></details>"
                )
    return out


def _pp(x: Any) -> str:
    v = _nan(x)
    return "-" if math.isnan(v) else f"{100 * v:+.1f} pp"


def write_report(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``RUN_DIR/report.html`` and return its path."""
    path = Path(run_dir) / REPORT_FILE
    path.write_text(render_report(metrics), encoding="utf-8")
    return path
