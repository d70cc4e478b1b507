"""Integration: the real vLLM CPU server, the tiny Qwen3-VL, the rollout runner, traces and resume."""

import os
import signal
import subprocess
import sys
import time

import gymnasium
import pytest

import astroreason.envs  # noqa: F401
from astroreason.envs import GALAXY_ID
from astroreason.policies import OraclePolicy, Policy
from astroreason.policies.openai_chat import OpenAIChatPolicy, SamplingConfig
from astroreason.rollout import RolloutConfig, run_rollouts
from astroreason.traces import TRACES_FILE, read_traces

pytestmark = pytest.mark.slow


class LookThenModel(Policy):
    """The oracle's first look (a crop), then the served model: forces an image into a tool message."""

    def __init__(self, model: Policy):
        self.model, self.first = model, OraclePolicy()
        self.name = f"look-then:{model.name}"

    async def act(self, info):
        if not info["tool_calls"]:
            return await self.first.act(info)
        return await self.model.act(info)

    async def aclose(self):
        await self.model.aclose()


def test_eight_episodes_through_vllm(vllm_server, galaxy_file, tmp_path):
    sampling = SamplingConfig(
        temperature=1.0, max_tokens=24, seed=0, return_token_ids=True, logprobs=True
    )
    pol = LookThenModel(
        OpenAIChatPolicy(vllm_server.base_url, vllm_server.model_name, sampling=sampling)
    )

    def make():
        return gymnasium.make(
            GALAXY_ID, data=str(galaxy_file), split="all", view_size=64, max_turns=3
        )

    s = run_rollouts(make, pol, tmp_path, RolloutConfig(episodes=8, concurrency=4, progress=False))
    recs = list(read_traces(tmp_path))
    assert s.written == 8 and len({r["id"] for r in recs}) == 8
    for r in recs:
        assert 2 <= r["metrics"]["turns"] <= 3
        roles = [m["role"] for m in r["logs"]["messages"]]
        tool = r["logs"]["messages"][roles.index("tool")]
        assert (
            tool["content"][0]["type"] == "image"
            and (tmp_path / tool["content"][0]["path"]).exists()
        )
        assert r["metrics"]["prompt_tokens"] > 0 and r["metrics"]["completion_tokens"] > 0
        assert len(r["logs"]["replies"]) == r["metrics"]["turns"]


def test_killed_run_resumes_without_duplicates(vllm_server, galaxy_file, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "astroreason",
        "rollout",
        "--data",
        str(galaxy_file),
        "--split",
        "all",
        "--episodes",
        "8",
        "--concurrency",
        "1",
        "--policy",
        "openai",
        "--base-url",
        vllm_server.base_url,
        "--model",
        vllm_server.model_name,
        "--max-turns",
        "3",
        "--view-size",
        "64",
        "--max-tokens",
        "64",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "120"}
    )
    traces = tmp_path / TRACES_FILE
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if traces.exists() and traces.read_text().count("\n") >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(read_traces(tmp_path)))
    assert 3 <= done_before < 8
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    ids = [r["id"] for r in read_traces(tmp_path)]
    assert len(ids) == len(set(ids)) == 8


def test_tokens_episodes_through_vllm(vllm_server, galaxy_file, tmp_path):
    """``obs=tokens``: text-only prompts with codec ids reach the served model, whose replies the
    env reads; the zoom's tokens come back in a tool message (no image anywhere)."""
    sampling = SamplingConfig(temperature=1.0, max_tokens=16, seed=0)
    pol = LookThenModel(
        OpenAIChatPolicy(vllm_server.base_url, vllm_server.model_name, sampling=sampling)
    )

    def make():
        return gymnasium.make(
            GALAXY_ID,
            data=str(galaxy_file),
            split="all",
            view_size=64,
            max_turns=3,
            max_tool_calls=1,
            obs="tokens",
        )

    s = run_rollouts(make, pol, tmp_path, RolloutConfig(episodes=4, concurrency=4, progress=False))
    recs = list(read_traces(tmp_path))
    assert s.written == 4
    for r in recs:
        kinds = [
            b["type"]
            for m in r["logs"]["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
        ]
        assert "image" not in kinds and kinds.count("tokens") == 2
        # the ids are in the prompt the server counted: far more than the pixel prompt's
        assert r["metrics"]["prompt_tokens"] > 2 * 64 and len(r["logs"]["replies"]) >= 2


def test_the_server_names_the_folder_it_serves(vllm_server, tiny_model_dir):
    """eval/rollout find a served checkpoint's settings through vLLM's /v1/models ``root``."""
    from pathlib import Path

    from astroreason.checkpoint_settings import served_model_folder, settings_for

    folder = served_model_folder(vllm_server.base_url, "tiny")
    assert folder is not None and folder.resolve() == Path(tiny_model_dir).resolve()
    assert served_model_folder(vllm_server.base_url, "other-name") is None
    assert served_model_folder("http://127.0.0.1:9/v1", "tiny", timeout=1) is None  # no server
    assert settings_for("openai", "tiny", vllm_server.base_url) == (None, str(folder))
