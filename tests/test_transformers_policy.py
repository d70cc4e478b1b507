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


def test_shipped_checkpoint_zooms_on_the_galaxy_and_answers(tmp_path, capsys):
    """``checkpoints/tiny-galaxy-agent`` works before anyone trains, run as the README runs it (no
    flags: its ``astroreason.json`` sets view 64, one tool call, 48 tokens, greedy): valid replies,
    zooms on target."""
    from pathlib import Path

    from astroreason.cli import main
    from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file
    from astroreason.targets import episode_on_target

    ckpt = Path(__file__).resolve().parents[1] / "checkpoints" / "tiny-galaxy-agent"
    data = tmp_path / "unseen.h5"  # other seed: galaxies the checkpoint never saw
    write_galaxy_file(data, GalaxySynthConfig(n=30, size=256, seed=11), progress=False)
    run = tmp_path / "run"
    main(
        ["rollout", "--data", str(data), "--split", "all", "--policy", "transformers"]
        + ["--model", str(ckpt), "--episodes", "30", "--out", str(run)]
    )
    assert "max_tool_calls=1 view_size=64 temperature=0.0 max_tokens=48" in capsys.readouterr().err
    recs = list(read_traces(run))
    assert len(recs) == 30
    assert all(r["metrics"]["invalid_actions"] == 0 and r["prediction"] is not None for r in recs)
    assert all(r["metrics"]["ok_tool_calls"] == 1 for r in recs)
    on_target = sum(bool(episode_on_target(r)) for r in recs)
    assert on_target >= 24, (
        f"{on_target}/30 zooms on the galaxy (79% on the demo's 400 test galaxies)"
    )
