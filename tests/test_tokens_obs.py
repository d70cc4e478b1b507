"""The ``tokens`` observation: galaxies shown as image-codec ids in text, in every condition."""

import json
import re

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from test_envs import run_episode

import astroreason.envs  # noqa: F401 - registers the ids
from astroreason.chat import images_of, to_chat
from astroreason.codecs import open_codec, parse_tokens_text, tokens_text
from astroreason.conditions import CONDITIONS
from astroreason.envs import GALAXY_ID
from astroreason.envs.galaxy import matched_side
from astroreason.errors import ConfigError
from astroreason.policies import OraclePolicy, RandomPolicy
from astroreason.protocol import format_tool_call
from astroreason.tools import overview

ZOOM = format_tool_call("zoom", {"center": [500, 500], "factor": 3})


@pytest.fixture(scope="module")
def codec():
    return open_codec("tiny-vq")


def make(galaxy_file, condition="tools", **kw):
    kw = {"view_size": 64, "max_tool_calls": 1, "obs": "tokens", **kw}
    return gymnasium.make(GALAXY_ID, data=str(galaxy_file), split="all", condition=condition, **kw)


def blocks(message, kind):
    content = message["content"]
    return [b for b in content if b.get("type") == kind] if isinstance(content, list) else []


def all_blocks(messages, kind):
    return [b for m in messages for b in blocks(m, kind)]


def test_the_model_reads_token_ids_of_each_view_and_no_image(galaxy_file, codec):
    env = make(galaxy_file)
    _, info = env.reset(seed=0, options={"index": 3})
    msgs = info["messages"]
    assert codec.name in msgs[0]["content"] and "token ids" in msgs[0]["content"]
    assert images_of(msgs) == []  # no pixels reach the model
    (tok,) = blocks(msgs[1], "tokens")
    u = env.unwrapped
    shown = overview(np.asarray(u.source[int(u.rows[3])].image), 64)[0]
    grid = codec.encode(shown)
    assert tok["shape"] == [64 // codec.patch] * 2
    assert tok["text"].strip() == tokens_text(grid)
    assert np.array_equal(parse_tokens_text(tok["text"], tuple(tok["shape"])), grid)
    assert np.array_equal(tok["image"], codec.decode(grid))
    # what a model stack receives: text blocks only, the ids first
    chat = to_chat(msgs, lambda image: pytest.fail("no image block expected"))
    assert [b["type"] for b in chat[1]["content"]] == ["text", "text"]
    assert chat[1]["content"][0]["text"].startswith("<v")

    _, _, _, _, info = env.step(ZOOM)
    tool = info["messages"][-1]
    (view,) = blocks(tool, "tokens")
    assert view["shape"] == tok["shape"] and view["text"] != tok["text"]
    assert images_of(info["messages"]) == []
    assert len(images_of(info["messages"], decoded=True)) == 2


def test_conditions_hold_in_tokens(galaxy_file, codec):
    n = (64 // codec.patch) ** 2
    over = {}
    for cond in ("tools", "blank-tools", "reinput", "random-view", "blind", "no-tools-matched"):
        env = make(galaxy_file, cond)
        _, info = env.reset(seed=1, options={"index": 5})
        first = all_blocks(info["messages"], "tokens")
        if cond == "blind":
            assert first == [] and images_of(info["messages"], decoded=True) == []
            continue
        over[cond] = first[0]["text"]
        if cond == "no-tools-matched":
            side = matched_side(64, 1, 128, codec.patch)
            assert first[0]["shape"] == [side // codec.patch] * 2
            # the token budget of a tool run (overview + one view), to within one row of tokens
            assert abs(np.prod(first[0]["shape"]) - 2 * n) <= 2 * (side // codec.patch)
            continue
        _, _, _, _, info = env.step(ZOOM)
        view = blocks(info["messages"][-1], "tokens")[0]
        if cond == "blank-tools":
            blank = codec.encode(np.zeros((64, 64, 3), np.uint8))
            assert view["text"].strip() == tokens_text(blank)
        elif cond == "reinput":
            assert view["text"] == first[0]["text"]
        else:
            assert view["text"] != first[0]["text"]
    # every condition that shows the overview shows the same tokens of it
    assert over["tools"] == over["blank-tools"] == over["reinput"] == over["random-view"]


@pytest.mark.parametrize("condition", CONDITIONS)
def test_check_env_tokens(galaxy_file, condition):
    check_env(make(galaxy_file, condition).unwrapped, skip_render_check=False)


@pytest.mark.parametrize("condition", ("tools", "no-tools-matched", "random-view"))
def test_tokens_come_from_pixels_only(galaxy_file, codec, condition):
    """No row index, id or metadata value reaches a message: the ids are the codec's of the view."""
    env = make(galaxy_file, condition)
    for i in range(0, 60, 7):
        for pol in (OraclePolicy(), RandomPolicy(seed=2, tool_prob=1.0)):
            info = run_episode(env, pol, i)
            for b in all_blocks(info["messages"], "tokens"):
                grid = parse_tokens_text(b["text"], tuple(b["shape"]))
                assert grid.min() >= 0 and grid.max() < codec.vocab_size
                assert np.array_equal(codec.decode(grid), b["image"])
            rest = [
                {**m, "content": [b for b in m["content"] if b.get("type") != "tokens"]}
                if isinstance(m["content"], list)
                else m
                for m in info["messages"]
            ]
            text = json.dumps(rest, default=lambda o: "<image>")
            row = info["episode"]["row_id"]
            assert str(galaxy_file) not in text and galaxy_file.name not in text
            if row >= 10:
                assert not re.search(rf"(?<![\d.]){row}(?!\d)", text), row


def test_bad_tokens_settings_are_one_line_errors(galaxy_file):
    with pytest.raises(ConfigError, match="obs: unknown 'words'"):
        make(galaxy_file, obs="words")
    with pytest.raises(ConfigError, match="view_size: 60 is not a multiple"):
        make(galaxy_file, view_size=60)
    with pytest.raises(ConfigError, match="codec"):
        make(galaxy_file, codec="no-such-codec")


def test_rollout_cli_tokens_writes_decoded_views_and_the_viewer_shows_them(
    galaxy_file, tmp_path, capsys
):
    from astroreason.cli import main
    from astroreason.eval.viewer import write_viewer
    from astroreason.traces import read_traces

    out = tmp_path / "run"
    main(
        [
            "rollout",
            "--data",
            str(galaxy_file),
            "--out",
            str(out),
            "--policy",
            "oracle",
            "--obs",
            "tokens",
            "--view-size",
            "64",
            "--max-tool-calls",
            "1",
            "--episodes",
            "4",
            "--split",
            "all",
        ]
    )
    recs = list(read_traces(out))
    assert len(recs) == 4
    for r in recs:
        toks = [b for m in r["logs"]["messages"] for b in blocks(m, "tokens")]
        assert len(toks) == 1 + r["metrics"]["ok_tool_calls"] >= 2
        for b in toks:
            assert (out / b["path"]).is_file() and b["shape"] == [8, 8]
            assert b["text"].strip().startswith("<v")
        assert not any(blocks(m, "image") for m in r["logs"]["messages"])
    page = write_viewer(out).read_text()
    assert page.count('alt="decoded tokens"') == sum(
        len([b for m in r["logs"]["messages"] for b in blocks(m, "tokens")]) for r in recs
    )
    assert 'class="ids"' in page and "<svg" in page  # footprints drawn over the decoded overview


def test_cli_refuses_tokens_for_spectra(spectra_dir, tmp_path, capsys):
    from astroreason.cli import main

    with pytest.raises(SystemExit) as e:
        main(
            [
                "rollout",
                "--data",
                str(spectra_dir),
                "--env",
                "spectrum",
                "--out",
                str(tmp_path),
                "--policy",
                "oracle",
                "--obs",
                "tokens",
            ]
        )
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pixels only" in err[0]


def test_eval_report_says_the_observation_was_tokens(galaxy_file, tmp_path):
    from fakesources import cli_eval

    out = cli_eval(
        tmp_path / "ev",
        galaxy_file,
        "oracle",
        "--obs",
        "tokens",
        "--view-size",
        "64",
        "--episodes",
        "2",
    )
    setup = json.loads((out / "metrics.json").read_text())["setup"]
    assert (setup["observation"], setup["codec"]) == ("tokens", "tiny-vq")
    assert "observation: <b>tokens (codec tiny-vq)</b>" in (out / "report.html").read_text()
