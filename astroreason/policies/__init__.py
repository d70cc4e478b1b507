"""Policies: anything that turns a conversation into the model's next reply.

All share one async interface (:class:`~astroreason.policies.base.Policy`): scripted policies for tests and
SFT data, an OpenAI-compatible chat client (vLLM), and local transformers generation.
"""

from astroreason.policies.base import Policy, PolicyReply
from astroreason.policies.scripted import MajorityPolicy, OraclePolicy, RandomPolicy

__all__ = ["MajorityPolicy", "OraclePolicy", "Policy", "PolicyReply", "RandomPolicy"]
