import json

import gymnasium
import pytest
from stub_server import StubChatServer

import astroreason.envs  # noqa: F401
from astroreason.envs import GALAXY_ID
from astroreason.errors import AstroReasonError
from astroreason.policies import OraclePolicy
from astroreason.policies.openai_chat import OpenAIChatPolicy
from astroreason.protocol import format_tool_call
from astroreason.rollout import RolloutConfig, run_rollouts
from astroreason.traces import TRACES_FILE, read_traces


def factory(path, **kw):
    return lambda: gymnasium.make(GALAXY_ID, data=str(path), split="test", view_size=32, **kw)


def ids(run_dir):
    return [r["id"] for r in read_traces(run_dir)]


def test_oracle_rollout_writes_complete_traces(galaxy_file, tmp_path):
    s = run_rollouts(
        factory(galaxy_file), OraclePolicy(), tmp_path, RolloutConfig(concurrency=3, progress=False)
    )
    recs = list(read_traces(tmp_path))
    assert len(recs) == s.planned == s.written and len({r["id"] for r in recs}) == len(recs)
    for r in recs:
        assert r["correct"] and r["metrics"]["tool_calls"] == 1
        paths = [
            b["path"]
            for m in r["logs"]["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b["type"] == "image"
        ]
        assert len(paths) == 2 and all((tmp_path / p).exists() for p in paths)
        assert r["logs"]["views"][1]["kind"] == "crop"


def test_resume_no_duplicates_no_losses(galaxy_file, tmp_path):
    first = run_rollouts(
        factory(galaxy_file), OraclePolicy(), tmp_path, RolloutConfig(episodes=3, progress=False)
    )
    assert first.written == 3
    with open(tmp_path / TRACES_FILE, "a") as f:  # a run killed mid-write leaves a torn line
        f.write('{"id": "torn')
    second = run_rollouts(
        factory(galaxy_file), OraclePolicy(), tmp_path, RolloutConfig(progress=False)
    )
    assert second.already_done == 3 and second.written == second.planned - 3
    all_ids = ids(tmp_path)
    assert len(all_ids) == len(set(all_ids)) == second.planned


def test_environments_made_follow_the_episodes_left_not_the_concurrency(galaxy_file, tmp_path):
    made = []

    def counting():
        made.append(1)
        return factory(galaxy_file)()

    cfg = RolloutConfig(episodes=3, concurrency=1024, progress=False)
    assert run_rollouts(counting, OraclePolicy(), tmp_path, cfg).written == 3
    assert len(made) == 3
    made.clear()  # nothing left to run: one environment, to read the plan
    assert run_rollouts(counting, OraclePolicy(), tmp_path, cfg).written == 0
    assert len(made) == 1
    with pytest.raises(AstroReasonError, match="concurrency: must be at most 1024, got 1025"):
        RolloutConfig(concurrency=1025)


def _two_turn_reply(body):
    """Zoom first, then answer: exercises images inside tool messages."""
    if not any(m["role"] == "tool" for m in body["messages"]):
        return format_tool_call("zoom", {"center": [500, 500], "factor": 2})
    return "<answer>Merging</answer>"


def test_openai_policy_sends_images_in_tool_messages(galaxy_file, tmp_path):
    bodies = []

    def reply(body):
        bodies.append(body)
        return _two_turn_reply(body)

    with StubChatServer(reply) as srv:
        pol = OpenAIChatPolicy(srv.base_url, "stub")
        run_rollouts(factory(galaxy_file), pol, tmp_path, RolloutConfig(episodes=2, progress=False))
    second = [b for b in bodies if any(m["role"] == "tool" for m in b["messages"])][0]
    tool_msg = [m for m in second["messages"] if m["role"] == "tool"][0]
    assert tool_msg["content"][0]["type"] == "image_url"
    assert tool_msg["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assistant = [m for m in second["messages"] if m["role"] == "assistant"][0]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {
        "center": [500, 500],
        "factor": 2,
    }
    assert [t["function"]["name"] for t in second["tools"]] == ["zoom", "crop"]
    recs = list(read_traces(tmp_path))
    assert len(recs) == 2 and all(r["metrics"]["tool_calls"] == 1 for r in recs)


def test_transient_errors_are_retried(galaxy_file, tmp_path):
    with StubChatServer(_two_turn_reply, mode="flaky", fail_first=3) as srv:
        pol = OpenAIChatPolicy(srv.base_url, "stub", backoff_s=0.01)
        s = run_rollouts(
            factory(galaxy_file),
            pol,
            tmp_path,
            RolloutConfig(episodes=2, concurrency=1, progress=False),
        )
    assert s.written == 2 and srv.requests == 3 + 4


@pytest.mark.parametrize("mode", ["error500", "garbage"])
def test_broken_server_stops_the_run_cleanly(galaxy_file, tmp_path, mode):
    with StubChatServer(_two_turn_reply, mode=mode) as srv:
        pol = OpenAIChatPolicy(srv.base_url, "stub", backoff_s=0.01, max_retries=1)
        with pytest.raises(AstroReasonError, match="rerun the same command to resume"):
            run_rollouts(
                factory(galaxy_file), pol, tmp_path, RolloutConfig(episodes=2, progress=False)
            )


def test_client_timeout(galaxy_file, tmp_path):
    with StubChatServer(_two_turn_reply, mode="slow", delay_s=1.0) as srv:
        pol = OpenAIChatPolicy(srv.base_url, "stub", timeout_s=0.2, backoff_s=0.01, max_retries=1)
        with pytest.raises(AstroReasonError, match="ReadTimeout"):
            run_rollouts(
                factory(galaxy_file), pol, tmp_path, RolloutConfig(episodes=1, progress=False)
            )


def test_server_dies_mid_run_then_resume(galaxy_file, tmp_path):
    srv = StubChatServer(lambda b: "<answer>Merging</answer>").start()
    calls = {"n": 0}
    orig = srv.reply

    def dying(body):
        calls["n"] += 1
        if calls["n"] == 4:
            srv.dead = True
        return orig(body)

    srv.reply = dying
    pol = OpenAIChatPolicy(srv.base_url, "stub", backoff_s=0.01, max_retries=2)
    with pytest.raises(AstroReasonError, match="rollout stopped"):
        run_rollouts(
            factory(galaxy_file), pol, tmp_path, RolloutConfig(concurrency=1, progress=False)
        )
    srv.stop()
    saved = ids(tmp_path)
    assert 1 <= len(saved) <= 4
    with StubChatServer(lambda b: "<answer>Merging</answer>") as srv2:
        pol = OpenAIChatPolicy(srv2.base_url, "stub")
        s = run_rollouts(factory(galaxy_file), pol, tmp_path, RolloutConfig(progress=False))
    final = ids(tmp_path)
    assert len(final) == len(set(final)) == s.planned and set(saved) <= set(final)


def test_run_folder_refuses_another_policy(galaxy_file, tmp_path):
    from astroreason.policies import RandomPolicy

    run_rollouts(
        factory(galaxy_file), OraclePolicy(), tmp_path, RolloutConfig(episodes=1, progress=False)
    )
    with pytest.raises(AstroReasonError, match="policy='oracle'"):
        run_rollouts(
            factory(galaxy_file),
            RandomPolicy(),
            tmp_path,
            RolloutConfig(episodes=1, progress=False),
        )


def test_cli_rollout_and_bad_input(galaxy_file, tmp_path, capsys):
    from astroreason.cli import main

    main(
        [
            "rollout",
            "--data",
            str(galaxy_file),
            "--out",
            str(tmp_path / "r"),
            "--policy",
            "oracle",
            "--episodes",
            "3",
        ]
    )
    assert len(ids(tmp_path / "r")) == 3
    assert all(t["metrics"]["invalid_actions"] == 0 for t in read_traces(tmp_path / "r"))
    # --max-tool-calls reaches the env: the oracle's one zoom is then over the limit
    main(
        [
            "rollout",
            "--data",
            str(galaxy_file),
            "--out",
            str(tmp_path / "r0"),
            "--policy",
            "oracle",
            "--episodes",
            "3",
            "--max-tool-calls",
            "0",
        ]
    )
    assert all(t["metrics"]["invalid_actions"] >= 1 for t in read_traces(tmp_path / "r0"))
    for args, needle in (
        (["--data", str(tmp_path / "missing.h5")], "no such file"),
        (["--data", str(galaxy_file), "--condition", "peek"], "unknown 'peek'"),
        (["--data", str(galaxy_file), "--policy", "openai"], "needs --base-url"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["rollout", "--out", str(tmp_path / "x"), *args])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and err.startswith("error:") and needle in err and "\n" not in err


def test_request_payload_is_the_json_of_request_body(galaxy_file):
    from astroreason.policies.openai_chat import SamplingConfig

    env = factory(galaxy_file)()
    _, info = env.reset(seed=0, options={"index": 0})
    _, _, _, _, info = env.step(format_tool_call("zoom", {"center": [500, 500], "factor": 2}))
    sampling = SamplingConfig(seed=3, logprobs=True, return_token_ids=True)
    pol = OpenAIChatPolicy("http://127.0.0.1:9/v1", "m", sampling=sampling)
    payload = pol.request_payload(info)
    assert payload == json.dumps(pol.request_body(info)).encode()
    assert payload.count(b"data:image/png;base64,") == 2
    assert pol.request_payload(info) == payload  # images come from the cache the second time
    echo = {"role": "user", "content": [{"type": "text", "text": f"say {pol._mark}"}]}
    info2 = dict(info, messages=[*info["messages"], echo])  # the mark in a text: no shortcut
    assert pol.request_payload(info2) == json.dumps(pol.request_body(info2)).encode()


def test_openai_policy_through_an_http_proxy(galaxy_file, tmp_path, monkeypatch):
    from astroreason.policies.openai_chat import _env_proxy

    for k in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(k, raising=False)
    with StubChatServer(_two_turn_reply) as proxy:  # a proxy gets absolute URLs: the stub answers
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        pol = OpenAIChatPolicy("http://model-server.invalid:8000/v1", "stub")
        cfg = RolloutConfig(episodes=2, progress=False)
        s = run_rollouts(factory(galaxy_file), pol, tmp_path, cfg)
        assert s.written == 2 and proxy.requests == 4
        monkeypatch.setenv("NO_PROXY", "model-server.invalid")
        assert _env_proxy(pol.url) is None


def test_run_rollouts_works_where_an_event_loop_already_runs(galaxy_file, tmp_path):
    """A notebook cell runs inside an event loop; asyncio.run would refuse there."""
    import asyncio

    from astroreason.sync import run_sync

    async def cell():
        cfg = RolloutConfig(episodes=4, concurrency=2, progress=False)
        return run_rollouts(factory(galaxy_file), OraclePolicy(), tmp_path, cfg)

    s = asyncio.run(cell())
    assert s.written == 4 and s.correct == 4 and len(ids(tmp_path)) == 4

    async def failing():
        raise ValueError("boom")

    async def cell2():
        return run_sync(failing())

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(cell2())
