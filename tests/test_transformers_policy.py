"""The local transformers policy drives real multi-turn episodes with the tiny Qwen3-VL."""

import gymnasium

import astroreason.envs  # noqa: F401
from astroreason.envs import GALAXY_ID
from astroreason.policies.openai_chat import SamplingConfig
from astroreason.policies.transformers_local import TransformersPolicy
from astroreason.rollout import RolloutConfig, run_rollouts
from astroreason.traces import read_traces


def test_batched_local_generation_through_the_runner(tiny_model_dir, galaxy_file, tmp_path):
    pol = TransformersPolicy(
        str(tiny_model_dir), sampling=SamplingConfig(temperature=1.0, max_tokens=12), batch_size=4
    )

    def make():
        return gymnasium.make(
            GALAXY_ID, data=str(galaxy_file), split="all", view_size=64, max_turns=2
        )

    s = run_rollouts(make, pol, tmp_path, RolloutConfig(episodes=4, concurrency=4, progress=False))
    recs = list(read_traces(tmp_path))
    assert s.written == 4 and len(recs) == 4
    for r in recs:
        assert r["metrics"]["turns"] >= 1
        assert r["metrics"]["completion_tokens"] > 0 and r["metrics"]["prompt_tokens"] > 20
        assert len(r["logs"]["replies"]) == r["metrics"]["turns"]
