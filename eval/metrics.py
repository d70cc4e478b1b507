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
* the majority baseline is the share of the majority class among the TRAIN split's labels (passed in),
  the random baseline is 1/K;
* paired comparisons use the same episodes in both conditions, matched on (split, row_id, sample);
  the p-value is the exact (binomial) McNemar test on the discordant pairs, two-sided.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.stats import binom

from astroreason.conditions import TOOL_CONDITIONS

NO_ANSWER = "no answer"


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


# --------------------------------------------------------------------------- crop on target


def _area(box: Sequence[float]) -> float:
    """Area of a box ``x0, y0, x1, y1``, or length of an interval ``lo, hi``."""
    if len(box) == 2:
        return max(0.0, float(box[1]) - float(box[0]))
    return max(0.0, float(box[2]) - float(box[0])) * max(0.0, float(box[3]) - float(box[1]))


def _intersection(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) == 2:
        return max(0.0, float(min(a[1], b[1]) - max(a[0], b[0])))
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, float(w)) * max(0.0, float(h))


def on_target(
    footprint: Sequence[float] | None, bbox: Sequence[float] | None, field: Sequence[float] | None
) -> bool:
    """Whether a view's footprint is "on target".

    Works on boxes ``x0, y0, x1, y1`` (galaxies: source pixels) or on intervals ``lo, hi``
    (spectra: wavelength windows in Angstrom); all three arguments must have the same kind.

    On target means: the footprint contains the centre of the ground-truth ``bbox`` (or window),
    covers at least 50% of its area (length), and is smaller than the whole ``field`` (the overview's
    footprint), so that a "crop" of the whole image does not count.
    """
    if footprint is None or bbox is None or field is None:
        return False
    d = len(footprint)
    if d not in (2, 4) or len(bbox) != d or len(field) != d:
        return False
    if d == 2:
        c = (bbox[0] + bbox[1]) / 2.0
        contains = footprint[0] <= c <= footprint[1]
    else:
        cx, cy = (bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0
        contains = footprint[0] <= cx <= footprint[2] and footprint[1] <= cy <= footprint[3]
    b_area = _area(bbox)
    covers = b_area > 0 and _intersection(footprint, bbox) >= 0.5 * b_area
    smaller = _area(footprint) < _area(field) * (1.0 - 1e-9)
    return bool(contains and covers and smaller)


VIEW_TOOLS = ("zoom", "crop", "spectrum_window")
"""Tools whose successful calls count for crop-on-target."""


def episode_on_target(record: dict[str, Any]) -> bool | None:
    """Whether any successful zoom/crop (spectra: spectrum_window) of the episode is on target.

    See :func:`on_target`; the target is ``ground_truth["bbox"]`` (galaxies) or
    ``ground_truth["key_window"]`` (spectra). None when the episode cannot be scored: a condition
    without tools, no ground-truth target, or no overview footprint.
    """
    if record.get("condition") not in TOOL_CONDITIONS:
        return None
    gt = record.get("ground_truth") or {}
    target = gt.get("bbox") if gt.get("bbox") is not None else gt.get("key_window")
    views = (record.get("logs") or {}).get("views") or []
    if target is None or not views or views[0].get("footprint") is None:
        return None
    field = views[0]["footprint"]
    calls = (record.get("logs") or {}).get("tool_calls") or []
    return any(
        c.get("ok") and c.get("name") in VIEW_TOOLS and on_target(c.get("footprint"), target, field)
        for c in calls
    )


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
    records: Sequence[dict[str, Any]],
    *,
    majority_share: float | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every per-condition number of the report, from the episodes of one condition.

    Args:
        records: Trace records of one condition.
        majority_share: Share of the majority class among the TRAIN labels (the majority baseline).
        n_boot: Bootstrap resamples of the accuracy interval.
        seed: Bootstrap seed.

    Returns:
        A JSON-ready dict: ``n``, ``accuracy``, ``accuracy_ci``, ``macro_f1``, ``precision``,
        ``recall``, ``f1``, ``support``, ``confusion``, ``class_names``, ``majority_baseline``,
        ``random_baseline``, ``tool_calls_mean``, ``tool_calls_hist`` ({calls: episodes}),
        ``crop_on_target_rate`` (None when no episode has a bbox or key window), ``crop_on_target_n``,
        ``invalid_action_rate`` (invalid replies / replies), ``episodes_with_invalid``,
        ``over_turn_rate``, ``no_answer_rate``, ``turns_mean``, ``prompt_tokens_mean``,
        ``completion_tokens_mean``, ``tokens_total``, ``wall_s_mean``, ``wall_s_total``, ``return_mean``,
        ``examples`` ({class: {"right": id, "wrong": id}}), ``model`` (the records' ``model`` or
        ``policy``: conditions of one evaluation may come from different models).
    """
    recs = sorted(records, key=lambda r: r["id"])
    names = list(recs[0]["class_names"]) if recs else []
    k = len(names)
    n = len(recs)
    correct = np.array([bool(r["correct"]) for r in recs], dtype=np.float64)
    out: dict[str, Any] = {
        "n": n,
        "model": (recs[0].get("model") or recs[0].get("policy")) if recs else None,
        "class_names": names,
        "accuracy": float(correct.mean()) if n else float("nan"),
        "accuracy_ci": list(bootstrap_mean_ci(correct, n_boot=n_boot, seed=seed)),
        "majority_baseline": None if majority_share is None else float(majority_share),
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
    return out


# --------------------------------------------------------------------------- paired


def pair_key(record: dict[str, Any]) -> tuple[str, int, int]:
    """What makes two episodes of different conditions "the same episode": split, row, sample."""
    return (str(record["split"]), int(record["row_id"]), int(record["sample"]))


def paired_comparison(
    a: Sequence[dict[str, Any]],
    b: Sequence[dict[str, Any]],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare two conditions on the episodes both ran (see the module docstring).

    Returns:
        ``n_pairs``, ``accuracy_a``, ``accuracy_b``, ``difference`` (a - b), ``difference_ci``
        (bootstrap over pairs), ``a_only`` (pairs where only a is right), ``b_only`` (only b right),
        ``p_value`` (exact McNemar, two-sided).
    """
    kb = {pair_key(r): bool(r["correct"]) for r in b}
    pairs = sorted(
        (pair_key(r), bool(r["correct"]), kb[pair_key(r)]) for r in a if pair_key(r) in kb
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


def comparison_pairs(conditions: Sequence[str]) -> list[tuple[str, str]]:
    """Which conditions to compare: the method (``tools``, else the first) against every other."""
    conds = list(conditions)
    if len(conds) < 2:
        return []
    ref = "tools" if "tools" in conds else conds[0]
    pairs = [(ref, c) for c in conds if c != ref]
    if "no-tools" in conds and "no-tools-matched" in conds and ref != "no-tools-matched":
        pairs.append(("no-tools-matched", "no-tools"))
    return pairs


def compute_metrics(
    by_condition: dict[str, Sequence[dict[str, Any]]],
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
        "majority_class": int | None}``.
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
    return {"conditions": conds, "comparisons": comps, "majority_class": maj_class}


def fmt_pct(x: float | None, digits: int = 1) -> str:
    """A share as a percentage string ("-" for None/NaN)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.{digits}f}%"
