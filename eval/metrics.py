"""Evaluation metrics: pure functions over trace records (see :mod:`astroreason.traces`).

A record is one episode: ``correct``, ``label``, ``prediction`` (None without an answer), ``class_names``,
``metrics`` (tool calls, turns, tokens, wall time, ...), ``logs`` (tool calls with their footprints,
views) and ``ground_truth`` (``bbox`` for galaxies and ``key_window`` for spectra, when known).

Conventions:

* accuracy intervals are seeded percentile bootstraps over episodes (95% by default);
* an episode without an answer counts as wrong and as predicted class "no answer" (the last column of
  the confusion matrix);
* macro-F1 averages the F1 of every class that occurs among the true labels or the (valid) predictions
  of the episodes (scikit-learn's ``average="macro"``);
* the majority baseline (:func:`constant_baseline`, the table's and the blind check's) is the best a
  constant answer could reach on the episodes: the larger of the TRAIN split's majority-class share
  (passed in) and the largest class share among the episodes themselves; the random baseline is 1/K;
* paired comparisons use the same episodes in both conditions, matched on (split, row_id, sample);
  the p-value is the exact (binomial) McNemar test on the discordant pairs, two-sided;
* with k samples per item (``--samples k``: the same row run k times, seeds differing), an item is
  (split, row_id): ``accuracy`` is over every episode, its interval bootstraps items (each item's
  share of right samples), ``avg_at_k`` is the mean over items of that share, ``pass_at_k`` the
  unbiased estimator of Chen et al. 2021 (:func:`pass_at_k`), and paired tests, the blind test and
  "solved only with tools" use each item's first sample (sample 0; :data:`PAIRING`), so that one
  item is one pair and a k-sample run pairs with a one-sample run.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.stats import binom

from astroreason.targets import episode_on_target
from astroreason.traces import TraceRecord

METRICS_FILE = "metrics.json"
"""An evaluation run's metrics, in ``RUN_DIR`` (written by ``evaluate``, read by the reports)."""

PAIRING = "first sample"
"""How items with several samples are paired (module docstring): each item's sample 0."""


# --------------------------------------------------------------------------- basic statistics


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean (NaN, NaN for no values); seeded, so reproducible."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return (float(lo), float(hi))


def exact_mcnemar(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``.

    Under the null each discordant pair falls either way with probability 1/2, so
    ``p = min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)])``; 1.0 when there is no discordant pair.
    """
    b, c = int(b), int(c)
    n = b + c
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(b, c), n, 0.5)))


def majority_baseline(train_labels: Iterable[int]) -> tuple[int, float]:
    """(majority class, its share) among the training labels."""
    y = np.asarray(list(train_labels), dtype=np.int64)
    if y.size == 0:
        return (-1, float("nan"))
    counts = np.bincount(y)
    k = int(counts.argmax())
    return (k, float(counts[k] / y.size))


def constant_baseline(labels: Iterable[int], train_share: float | None = None) -> float:
    """The majority baseline of episodes with these true labels: what a constant answer could reach.

    The larger of the TRAIN majority-class share (``train_share``) and the largest class share among
    ``labels`` (no fixed answer beats that), so a test set whose class mix differs from train does
    not lift a blind run above its baseline. The headline table and the blind check both use it.
    NaN without labels or share.
    """
    y = np.asarray(list(labels), dtype=np.int64)
    shares = [float(np.bincount(y).max() / y.size)] if y.size else []
    if train_share is not None and not math.isnan(train_share):
        shares.append(float(train_share))
    return max(shares, default=float("nan"))


ORACLE = "oracle"
"""The scripted policy that reads the label on purpose (``oracle``, ``oracle-zoom-grid50``, ...)."""


def is_oracle(policy: str | None) -> bool:
    """Whether ``policy`` (a record's or condition's policy name) is the label-reading oracle."""
    return bool(policy) and (policy == ORACLE or str(policy).startswith(ORACLE + "-"))


def oracle_conditions(metrics: dict[str, Any]) -> list[str]:
    """The conditions of an evaluation that the oracle policy ran (its ``policy``, else ``model``)."""
    return [
        c for c, m in metrics["conditions"].items() if is_oracle(m.get("policy") or m.get("model"))
    ]


# --------------------------------------------------------------------------- per condition


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def classification_metrics(
    labels: Sequence[int], predictions: Sequence[int | None], n_classes: int
) -> dict[str, Any]:
    """Confusion matrix (rows true, columns predicted + "no answer"), per-class P/R/F1, macro-F1."""
    k = int(n_classes)
    cm = np.zeros((k, k + 1), dtype=np.int64)
    for y, p in zip(labels, predictions, strict=True):
        col = k if p is None or not 0 <= int(p) < k else int(p)
        cm[int(y), col] += 1
    tp = np.diag(cm[:, :k]).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm[:, :k].sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (support > 0) | (predicted > 0)
    macro_f1 = float(f1[present].mean()) if present.any() else float("nan")
    return {
        "confusion": cm.tolist(),
        "precision": [float(v) for v in precision],
        "recall": [float(v) for v in recall],
        "f1": [float(v) for v in f1],
        "support": [int(v) for v in support],
        "macro_f1": macro_f1,
    }


def condition_metrics(
    records: Sequence[TraceRecord],
    *,
    majority_share: float | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every per-condition number of the report, from the episodes of one condition.

    Args:
        records: Trace records of one condition.
        majority_share: Share of the majority class among the TRAIN labels (for the majority
            baseline, :func:`constant_baseline`).
        n_boot: Bootstrap resamples of the accuracy interval.
        seed: Bootstrap seed.

    Returns:
        A JSON-ready dict: ``n``, ``accuracy``, ``accuracy_ci``, ``macro_f1``, ``precision``,
        ``recall``, ``f1``, ``support``, ``confusion``, ``class_names``, ``majority_baseline``
        (:func:`constant_baseline` of the first samples' labels), ``train_majority_share``,
        ``random_baseline``, ``tool_calls_mean``, ``tool_calls_hist`` ({calls: episodes}),
        ``crop_on_target_rate`` (None when no episode has a bbox or key window), ``crop_on_target_n``,
        ``invalid_action_rate`` (invalid replies / replies), ``episodes_with_invalid``,
        ``over_turn_rate``, ``no_answer_rate``, ``turns_mean``, ``prompt_tokens_mean``,
        ``completion_tokens_mean``, ``tokens_total``, ``wall_s_mean``, ``wall_s_total``, ``return_mean``,
        ``examples`` ({class: {"right": id, "wrong": id}}), ``model`` (the records' ``model`` or
        ``policy``: conditions of one evaluation may come from different models), ``policy``.
    """
    recs = sorted(records, key=lambda r: r["id"])
    names = list(recs[0]["class_names"]) if recs else []
    k = len(names)
    n = len(recs)
    correct = np.array([bool(r["correct"]) for r in recs], dtype=np.float64)
    items = item_groups(recs)
    shares = np.array([np.mean(g) for g in items.values()], dtype=np.float64)
    out: dict[str, Any] = {
        "n": n,
        "model": (recs[0].get("model") or recs[0].get("policy")) if recs else None,
        "policy": recs[0].get("policy") if recs else None,
        "class_names": names,
        "accuracy": float(correct.mean()) if n else float("nan"),
        "accuracy_ci": list(bootstrap_mean_ci(shares, n_boot=n_boot, seed=seed)),
        "majority_baseline": constant_baseline(
            [r["label"] for r in first_samples(recs)], majority_share
        ),
        "train_majority_share": None if majority_share is None else float(majority_share),
        "random_baseline": 1.0 / k if k else float("nan"),
    }
    out.update(
        classification_metrics([r["label"] for r in recs], [r["prediction"] for r in recs], k)
    )
    m = [r["metrics"] for r in recs]
    calls = [int(x["tool_calls"]) for x in m]
    hist = Counter(calls)
    out["tool_calls_mean"] = _mean(calls)
    out["tool_calls_hist"] = {str(c): hist[c] for c in sorted(hist)}
    hits = [h for h in (episode_on_target(r) for r in recs) if h is not None]
    out["crop_on_target_n"] = len(hits)
    out["crop_on_target_rate"] = _mean([float(h) for h in hits]) if hits else None
    turns = sum(int(x["turns"]) for x in m)
    invalid = sum(int(x["invalid_actions"]) for x in m)
    out["invalid_action_rate"] = invalid / turns if turns else float("nan")
    out["episodes_with_invalid"] = sum(int(x["invalid_actions"]) > 0 for x in m)
    out["over_turn_rate"] = _mean([float(bool(x["over_turn"])) for x in m])
    out["no_answer_rate"] = _mean([float(r["prediction"] is None) for r in recs])
    out["turns_mean"] = _mean([int(x["turns"]) for x in m])
    out["prompt_tokens_mean"] = _mean([int(x.get("prompt_tokens", 0)) for x in m])
    out["completion_tokens_mean"] = _mean([int(x.get("completion_tokens", 0)) for x in m])
    out["tokens_total"] = int(
        sum(int(x.get("prompt_tokens", 0)) + int(x.get("completion_tokens", 0)) for x in m)
    )
    out["wall_s_mean"] = _mean([float(x.get("wall_s", 0.0)) for x in m])
    out["wall_s_total"] = float(sum(float(x.get("wall_s", 0.0)) for x in m))
    out["return_mean"] = _mean([float(x.get("return", 0.0)) for x in m])
    examples: dict[str, dict[str, str]] = {}
    for r in recs:
        slot = examples.setdefault(r["class_name"], {})
        slot.setdefault("right" if r["correct"] else "wrong", r["id"])
    out["examples"] = {c: examples[c] for c in names if c in examples}
    out.update(sample_metrics(items))
    return out


# --------------------------------------------------------------------------- k samples per item


def item_key(record: TraceRecord) -> tuple[str, int]:
    """The item an episode is a sample of: (split, row)."""
    return (str(record["split"]), int(record["row_id"]))


def item_groups(records: Iterable[TraceRecord]) -> dict[tuple[str, int], list[bool]]:
    """Item -> whether each of its samples was right, items in first-seen order."""
    out: dict[tuple[str, int], list[bool]] = {}
    for r in records:
        out.setdefault(item_key(r), []).append(bool(r["correct"]))
    return out


def first_samples(records: Iterable[TraceRecord]) -> list[TraceRecord]:
    """One episode per item for paired tests (:data:`PAIRING`): sample 0 of each row."""
    return [r for r in records if int(r.get("sample", 0)) == 0]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one item with ``c`` right of ``n`` samples: 1 - C(n-c, k) / C(n, k).

    The chance that ``k`` samples drawn without replacement from the ``n`` hold a right one
    (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"); needs 1 <= k <= n.
    """
    n, c, k = int(n), int(c), int(k)
    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def k_values(k: int) -> list[int]:
    """The k' reported for k samples per item: 1, the powers of two below k, and k."""
    return sorted({1, int(k)} | {2**j for j in range(int(k).bit_length()) if 2**j <= k})


def sample_metrics(items: dict[tuple[str, int], list[bool]]) -> dict[str, Any]:
    """``samples`` (most samples of an item: k), ``items``, ``avg_at_k`` and ``pass_at_k``.

    ``pass_at_k`` maps each k' of :func:`k_values` to the mean of :func:`pass_at_k` over the items
    with at least k' samples (all of them once a run is complete).
    """
    k = max((len(g) for g in items.values()), default=0)
    passes = {}
    for kk in k_values(k) if k else []:
        vals = [pass_at_k(len(g), sum(g), kk) for g in items.values() if len(g) >= kk]
        passes[str(kk)] = _mean(vals)
    return {
        "samples": k,
        "items": len(items),
        "avg_at_k": _mean([float(np.mean(g)) for g in items.values()]),
        "pass_at_k": passes,
    }


# --------------------------------------------------------------------------- paired


def pair_key(record: TraceRecord) -> tuple[str, int, int]:
    """What makes two episodes of different conditions "the same episode": split, row, sample."""
    return (str(record["split"]), int(record["row_id"]), int(record["sample"]))


def paired_comparison(
    a: Sequence[TraceRecord],
    b: Sequence[TraceRecord],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare two conditions on the episodes both ran (see the module docstring).

    With several samples per item only each item's first sample is paired (:data:`PAIRING`).

    Returns:
        ``n_pairs``, ``accuracy_a``, ``accuracy_b``, ``difference`` (a - b), ``difference_ci``
        (bootstrap over pairs), ``a_only`` (pairs where only a is right), ``b_only`` (only b right),
        ``p_value`` (exact McNemar, two-sided).
    """
    kb = {pair_key(r): bool(r["correct"]) for r in first_samples(b)}
    pairs = sorted(
        (pair_key(r), bool(r["correct"]), kb[pair_key(r)])
        for r in first_samples(a)
        if pair_key(r) in kb
    )
    ca = np.array([p[1] for p in pairs], dtype=np.float64)
    cb = np.array([p[2] for p in pairs], dtype=np.float64)
    a_only = int(((ca == 1) & (cb == 0)).sum())
    b_only = int(((ca == 0) & (cb == 1)).sum())
    n = len(pairs)
    return {
        "n_pairs": n,
        "accuracy_a": float(ca.mean()) if n else float("nan"),
        "accuracy_b": float(cb.mean()) if n else float("nan"),
        "difference": float((ca - cb).mean()) if n else float("nan"),
        "difference_ci": list(bootstrap_mean_ci(ca - cb, n_boot=n_boot, seed=seed)),
        "a_only": a_only,
        "b_only": b_only,
        "p_value": exact_mcnemar(a_only, b_only),
    }


def method_condition(conditions: Sequence[str]) -> str | None:
    """The method's label among ``conditions``: ``tools@grpo`` (the RL checkpoint), else ``tools``."""
    return next((c for c in ("tools@grpo", "tools") if c in conditions), None)


def solved_only_with_tools(
    by_condition: dict[str, Sequence[TraceRecord]], method: str | None = None
) -> dict[str, Any] | None:
    """Items the method gets right and every no-tool and placebo condition gets wrong.

    Counted on the items every one of those conditions ran (``pair_key``, first samples); the
    controls are the
    arms that see the image without real tools (``CONTROL_CONDITIONS``: no-tools, matched pixels,
    the placebos) present in ``by_condition``. ``missed_only_with_tools`` counts the reverse: the
    method wrong where every control is right. None without the method or any control.
    """
    from astroreason.conditions import CONTROL_CONDITIONS

    method = method or method_condition(list(by_condition))
    controls = [c for c in by_condition if c in CONTROL_CONDITIONS]
    if method is None or not controls:
        return None
    right = {
        c: {pair_key(r): bool(r["correct"]) for r in first_samples(by_condition[c])}
        for c in controls
    }
    mine = {pair_key(r): bool(r["correct"]) for r in first_samples(by_condition[method])}
    shared = [k for k in mine if all(k in right[c] for c in controls)]
    only = [k for k in shared if mine[k] and not any(right[c][k] for c in controls)]
    missed = [k for k in shared if not mine[k] and all(right[c][k] for c in controls)]
    return {
        "method": method,
        "controls": controls,
        "items": len(shared),
        "solved_only_with_tools": len(only),
        "missed_only_with_tools": len(missed),
        "rows": [k[1] for k in only],
    }


def comparison_pairs(conditions: Sequence[str]) -> list[tuple[str, str]]:
    """Which conditions to compare: the method against every other, and matched against no-tools.

    The method is ``method_condition``'s, else the first condition.
    """
    conds = list(conditions)
    if len(conds) < 2:
        return []
    ref = method_condition(conds) or conds[0]
    pairs = [(ref, c) for c in conds if c != ref]
    if "no-tools" in conds and "no-tools-matched" in conds and ref != "no-tools-matched":
        pairs.append(("no-tools-matched", "no-tools"))
    return pairs


def compute_metrics(
    by_condition: dict[str, Sequence[TraceRecord]],
    *,
    train_labels: Iterable[int] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-condition metrics and paired comparisons for a whole evaluation.

    Args:
        by_condition: Condition name -> its trace records (in the order to report them).
        train_labels: Labels of the TRAIN split (for the majority baseline).
        n_boot: Bootstrap resamples.
        seed: Bootstrap seed.

    Returns:
        ``{"conditions": {name: condition_metrics}, "comparisons": [{"a", "b", ...}],
        "majority_class": int | None, "samples": k (most samples per item), "pairing"}``.
    """
    maj_class, maj_share = (None, None)
    if train_labels is not None:
        maj_class, maj_share = majority_baseline(train_labels)
    conds = {
        c: condition_metrics(recs, majority_share=maj_share, n_boot=n_boot, seed=seed)
        for c, recs in by_condition.items()
    }
    comps = []
    for a, b in comparison_pairs(list(by_condition)):
        comps.append(
            {
                "a": a,
                "b": b,
                **paired_comparison(by_condition[a], by_condition[b], n_boot=n_boot, seed=seed),
            }
        )
    k = max((m["samples"] for m in conds.values()), default=1)
    return {
        "conditions": conds,
        "comparisons": comps,
        "majority_class": maj_class,
        "samples": k,
        "pairing": PAIRING,
    }
