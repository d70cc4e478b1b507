"""Run folders: nothing written outside --out, one writer at a time, no mixed settings on resume."""

import json
import subprocess
import sys

import gymnasium
import pytest
from stub_server import StubChatServer

import astroreason.envs  # noqa: F401
from astroreason.envs import GALAXY_ID
from astroreason.errors import AstroReasonError, ConfigError
from astroreason.policies import RandomPolicy
from astroreason.policies.openai_chat import OpenAIChatPolicy, SamplingConfig
from astroreason.rollout import RUN_FILE, RolloutConfig, run_rollouts
from astroreason.runlock import LOCK_FILE
from astroreason.traces import read_traces


def factory(path, condition="tools"):
    return lambda: gymnasium.make(
        GALAXY_ID, data=str(path), split="test", view_size=32, condition=condition
    )


CFG = RolloutConfig(episodes=2, concurrency=1, progress=False)


@pytest.mark.parametrize(
    "label",
    ["tools@../../x", "tools@/tmp/x", "tools@a/b", "tools@a\\b", "tools@..", "tools@a\x00b"],
)
def test_a_label_never_becomes_a_path_outside_the_run(galaxy_file, tmp_path, capsys, label):
    from astroreason.cli import main

    out = tmp_path / "runs" / "d"
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--data", str(galaxy_file), "--policy", "random", "--conditions", label]
             + ["--episodes", "2", "--out", str(out)])  # fmt: skip
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: condition: tag") and err.count("\n") == 1
    assert {p for p in tmp_path.rglob("*")} == before  # nothing written anywhere


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(galaxy_file, tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tmp_path.mkdir(exist_ok=True)
        lock = {"pid": owner.pid, "host": __import__("socket").gethostname(), "started": 0}
        (tmp_path / LOCK_FILE).write_text(json.dumps(lock))
        with pytest.raises(AstroReasonError, match=rf"another run \(pid {owner.pid} on"):
            run_rollouts(factory(galaxy_file), RandomPolicy(), tmp_path, CFG)
        assert not (tmp_path / "traces.jsonl").exists()
    finally:
        owner.kill()
        owner.wait()
    s = run_rollouts(factory(galaxy_file), RandomPolicy(), tmp_path, CFG)  # its owner is gone
    assert s.written == 2 and not (tmp_path / LOCK_FILE).exists()


def test_two_runs_started_together_write_each_episode_once(galaxy_file, tmp_path):
    """Two identical CLI rollouts into one folder: one runs, the other exits 2; no duplicates."""
    cmd = [sys.executable, "-m", "astroreason", "rollout", "--data", str(galaxy_file)]
    cmd += ["--policy", "oracle", "--split", "all", "--view-size", "32", "--out", str(tmp_path)]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = sorted(p.wait(timeout=300) for p in procs)
    errs = [p.stderr.read() for p in procs]
    ids = [r["id"] for r in read_traces(tmp_path)]
    assert len(ids) == len(set(ids)) == 60
    if codes == [0, 2]:  # they overlapped: the second said who holds the folder
        assert any("another run (pid" in e for e in errs)
    else:  # the first finished before the second began: the second found everything done
        assert codes == [0, 0]


def test_resume_under_other_sampling_is_refused(galaxy_file, tmp_path):
    with StubChatServer() as srv:
        greedy = OpenAIChatPolicy(srv.base_url, "stub", sampling=SamplingConfig(temperature=0.0))
        run_rollouts(factory(galaxy_file), greedy, tmp_path, CFG)
        hot = OpenAIChatPolicy(
            srv.base_url, "stub", sampling=SamplingConfig(temperature=0.9, max_tokens=32)
        )
        with pytest.raises(AstroReasonError, match="holds sampling=.*temperature=0.0"):
            run_rollouts(factory(galaxy_file), hot, tmp_path, RolloutConfig(episodes=4))
    assert len(list(read_traces(tmp_path))) == 2


def test_a_truncated_run_json_is_one_line(galaxy_file, tmp_path):
    run_rollouts(factory(galaxy_file), RandomPolicy(), tmp_path, CFG)
    (tmp_path / RUN_FILE).write_text('{"policy": "ran')
    with pytest.raises(AstroReasonError, match=r"run.json.*not readable JSON"):
        run_rollouts(factory(galaxy_file), RandomPolicy(), tmp_path, CFG)


def test_labels_with_safe_tags_still_work():
    from astroreason.conditions import check_condition

    assert check_condition("tools@grpo-2.b_1") == "tools@grpo-2.b_1"
    with pytest.raises(ConfigError, match="letters, digits"):
        check_condition("tools@" + "x" * 65)


@pytest.mark.parametrize(
    "flags, field",
    [
        (["--episodes", "-1"], "episodes"),
        (["--episodes", "0"], "episodes"),
        (["--concurrency", "0"], "concurrency"),
        (["--temperature", "-1"], "temperature"),
        (["--temperature", "nan"], "temperature"),
        (["--temperature", "inf"], "temperature"),
        (["--max-tokens", "0"], "max_tokens"),
    ],
)
@pytest.mark.parametrize("command", ["rollout", "eval"])
def test_bad_numbers_are_one_line_before_anything_runs(
    galaxy_file, tmp_path, capsys, command, flags, field
):
    from astroreason.cli import main

    with pytest.raises(SystemExit) as exc:
        main([command, "--data", str(galaxy_file), "--policy", "random", "--out", str(tmp_path / "o")]
             + flags)  # fmt: skip
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(f"error: {field}: must") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["rollout", "eval"])
def test_out_that_is_a_file_is_one_line(galaxy_file, tmp_path, capsys, command):
    from astroreason.cli import main

    (tmp_path / "f").write_text("x")
    with pytest.raises(SystemExit) as exc:
        main([command, "--data", str(galaxy_file), "--policy", "random", "--episodes", "2"]
             + ["--out", str(tmp_path / "f")])  # fmt: skip
    assert exc.value.code == 2
    assert capsys.readouterr().err == f"error: --out {tmp_path / 'f'}: is a file, not a folder\n"


def test_a_missing_model_folder_is_one_line(galaxy_file, tmp_path, capsys):
    from astroreason.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["rollout", "--data", str(galaxy_file), "--policy", "transformers", "--model"]
             + [str(tmp_path / "nope"), "--episodes", "1", "--out", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "is neither a local folder nor in the" in err
    assert err.count("\n") == 1


def test_serve_checks_model_and_port_before_vllm(tmp_path):
    import socket

    from astroreason.models.serving import ServeConfig, check_before_start

    with pytest.raises(ConfigError, match="neither a local folder"):
        check_before_start(ServeConfig(model=str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match="--port 70000: not a port"):
        check_before_start(ServeConfig(model=str(tmp_path), port=70000))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"--port {port}: cannot listen"):
            check_before_start(ServeConfig(model=str(tmp_path), port=port))
    check_before_start(ServeConfig(model=str(tmp_path), port=0))  # a folder and a free port: fine


@pytest.mark.parametrize(
    "message, text",
    [
        ("just a string", "just a string"),
        ({"content": "hi", "tool_calls": "zoom"}, "hi"),
        ({"content": None, "tool_calls": [{"function": "zoom(1,2)"}]}, "zoom(1,2)"),
        ({"content": 5, "tool_calls": [7]}, "7"),
        (None, ""),
    ],
)
def test_a_malformed_server_message_is_a_reply_not_a_crash(message, text):
    from astroreason.policies.openai_chat import reply_text

    assert reply_text(message) == text


def test_an_episode_with_malformed_messages_runs_to_its_end(galaxy_file, tmp_path):
    """The server answers with a string where the message belongs: the episode ends, invalid."""
    with StubChatServer(lambda body: ["not", "an", "object"], mode="message") as srv:
        pol = OpenAIChatPolicy(srv.base_url, "stub", sampling=SamplingConfig(temperature=0.0))
        s = run_rollouts(factory(galaxy_file), pol, tmp_path, CFG)
    recs = list(read_traces(tmp_path))
    assert s.written == 2 and all(r["prediction"] is None for r in recs)


def test_a_huge_reply_is_kept_only_up_to_the_cap(galaxy_file, tmp_path):
    from astroreason.traces import TRACE_TEXT_CAP

    with StubChatServer(lambda body: "x" * 2_000_000) as srv:
        pol = OpenAIChatPolicy(srv.base_url, "stub", sampling=SamplingConfig(temperature=0.0))
        run_rollouts(factory(galaxy_file), pol, tmp_path, RolloutConfig(episodes=1, progress=False))
    line = (tmp_path / "traces.jsonl").read_text()
    rec = json.loads(line)
    assert len(line) < 10 * TRACE_TEXT_CAP  # 2 MB per reply before
    assert rec["logs"]["replies"][0].endswith(
        f"[{2_000_000 - TRACE_TEXT_CAP} more characters not kept]"
    )
    assistant = [m for m in rec["logs"]["messages"] if m["role"] == "assistant"][0]
    assert len(str(assistant["content"])) < TRACE_TEXT_CAP + 200


def test_train_with_a_missing_model_or_a_broken_config_is_one_line(tmp_path, capsys):
    from astroreason.cli import main

    cases = [
        ["train", "sft", "--set", f"model={tmp_path / 'nope'}", "--set", "bootstrap_tiny=false"],
        ["train", "grpo", "--set", "per_device_batch_size=0"],
    ]
    bad = tmp_path / "bad.py"
    bad.write_text("from astroreason.training.config import TrainConfig\nCONFIG = TrainConfig(\n")
    cases.append(["train", "sft", "--config", str(bad)])
    wants = ["is neither a local folder", "per_device_batch_size: must be at least 1",
             f"config: {bad}, line 2"]  # fmt: skip
    for args, want in zip(cases, wants, strict=True):
        with pytest.raises(SystemExit) as exc:
            main(args)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and want in err and err.count("\n") == 1, (args, err)
