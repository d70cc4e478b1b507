"""Paired tests between evaluation runs: ``astroreason compare RUN_A RUN_B ...``.

Each run is a folder written by ``astroreason eval`` (``metrics.json`` and one trace folder per
condition). Runs are compared on the episodes they share, as conditions inside one run are
(:func:`astroreason.eval.metrics.paired_comparison`, one implementation):

* **episodes** match on (condition, split, row_id, sample); with several samples per item
  (``--samples k``) each item's first sample is its pair (:data:`~astroreason.eval.metrics.PAIRING`),
  so a k-sample run also pairs with a one-sample run. A condition label present in both runs is
  compared with itself; a label left without partner is compared with the one label of the same
  ``NAME`` left in the other run (``tools@sft`` with ``tools@grpo``), if there is exactly one;
* **runs**: with more than two, every run against the first (the baseline); the difference is
  ``run - baseline``, with a bootstrap 95% interval over the shared items and the exact McNemar p;
* **arms**: inside each run, labels ``NAME@TAG`` of one ``NAME`` are compared, the first in the
  run's order against each other (``tools@grpo`` vs ``tools@sft``);
* shared episodes must carry the same true label in both runs, else the runs are not on the same
  data and the comparison is refused.

:func:`compare_runs` returns the result as a JSON-ready dict; :func:`write_compare_page` renders it
through ``templates/compare.html`` (autoescaped, self-contained).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astroreason.conditions import base_condition
from astroreason.errors import ConfigError, DataError
from astroreason.eval.evaluate import _console, json_ready, load_condition_records
from astroreason.eval.format import fmt_pct, fmt_pp_number
from astroreason.eval.metrics import (
    METRICS_FILE,
    PAIRING,
    first_samples,
    item_groups,
    pair_key,
    paired_comparison,
)
from astroreason.eval.templating import render
from astroreason.traces import TraceRecord

COMPARE_PAGE = "compare.html"
COMPARE_JSON = "compare.json"
TITLE = "AstroReason run comparison"


def load_run(path: str | Path) -> tuple[dict[str, Any], dict[str, list[TraceRecord]]]:
    """(metrics.json, condition -> trace records) of an evaluation run folder.

    Raises:
        DataError: The folder is not an evaluation run (no metrics.json, no condition in it, a
            listed condition without traces).
    """
    path = Path(path)
    mfile = path / METRICS_FILE
    if not path.is_dir():
        raise DataError(
            path, "no such folder (give evaluation run folders: astroreason eval --out)"
        )
    if not mfile.is_file():
        raise DataError(path, f"not an evaluation run: no {METRICS_FILE} (astroreason eval --out)")
    try:
        metrics = json.loads(mfile.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(mfile, f"not valid JSON ({e})") from None
    conds = list(metrics.get("conditions") or {}) if isinstance(metrics, dict) else []
    if not conds:
        raise DataError(mfile, "lists no condition", field="conditions")
    records = load_condition_records(path, conds)
    missing = [c for c in conds if c not in records]
    if missing:
        raise DataError(path / missing[0], "a condition of metrics.json without traces.jsonl")
    return metrics, records


def run_names(paths: Sequence[Path]) -> list[str]:
    """Short distinct names: each folder's last path parts, as few as keep it apart from the rest."""
    parts = [p.resolve().parts for p in paths]
    names = []
    for i, mine in enumerate(parts):
        others = [p for j, p in enumerate(parts) if j != i]
        depth = next(
            (d for d in range(1, len(mine)) if all(p[-d:] != mine[-d:] for p in others)),
            len(mine),
        )
        names.append("/".join(mine[-depth:]))
    return names


def condition_pairs(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, str, str]]:
    """(label in a, label in b, ``"label"`` or ``"name"``): what to compare between two runs.

    The same label first; then a label left over in ``a`` with the one left-over label of the
    same ``NAME`` in ``b``, when each side has exactly one (module docstring).
    """
    pairs = [(c, c, "label") for c in a if c in b]
    rest_a = [c for c in a if c not in b]
    rest_b = [c for c in b if c not in a]
    for c in rest_a:
        name = base_condition(c)
        mine = [x for x in rest_a if base_condition(x) == name]
        theirs = [x for x in rest_b if base_condition(x) == name]
        if len(mine) == 1 and len(theirs) == 1:
            pairs.append((c, theirs[0], "name"))
    return pairs


def arm_pairs(conditions: Sequence[str]) -> list[tuple[str, str]]:
    """Inside one run: labels ``NAME@TAG`` of one ``NAME``, the first against each later one."""
    out = []
    for c in conditions:
        if "@" not in c:
            continue
        first = next(x for x in conditions if "@" in x and base_condition(x) == base_condition(c))
        if c != first:
            out.append((first, c))
    return out


def _check_labels(
    a: Sequence[TraceRecord], b: Sequence[TraceRecord], where_a: Path, where_b: Path
) -> None:
    """Refuse shared episodes whose true labels differ (the runs are on different data)."""
    lb = {pair_key(r): int(r["label"]) for r in first_samples(b)}
    bad = [r for r in first_samples(a) if pair_key(r) in lb and int(r["label"]) != lb[pair_key(r)]]
    if bad:
        raise ConfigError(
            f"{where_a} and {where_b}: {len(bad)} shared episodes have different true labels "
            f"(e.g. {bad[0]['split']} row {bad[0]['row_id']}): the runs are not on the same data"
        )


def _avg_at_k(records: Sequence[TraceRecord], keys: set) -> float:
    """Mean over the shared items of each item's share of right samples."""
    groups = item_groups(r for r in records if (r["split"], int(r["row_id"])) in keys)
    return sum(sum(g) / len(g) for g in groups.values()) / len(groups) if groups else math.nan


def _pair(
    a: Sequence[TraceRecord], b: Sequence[TraceRecord], *, n_boot: int, seed: int
) -> dict[str, Any]:
    """``paired_comparison`` plus the items each side has and, with k > 1, avg@k on shared items."""
    cmp = paired_comparison(a, b, n_boot=n_boot, seed=seed)
    ka = {pair_key(r) for r in first_samples(a)}
    kb = {pair_key(r) for r in first_samples(b)}
    cmp.update(items_a=len(ka), items_b=len(kb))
    if max(int(r.get("sample", 0)) for r in [*a, *b]) > 0:
        shared = {(s, row) for s, row, _ in ka & kb}
        cmp.update(avg_at_k_a=_avg_at_k(a, shared), avg_at_k_b=_avg_at_k(b, shared))
    return cmp


def _run_info(name: str, path: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    setup = metrics.get("setup") or {}
    conds = metrics["conditions"]
    return {
        "name": name,
        "path": str(path),
        "policy": setup.get("policy"),
        "model": setup.get("model"),
        "data": setup.get("data"),
        "split": setup.get("split"),
        "samples": max((int(m.get("samples", 1)) for m in conds.values()), default=1),
        "conditions": list(conds),
        "created": metrics.get("created"),
    }


def compare_runs(
    paths: Sequence[str | Path], *, n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Paired tests between runs and between the arms inside each run (module docstring).

    Args:
        paths: Evaluation run folders; the first is the baseline.
        n_boot: Bootstrap resamples of the difference's interval.
        seed: Bootstrap seed.

    Returns:
        ``runs`` (name, path, policy, model, data, split, samples, conditions per run),
        ``baseline``, ``pairing``, ``notes`` and ``comparisons``: one dict per compared pair with
        ``kind`` (``runs`` or ``arms``), ``a_run``, ``b_run``, ``a``, ``b`` (labels), ``match``,
        ``items_a``, ``items_b`` and :func:`~astroreason.eval.metrics.paired_comparison`'s keys
        (a is the later run, b the baseline); ``avg_at_k_a``/``_b`` when a side has k > 1.

    Raises:
        DataError: A folder is not an evaluation run.
        ConfigError: No runs, a run given twice, nothing to compare, a run sharing no episode
            with the baseline, or shared episodes with different true labels.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("compare: give evaluation run folders (the first is the baseline)")
    seen: dict[Path, Path] = {}
    for p in paths:
        if p.resolve() in seen:
            raise ConfigError(f"{p}: given twice (as {seen[p.resolve()]}); compare different runs")
        seen[p.resolve()] = p
    loaded = [load_run(p) for p in paths]
    names = run_names(paths)
    runs = [_run_info(n, p, m) for n, p, (m, _) in zip(names, paths, loaded, strict=True)]
    comps: list[dict[str, Any]] = []
    notes: list[str] = []
    base_path, (base_m, base_recs) = paths[0], loaded[0]
    for name, path, (m, recs) in zip(names[1:], paths[1:], loaded[1:], strict=True):
        pairs = condition_pairs(list(recs), list(base_recs))
        found = []
        for ca, cb, how in pairs:
            _check_labels(recs[ca], base_recs[cb], path / ca, base_path / cb)
            cmp = _pair(recs[ca], base_recs[cb], n_boot=n_boot, seed=seed)
            found.append(
                {"kind": "runs", "a_run": name, "b_run": names[0], "a": ca, "b": cb, "match": how}
                | cmp
            )
        if not any(c["n_pairs"] for c in found):
            what = "no condition" if not pairs else "no episode"
            raise ConfigError(
                f"{path} and {base_path} share {what} (conditions {', '.join(recs)} vs "
                f"{', '.join(base_recs)}; splits {runs[names.index(name)]['split']} vs "
                f"{runs[0]['split']}): compare runs of the same split and rows"
            )
        comps += found
        data_a, data_b = (m.get("setup") or {}).get("data"), (base_m.get("setup") or {}).get("data")
        if data_a != data_b:
            notes.append(
                f"{name} and {names[0]} name different data files ({data_a} vs {data_b}); the "
                "true labels of their shared episodes agree."
            )
    for name, (_, recs) in zip(names, loaded, strict=True):
        for ca, cb in arm_pairs(list(recs)):
            cmp = _pair(recs[ca], recs[cb], n_boot=n_boot, seed=seed)
            comps.append(
                {"kind": "arms", "a_run": name, "b_run": name, "a": ca, "b": cb, "match": "arm"}
                | cmp
            )
    if not comps:
        raise ConfigError(
            f"{paths[0]}: nothing to compare; give a second run (or a run with NAME@TAG arms)"
        )
    if any(r["samples"] > 1 for r in runs):
        notes.append(
            "Some runs have several samples per item: each item's first sample (sample 0) is its "
            "pair in every test; avg@k columns average all samples of the shared items."
        )
    return {
        "title": TITLE,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "baseline": names[0],
        "pairing": PAIRING,
        "runs": runs,
        "comparisons": comps,
        "notes": notes,
    }


def _label(c: dict[str, Any]) -> tuple[str, str]:
    if c["kind"] == "arms":
        return f"{c['a_run']}: arms", f"{c['a']} vs {c['b']}"
    cond = c["a"] if c["a"] == c["b"] else f"{c['a']} vs {c['b']}"
    return f"{c['a_run']} vs {c['b_run']}", cond


def compare_columns(result: dict[str, Any]) -> list[str]:
    """The comparison table's header (with avg@k when a run has k > 1)."""
    cols = ["a vs b", "condition", "shared items (a/b)", "accuracy a / b", "a - b [95% CI]"]
    cols += ["only a right", "only b right", "McNemar p"]
    if any("avg_at_k_a" in c for c in result["comparisons"]):
        cols.append("avg@k a / b")
    return cols


def compare_rows(result: dict[str, Any]) -> list[list[str]]:
    """The comparison table as strings, one row per pair (the terminal and the page share it)."""
    with_k = len(compare_columns(result)) > 8
    rows = []
    for c in result["comparisons"]:
        lo, hi = c["difference_ci"]
        row = [
            *_label(c),
            f"{c['n_pairs']} ({c['items_a']}/{c['items_b']})",
            f"{fmt_pct(c['accuracy_a'])} / {fmt_pct(c['accuracy_b'])}",
            f"{fmt_pp_number(c['difference'])} [{fmt_pp_number(lo)}, {fmt_pp_number(hi)}] pp",
            str(c["a_only"]),
            str(c["b_only"]),
            f"{c['p_value']:.3g}",
        ]
        if with_k:
            row.append(
                f"{fmt_pct(c['avg_at_k_a'])} / {fmt_pct(c['avg_at_k_b'])}"
                if "avg_at_k_a" in c
                else "-"
            )
        rows.append(row)
    return rows


RUN_COLUMNS = ("run", "path", "policy", "model", "data", "split", "samples", "conditions")


def run_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per run (baseline first)."""
    return [
        [
            r["name"] + (" (baseline)" if r["name"] == result["baseline"] else ""),
            r["path"],
            *(str(r[k]) if r[k] is not None else "-" for k in ("policy", "model", "data", "split")),
            str(r["samples"]),
            ", ".join(r["conditions"]),
        ]
        for r in result["runs"]
    ]


def render_compare_page(result: dict[str, Any]) -> str:
    """The comparison as one self-contained HTML page."""
    return render(
        "compare.html",
        title=result["title"],
        created=result["created"],
        run_header=list(RUN_COLUMNS),
        runs=run_rows(result),
        header=compare_columns(result),
        rows=compare_rows(result),
        significant=[c["p_value"] < 0.05 for c in result["comparisons"]],
        notes=result["notes"],
    )


def write_compare_page(path: str | Path, result: dict[str, Any]) -> Path:
    """Write the page (its folder is created) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_compare_page(result), encoding="utf-8")
    return path


def write_compare_json(path: str | Path, result: dict[str, Any]) -> Path:
    """Write the result as strict JSON (NaN as null) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(result) + "\n", encoding="utf-8")
    return path


def to_json(result: dict[str, Any]) -> str:
    """The result as strict JSON text (NaN as null)."""
    return json.dumps(json_ready(result), indent=1)


def print_comparison(result: dict[str, Any], console=None) -> None:
    """Print the runs and the paired tests (rich); significant rows (p < 0.05) in bold."""
    from rich.table import Table

    console = console or _console()
    t = Table(title="runs")
    for col in ("run", "policy", "model", "split", "samples", "conditions"):
        t.add_column(col)
    for r in result["runs"]:
        name = r["name"] + (" (baseline)" if r["name"] == result["baseline"] else "")
        t.add_row(
            name,
            *(str(r[k] or "-") for k in ("policy", "model", "split", "samples")),
            ", ".join(r["conditions"]),
        )
    console.print(t)
    t2 = Table(title="paired tests (same episodes; first sample of each item; exact McNemar)")
    for col in compare_columns(result):
        t2.add_column(col, justify="left" if col in ("a vs b", "condition") else "right")
    for c, row in zip(result["comparisons"], compare_rows(result), strict=True):
        t2.add_row(*row, style="bold" if c["p_value"] < 0.05 else None)
    console.print(t2)
    for note in result["notes"]:
        console.print(f"note: {note}")
