"""Skeptic checks: the numbers that should make a reader doubt a result, computed with every eval.

Each check has a status (``ok``, ``warn`` or ``fail``) and one sentence with the numbers:

* ``human_ceiling``: a condition above the human ceiling (default 90%) is an alarm, not a win (warn);
* ``blind_baseline``: the ``blind`` run (no image) scoring significantly above the best a constant answer
  could (one-sided exact binomial test, p < ``alpha_blind``) means something other than pixels carries
  the label (fail). The null accuracy is the larger of the TRAIN majority share and the largest class
  share among the blind episodes themselves (a fixed answer cannot beat that), so a test set whose class
  mix differs a little from train does not raise a false alarm;
* ``blank_tools``: ``blank-tools`` accuracy not significantly below ``tools`` (exact McNemar on the same
  episodes, p < ``alpha_blank``, tools better) means the model does not use what it sees (warn);
* ``matched_baseline``, ``placebo_reinput``, ``placebo_random_view``: the method not significantly
  above ``no-tools-matched``, ``reinput`` or ``random-view`` on the same episodes (exact McNemar)
  means the gain is resolution or token count, not looking (warn, in capitals);
* ``tools_off``: the method not significantly above ``tools-off`` (its own checkpoint, no tools
  offered) means what it gained is in the weights, not in the looking (warn, in capitals); a win
  over a ``tools-off`` run that mostly gave no answer (a checkpoint that never learnt the no-tools
  format) is a warning too: that control cannot show what the weights know without looking;
* ``rl_gain``: ``tools@grpo`` not significantly above its own SFT start ``tools@sft`` (warn);
* ``data_audit``: high-severity findings of the leakage audit of the data file (fail).

A probe that was not run is a warning: without it the result cannot be vouched for. With several
samples per item every test uses each item's first sample (``metrics.PAIRING``), so samples of one
item never count as independent episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import binomtest

from astroreason.eval.metrics import (
    first_samples,
    fmt_pct,
    method_condition,
    paired_comparison,
)

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One skeptic check."""

    name: str
    status: Status
    sentence: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON."""
        return asdict(self)


def check_human_ceiling(metrics: dict[str, Any], ceiling: float = 0.90) -> Check:
    """Warn when any condition's accuracy is above the human ceiling."""
    conds = metrics["conditions"]
    above = {c: m["accuracy"] for c, m in conds.items() if m["n"] and m["accuracy"] > ceiling}
    if above:
        worst = max(above, key=above.get)
        return Check(
            "human_ceiling",
            "warn",
            f"{', '.join(above)} scored above the human ceiling of {fmt_pct(ceiling)} "
            f"({worst}: {fmt_pct(above[worst])} on {conds[worst]['n']} episodes); "
            "treat it as an alarm and look for a shortcut before calling it a win.",
            {"ceiling": ceiling, "above": above},
        )
    best = max(conds, key=lambda c: conds[c]["accuracy"] if conds[c]["n"] else -1, default=None)
    acc = conds[best]["accuracy"] if best else float("nan")
    return Check(
        "human_ceiling",
        "ok",
        f"No condition is above the human ceiling of {fmt_pct(ceiling)} (best: {best} at "
        f"{fmt_pct(acc)}).",
        {"ceiling": ceiling, "above": {}},
    )


def check_blind(
    records: Sequence[dict[str, Any]] | None, majority_share: float | None, alpha: float = 0.01
) -> Check:
    """Fail when the blind run beats the best constant answer significantly (exact binomial test)."""
    if not records:
        return Check(
            "blind_baseline",
            "warn",
            "No blind run: the probe for labels carried by something other than pixels was not run "
            "(add the blind condition).",
            {},
        )
    n = len(records)
    k = int(sum(bool(r["correct"]) for r in records))
    counts = np.bincount([int(r["label"]) for r in records])
    eval_share = float(counts.max() / n)
    p0 = max(eval_share, majority_share or 0.0)
    p0 = min(p0, 1.0 - 1e-12)
    p = float(binomtest(k, n, p0, alternative="greater").pvalue)
    acc = k / n
    details = {"n": n, "correct": k, "accuracy": acc, "null_accuracy": p0, "p_value": p}
    if p < alpha:
        return Check(
            "blind_baseline",
            "fail",
            f"Blind accuracy {fmt_pct(acc)} ({k}/{n}) is significantly above the {fmt_pct(p0)} a "
            f"constant answer could reach (binomial p = {p:.2g}): something other than pixels "
            "carries the label.",
            details,
        )
    return Check(
        "blind_baseline",
        "ok",
        f"Blind accuracy {fmt_pct(acc)} ({k}/{n}) is not significantly above the {fmt_pct(p0)} "
        f"baseline (binomial p = {p:.2g}).",
        details,
    )


def check_must_beat(
    name: str,
    method: str,
    other: str,
    a: Sequence[dict[str, Any]] | None,
    b: Sequence[dict[str, Any]] | None,
    ok: str,
    warn: str,
    alpha: float = 0.05,
) -> Check:
    """Warn unless ``method`` beats ``other`` on the same episodes (exact McNemar, p < ``alpha``).

    ``ok`` and ``warn`` are the sentences' openings; the numbers follow.
    """
    if not a or not b:
        missing = method if not a else other
        return Check(
            name,
            "warn",
            f"No {missing} run: {method} against {other} was not tested (run both).",
            {},
        )
    cmp = paired_comparison(a, b)
    details = {k: cmp[k] for k in ("n_pairs", "accuracy_a", "accuracy_b", "a_only", "b_only")}
    details.update(p_value=cmp["p_value"], a=method, b=other)
    nums = (
        f"{method} {fmt_pct(cmp['accuracy_a'])} vs {other} {fmt_pct(cmp['accuracy_b'])} on "
        f"{cmp['n_pairs']} paired episodes, discordant {cmp['a_only']}/{cmp['b_only']}, "
        f"McNemar p = {cmp['p_value']:.2g}"
    )
    if cmp["n_pairs"] and cmp["accuracy_a"] > cmp["accuracy_b"] and cmp["p_value"] < alpha:
        return Check(name, "ok", f"{ok} ({nums}).", details)
    return Check(name, "warn", f"{warn} ({nums}).", details)


def check_blank_tools(
    tools: Sequence[dict[str, Any]] | None,
    blank: Sequence[dict[str, Any]] | None,
    alpha: float = 0.05,
    method: str = "tools",
) -> Check:
    """Warn when blanking the tool outputs does not significantly lower accuracy (exact McNemar)."""
    return check_must_beat(
        "blank_tools",
        method,
        "blank-tools",
        tools,
        blank,
        "Blanking the tool views costs accuracy",
        "Blank-tools accuracy is not significantly below tools: the model does not use what it sees",
        alpha,
    )


CONTROLS = (
    (
        "matched_baseline",
        "no-tools-matched",
        "Tools beat the pixel-matched overview",
        "TOOLS DO NOT BEAT THE PIXEL-MATCHED OVERVIEW: the gain is resolution, not looking",
    ),
    (
        "placebo_reinput",
        "reinput",
        "Tools beat the re-input placebo (the same overview fed again)",
        "TOOLS DO NOT BEAT THE RE-INPUT PLACEBO: the gain is visual tokens, not looking",
    ),
    (
        "placebo_random_view",
        "random-view",
        "Tools beat the random-view placebo (a view of a random place at the same scale)",
        "TOOLS DO NOT BEAT THE RANDOM-VIEW PLACEBO: where the model looks does not matter",
    ),
    (
        "tools_off",
        "tools-off",
        "Tools beat the same checkpoint with its tools switched off",
        "TOOLS DO NOT BEAT THEIR OWN CHECKPOINT WITH THE TOOLS OFF: the gain is in the weights",
    ),
)
"""The controls a tool gain must hold against: (check name, condition, ok opening, warn opening)."""


def check_audit(findings: Sequence[dict[str, Any]] | None, data: str | None = None) -> Check:
    """Fail on high-severity findings of the data audit (``Finding.to_dict()`` dicts)."""
    if findings is None:
        return Check(
            "data_audit",
            "warn",
            "The data file was not audited for label leaks (run `astroreason data audit`).",
            {},
        )
    high = [f for f in findings if f["severity"] == "high"]
    where = f" of {data}" if data else ""
    if high:
        first = high[0]["sentence"]
        return Check(
            "data_audit",
            "fail",
            f"The leakage audit{where} has {len(high)} high-severity finding(s), e.g. {first}",
            {"high": high},
        )
    return Check(
        "data_audit",
        "ok",
        f"The leakage audit{where} has no high-severity finding ({len(findings)} findings in all).",
        {"high": []},
    )


def run_checks(
    metrics: dict[str, Any],
    by_condition: dict[str, Sequence[dict[str, Any]]],
    *,
    audit_findings: Sequence[dict[str, Any]] | None = None,
    data: str | None = None,
    human_ceiling: float = 0.90,
    alpha_blind: float = 0.01,
    alpha_blank: float = 0.05,
) -> list[Check]:
    """All checks, in report order.

    The method is ``tools@grpo`` when the evaluation has it, else ``tools``. The controls
    (``CONTROLS``: matched pixels, the placebos and tools-off) are checked when they were run or when the
    evaluation is a full one (it has ``blank-tools``); ``tools@grpo`` is also checked against its
    own SFT start ``tools@sft`` when both ran.
    """
    conds = metrics["conditions"]
    maj = next((m["majority_baseline"] for m in conds.values()), None)
    method = method_condition(list(by_condition))
    a = by_condition.get(method) if method else None
    checks = [
        check_blind(first_samples(by_condition.get("blind") or []), maj, alpha_blind),
        check_audit(audit_findings, data),
        check_blank_tools(a, by_condition.get("blank-tools"), alpha_blank, method or "tools"),
    ]
    for name, other, ok, warn in CONTROLS:
        if other in by_condition or "blank-tools" in by_condition:
            b = by_condition.get(other)
            check = check_must_beat(name, method or "tools", other, a, b, ok, warn, alpha_blank)
            checks.append(_off_format(check, b) if other == "tools-off" else check)
    if "tools@sft" in by_condition and method == "tools@grpo":
        checks.append(
            check_must_beat(
                "rl_gain",
                "tools@grpo",
                "tools@sft",
                a,
                by_condition["tools@sft"],
                "GRPO beats its own SFT start",
                "GRPO DOES NOT BEAT ITS OWN SFT START: RL did no visible work",
                alpha_blank,
            )
        )
    checks.append(check_human_ceiling(metrics, human_ceiling))
    return checks


def _off_format(check: Check, off: Sequence[dict[str, Any]] | None, most: float = 0.5) -> Check:
    """Downgrade a won ``tools_off`` check when most ``tools-off`` episodes gave no answer."""
    if check.status != "ok" or not off:
        return check
    none = sum(r.get("prediction") is None for r in off) / len(off)
    if none <= most:
        return check
    return Check(
        check.name,
        "warn",
        f"Tools beat their own checkpoint with the tools off, but {none:.0%} of the tools-off "
        "episodes gave no answer: this checkpoint never learnt to answer without its tools, so the "
        f"control says little about what its weights read ({check.sentence[:-1]}).",
        {**check.details, "no_answer_rate": none},
    )


STYLE = {"ok": "bold green", "warn": "bold yellow", "fail": "bold white on red"}


def print_checks(checks: Sequence[Check], console=None) -> None:
    """Print the checks loudly (rich): one coloured line each, and a banner when any failed."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = console or Console()
    body = Text()
    for i, c in enumerate(checks):
        if i:
            body.append("\n")
        body.append(f" {c.status.upper():4} ", style=STYLE[c.status])
        body.append(f" {c.name}: ", style="bold")
        body.append(c.sentence)
    fails = sum(c.status == "fail" for c in checks)
    warns = sum(c.status == "warn" for c in checks)
    title = (
        f"[bold red]SKEPTIC: {fails} FAILED[/] - do not trust these numbers"
        if fails
        else (f"[yellow]skeptic: {warns} warning(s)[/]" if warns else "[green]skeptic: all ok[/]")
    )
    console.print(Panel(body, title=title, border_style="red" if fails else "yellow"))
