"""Grading and reward: one pure ``grade`` used by training rewards and evaluation alike."""

from __future__ import annotations

from dataclasses import dataclass


def grade(prediction: int | None, label: int) -> float:
    """1.0 when the predicted class index equals the label, else 0.0 (no answer counts as wrong).

    >>> grade(3, 3), grade(2, 3), grade(None, 3)
    (1.0, 0.0, 0.0)
    """
    return 1.0 if prediction is not None and int(prediction) == int(label) else 0.0


@dataclass(frozen=True)
class RewardConfig:
    """How an episode is scored. The return is the sum of the per-step rewards.

    Attributes:
        correct: Paid once for a correct final answer (times ``grade``).
        call_cost: Charged per tool call (a small cost keeps the model from calling tools for show).
        format_penalty: Charged per invalid reply (bad format, bad tool arguments, unknown class).
        tool_bonus: Paid at the end when the answer is correct and at least one tool call succeeded
            (never for a wrong answer, so looking is not rewarded for its own sake).
        truncation_reward: Paid when the episode hits ``max_turns`` without an answer.
    """

    correct: float = 1.0
    call_cost: float = 0.02
    format_penalty: float = 0.1
    tool_bonus: float = 0.0
    truncation_reward: float = 0.0

    def final(self, prediction: int | None, label: int, successful_calls: int) -> float:
        """Reward of the answering step."""
        g = grade(prediction, label)
        bonus = self.tool_bonus if g > 0 and successful_calls > 0 else 0.0
        return self.correct * g + bonus
