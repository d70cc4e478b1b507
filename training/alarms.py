"""Alarm rules of a training run: pure checks of metric series, each an alarm message or None.

:class:`~astroreason.training.monitor.TrainingMonitor` runs them on what the trainer logs and
raises the alarms (loud on stderr, one line in ``STAGE_DIR/alarms.log``). Tested on planted
failures.
"""

from __future__ import annotations

from collections.abc import Sequence


def check_loss_collapse(
    steps: Sequence[int],
    losses: Sequence[float],
    factor: float = 4.0,
    window: int = 100,
    floor: float = 0.1,
) -> str | None:
    """Alarm when a positive loss fell by ``factor`` or more within ``window`` steps, to below ``floor``.

    >>> check_loss_collapse([1, 2, 3], [2.0, 1.9, 1.8]) is None
    True
    >>> check_loss_collapse([1, 2, 3], [2.0, 1.0, 0.05]) is not None
    True
    >>> check_loss_collapse([1, 2, 3], [7.0, 2.0, 0.5]) is None  # the format learnt, not a leak
    True
    """
    if len(losses) < 2:
        return None
    s_now, l_now = steps[-1], losses[-1]
    if l_now >= floor:
        return None
    for s, value in zip(steps[:-1], losses[:-1], strict=True):
        if s_now - s <= window and value > 1e-8 and l_now >= 0 and l_now * factor <= value:
            return (
                f"loss collapsed {value:.4g} -> {l_now:.4g} (x{value / max(l_now, 1e-12):.0f}) "
                f"between steps {s} and {s_now}: memorising, a leak, or a broken mask?"
            )
    return None


def check_accuracy_ceiling(accuracy: float, ceiling: float = 0.90) -> str | None:
    """Alarm when validation accuracy is above ``ceiling`` (too good to be true here).

    >>> check_accuracy_ceiling(0.95) is not None, check_accuracy_ceiling(0.5) is None
    (True, True)
    """
    if accuracy > ceiling:
        return (
            f"validation accuracy {accuracy:.3f} is above the ceiling {ceiling:.2f}: "
            "check for leakage (ids, file order, duplicates across splits) before believing it"
        )
    return None


def check_tool_collapse(rates: Sequence[float], patience: int = 3) -> str | None:
    """Alarm when tool calls per episode were positive and the last ``patience`` logs are zero.

    >>> check_tool_collapse([1.0, 0.8, 0.0, 0.0, 0.0]) is not None
    True
    >>> check_tool_collapse([0.0, 0.0, 0.0]) is None
    True
    """
    if len(rates) <= patience or max(rates[:-patience]) <= 0:
        return None
    if all(r == 0 for r in rates[-patience:]):
        return (
            f"tool calls per episode collapsed to 0 for {patience} logs "
            f"(was up to {max(rates[:-patience]):.2f}): the policy stopped looking"
        )
    return None


def check_invalid_rise(rates: Sequence[float], rise: float = 0.25, k: int = 3) -> str | None:
    """Alarm when the mean invalid-action rate of the last ``k`` logs exceeds the first ``k``'s by ``rise``.

    >>> check_invalid_rise([0.0, 0.1, 0.0, 0.5, 0.6, 0.7]) is not None
    True
    >>> check_invalid_rise([0.1, 0.1, 0.1, 0.1, 0.1, 0.1]) is None
    True
    """
    if len(rates) < 2 * k:
        return None
    first = sum(rates[:k]) / k
    last = sum(rates[-k:]) / k
    if last - first > rise:
        return f"invalid-action rate rose from {first:.2f} to {last:.2f}: format drift"
    return None


def check_val_drop(start: float, final: float, start_step: int = 0) -> str | None:
    """Alarm when a stage's last validation accuracy ended below its first (the start model's).

    >>> check_val_drop(0.5, 0.25) is not None, check_val_drop(0.5, 0.5) is None
    (True, True)
    """
    if final < start:
        return (
            f"final validation accuracy {final:.3f} is below its start {start:.3f} (step "
            f"{start_step}): this stage made the model worse on the val split"
        )
    return None
