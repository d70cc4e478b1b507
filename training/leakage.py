"""Training audits its data first: a high-severity leakage finding stops the run before any step.

The overnight failure behind this project happened in training, so every SFT and GRPO run reads
:func:`astroreason.data.quality.audit.cached_audit` of its data (computed once per file and labels, cached
beside the data). A high-severity finding (row order, an id column or a metadata column that predicts
the label, identical pixels under different labels) raises :class:`LeakyDataError`: one line naming
the finding, exit status 2 from the CLI. ``allow_leaky`` (``--allow-leaky``) lets the run go on and
the findings are written into the experiment log, so the morning reader sees them beside the numbers.
"""

from __future__ import annotations

from typing import Any

from astroreason.data.quality.audit import Finding, cached_audit
from astroreason.errors import AstroReasonError


class LeakyDataError(AstroReasonError):
    """The training data has a high-severity leakage finding and ``allow_leaky`` is off."""


def finding_line(f: Finding) -> str:
    """``HIGH id_column 'object_id': <sentence>``: one finding on one line."""
    column = f.details.get("column")
    where = f" {column!r}" if column else ""
    return f"{f.severity.upper()} {f.code}{where}: {f.sentence}"


def audit_gate(cfg: Any, source: Any) -> list[str]:
    """Audit ``source`` (the data of ``cfg``); returns the high findings let through, one line each.

    Raises:
        LeakyDataError: A high-severity finding and ``cfg.allow_leaky`` is False.
    """
    report = cached_audit(source)
    highs = [f for f in report.findings if f.severity == "high"]
    if highs and not cfg.allow_leaky:
        more = f" (and {len(highs) - 1} more high findings)" if len(highs) > 1 else ""
        raise LeakyDataError(
            f"{source.path}: leakage audit found {finding_line(highs[0])}{more} Training refuses "
            f"to start: fix the data (see `astroreason data audit {source.path}`), or pass "
            "--allow-leaky to train anyway with the finding written into the experiment log."
        )
    return [finding_line(f) for f in highs]
