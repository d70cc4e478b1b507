"""Display formatting of evaluation results: numbers as strings and the shared tables' rows.

Pure functions over the metrics dict (:func:`astroreason.eval.metrics.compute_metrics`); the console
(:mod:`astroreason.eval.evaluate`), the HTML pages (:mod:`astroreason.eval.report`,
:mod:`astroreason.eval.compare`) and the skeptic checks' messages print what these return. Missing
values (None or NaN) print as ``-``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from astroreason.eval.metrics import k_values


def fmt_pct(x: float | None, digits: int = 1) -> str:
    """A share as a percentage string ("-" for None/NaN)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.{digits}f}%"


def fmt_pct_number(x: float | None) -> str:
    """A share as a percentage without the sign ("12.5"; "-" for None/NaN), e.g. in an interval."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.1f}"


def fmt_pp(x: Any) -> str:
    """A difference of shares in signed percentage points ("+5.0 pp"; "-" for None or NaN)."""
    if x is None:
        return "-"
    v = float(x)
    return "-" if math.isnan(v) else f"{100 * v:+.1f} pp"


def fmt_pp_number(x: float | None) -> str:
    """A difference of shares in signed percentage points, no unit ("+5.0"; "-" for None or NaN)."""
    return "-" if x is None or math.isnan(x) else f"{100 * x:+.1f}"


def short_model(model: str | None) -> str:
    """A model folder's last two path parts (``runs/demo/tools`` -> ``demo/tools``), or the name."""
    if not model:
        return "-"
    parts = Path(model).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else model


# --------------------------------------------------------------------------- headline table
HEADLINE_COLUMNS = (
    "condition",
    "model",
    "n",
    "accuracy [95% CI]",
    "macro-F1",
    "tools/ep",
    "crop on target",
    "invalid",
    "over-turn",
    "majority",
    "random",
)


def headline_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """The headline table as strings: one row per condition (shared by the console and the report)."""
    rows = []
    for cond, m in metrics["conditions"].items():
        lo, hi = m["accuracy_ci"]
        rows.append(
            [
                cond,
                short_model(m.get("model")),
                str(m["n"]),
                f"{fmt_pct(m['accuracy'])} [{fmt_pct_number(lo)}, {fmt_pct_number(hi)}]",
                f"{m['macro_f1']:.3f}" if m["macro_f1"] is not None else "-",
                f"{m['tool_calls_mean']:.2f}" if m["tool_calls_mean"] is not None else "-",
                fmt_pct(m["crop_on_target_rate"]),
                fmt_pct(m["invalid_action_rate"]),
                fmt_pct(m["over_turn_rate"]),
                fmt_pct(m["majority_baseline"]),
                fmt_pct(m["random_baseline"]),
            ]
        )
    return rows


# --------------------------------------------------------------------------- samples table
def sample_rows(metrics: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """The avg@k and pass@k table (header, rows) when some condition has k > 1 samples, else None."""
    conds = metrics["conditions"]
    k = max((int(m.get("samples", 1)) for m in conds.values()), default=1)
    if k <= 1:
        return None
    ks = k_values(k)
    header = ["condition", "items", "samples", "avg@k", *(f"pass@{kk}" for kk in ks)]
    rows = [
        [
            c,
            str(m.get("items", "-")),
            str(m.get("samples", "-")),
            fmt_pct(m.get("avg_at_k")),
            *(fmt_pct((m.get("pass_at_k") or {}).get(str(kk))) for kk in ks),
        ]
        for c, m in conds.items()
    ]
    return header, rows
