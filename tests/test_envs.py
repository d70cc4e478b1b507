import asyncio
import json
import re

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import astroreason.envs  # noqa: F401 - registers the ids
from astroreason.conditions import CONDITIONS
from astroreason.data import open_source
from astroreason.envs import GALAXY_ID, SPECTRUM_ID
from astroreason.errors import ConfigError
from astroreason.policies import MajorityPolicy, OraclePolicy, RandomPolicy
from astroreason.protocol import format_answer, format_tool_call


def run_episode(env, policy, index):
    obs, info = env.reset(seed=index, options={"index": index})
    done = False
    while not done:
        reply = asyncio.run(policy.act(info))
        obs, reward, term, trunc, info = env.step(reply.text)
        done = term or trunc
    return info


def accuracy(env, policy):
    n = len(env.unwrapped.rows)
    return np.mean([bool(run_episode(env, policy, i)["correct"]) for i in range(n)])


@pytest.fixture(params=["galaxy", "spectrum"])
def env_args(request, galaxy_file, spectra_dir):
    if request.param == "galaxy":
        return GALAXY_ID, {"data": str(galaxy_file), "view_size": 64}
    return SPECTRUM_ID, {
        "data": str(spectra_dir),
        "task": "subclass",
        "view_width": 256,
        "view_height": 128,
    }


@pytest.mark.parametrize("condition", CONDITIONS)
def test_check_env_every_condition(env_args, condition):
    env_id, kw = env_args
    env = gymnasium.make(env_id, split="all", condition=condition, **kw)
    check_env(env.unwrapped, skip_render_check=False)


def test_same_seed_same_episode(env_args):
    env_id, kw = env_args
    a = gymnasium.make(env_id, split="all", **kw)
    b = gymnasium.make(env_id, split="all", **kw)
    oa, ia = a.reset(seed=7)
    ob, ib = b.reset(seed=7)
    assert np.array_equal(oa["image"], ob["image"]) and ia["episode"] == ib["episode"]
    pol = RandomPolicy(seed=1, tool_prob=1.0)
    for env, info in ((a, ia), (b, ib)):
        env.step(asyncio.run(pol.act(info)).text)
    assert np.array_equal(a.unwrapped.render(), b.unwrapped.render())


def test_make_vec(galaxy_file):
    envs = gymnasium.make_vec(
        GALAXY_ID,
        num_envs=2,
        vectorization_mode="sync",
        data=str(galaxy_file),
        split="test",
        view_size=64,
    )
    obs, infos = envs.reset(seed=0)
    assert obs["image"].shape == (2, 64, 64, 3)
    obs, rew, term, trunc, infos = envs.step([format_answer("Merging"), "nonsense"])
    assert term[0] and not term[1]
    envs.close()


def test_oracle_near_perfect_random_near_chance(env_args):
    env_id, kw = env_args
    env = gymnasium.make(env_id, split="all", **kw)
    n_classes = len(env.unwrapped.class_names)
    assert accuracy(env, OraclePolicy()) == 1.0
    rnd = accuracy(env, RandomPolicy(seed=0))
    assert rnd < 1 / n_classes + 0.25
    labels = env.unwrapped.source.labels()
    maj = int(np.bincount(labels).argmax())
    assert accuracy(env, MajorityPolicy(maj)) == pytest.approx(np.mean(labels == maj))


def test_oracle_uses_one_tool_call_and_crop_is_on_target(galaxy_file):
    env = gymnasium.make(GALAXY_ID, data=str(galaxy_file), split="all", view_size=64)
    info = run_episode(env, OraclePolicy(), 3)
    assert [c["name"] for c in info["tool_calls"]] == ["crop"] and info["tool_calls"][0]["ok"]
    x0, y0, x1, y1 = info["views"][1]["footprint"]
    bx0, by0, bx1, by1 = info["ground_truth"]["bbox"]
    assert x0 <= bx0 + 1 and y0 <= by0 + 1 and x1 >= bx1 - 1 and y1 >= by1 - 1
    assert (x1 - x0) < 128  # a real zoom, not the whole field


@pytest.mark.parametrize("tool", ["crop", "zoom"])
def test_oracle_on_a_coarse_grid_stays_on_target(galaxy_file, tool):
    from astroreason.targets import on_target

    env = gymnasium.make(GALAXY_ID, data=str(galaxy_file), split="all", view_size=64)
    oracle = OraclePolicy(tool=tool, grid=50)
    assert oracle.name == f"oracle-{tool}-grid50"
    for i in range(10):
        info = run_episode(env, oracle, i)
        call = info["tool_calls"][0]
        assert call["name"] == tool and call["ok"] and info["correct"]
        numbers = call["arguments"]["center" if tool == "zoom" else "bbox_2d"]
        assert all(v % 50 == 0 for v in numbers), numbers
        views = info["views"]
        assert on_target(views[1]["footprint"], info["ground_truth"]["bbox"], views[0]["footprint"])
        if tool == "crop":  # snapped outward: the box still holds the galaxy
            x0, y0, x1, y1 = info["views"][1]["footprint"]
            bx0, by0, bx1, by1 = info["ground_truth"]["bbox"]
            assert x0 <= bx0 + 1 and y0 <= by0 + 1 and x1 >= bx1 - 1 and y1 >= by1 - 1
    with pytest.raises(ValueError, match="tool"):
        OraclePolicy(tool="stretch")


def test_conditions_change_only_what_they_should(galaxy_file):
    kw = {"data": str(galaxy_file), "split": "all", "view_size": 64}
    tools = gymnasium.make(GALAXY_ID, condition="tools", **kw)
    obs, info = tools.reset(seed=0, options={"index": 0})
    assert [t["function"]["name"] for t in info["tools"]] == ["zoom", "crop"]
    call = format_tool_call("zoom", {"center": [500, 500], "factor": 2})
    obs, *_ = tools.step(call)
    assert obs["image"].any()

    blank = gymnasium.make(GALAXY_ID, condition="blank-tools", **kw)
    blank.reset(seed=0, options={"index": 0})
    obs, *_ = blank.step(call)
    assert not obs["image"].any()

    no_tools = gymnasium.make(GALAXY_ID, condition="no-tools", **kw)
    obs, info = no_tools.reset(seed=0, options={"index": 0})
    assert info["tools"] == []
    obs, r, term, trunc, info = no_tools.step(call)
    assert not term and info["invalid_actions"] == 1 and "no tools" in obs["text"]

    matched = gymnasium.make(GALAXY_ID, condition="no-tools-matched", **kw)
    obs, _ = matched.reset(seed=0, options={"index": 0})
    assert obs["image"].shape == (128, 128, 3)  # 64 px x sqrt(1 + 3 calls), capped at the source

    blind = gymnasium.make(GALAXY_ID, condition="blind", **kw)
    obs, info = blind.reset(seed=0, options={"index": 0})
    assert not obs["image"].any()
    assert not any(
        b.get("type") == "image"
        for m in info["messages"]
        for b in m["content"]
        if isinstance(m["content"], list)
    )


def test_over_turn_truncates_and_flags(galaxy_file):
    env = gymnasium.make(GALAXY_ID, data=str(galaxy_file), split="all", max_turns=3, view_size=64)
    env.reset(seed=0)
    for _ in range(3):
        obs, r, term, trunc, info = env.step(
            format_tool_call("zoom", {"center": [500, 500], "factor": 2})
        )
    assert trunc and not term and info["over_turn"] and info["correct"] is False


def test_tool_errors_are_messages_not_exceptions(galaxy_file):
    env = gymnasium.make(GALAXY_ID, data=str(galaxy_file), split="all", max_turns=12, view_size=64)
    env.reset(seed=0)
    bad = [
        format_tool_call("zoom", {"center": [500, 500], "factor": 2, "image_index": 5}),
        format_tool_call("zoom", {"center": [500, 500], "factor": 0.5}),
        format_tool_call("crop", {"bbox_2d": [600, 600, 500, 700]}),
        format_tool_call("rotate", {"angle": 3}),
        format_tool_call("zoom", {"center": ["a", 5], "factor": 2}),
        "<answer>Spiral</answer>",
    ]
    for k, text in enumerate(bad, 1):
        obs, r, term, trunc, info = env.step(text)
        assert not term and not trunc and info["invalid_actions"] == k
        assert obs["text"].startswith("Error:"), obs["text"]
        assert r == pytest.approx(-0.1)
    last = info["messages"][-1]
    assert last["role"] == "user" and "not a class" in last["content"][0]["text"]


def test_too_many_calls(galaxy_file):
    env = gymnasium.make(
        GALAXY_ID, data=str(galaxy_file), split="all", max_tool_calls=1, view_size=64
    )
    env.reset(seed=0)
    call = format_tool_call("zoom", {"center": [500, 500], "factor": 2})
    env.step(call)
    obs, r, term, trunc, info = env.step(call)
    assert "at most 1 tool calls" in obs["text"] and info["invalid_actions"] == 1


def test_nested_zoom_composes(galaxy_file):
    env = gymnasium.make(GALAXY_ID, data=str(galaxy_file), split="all", view_size=64)
    env.reset(seed=0)
    env.step(format_tool_call("zoom", {"center": [500, 500], "factor": 2}))
    obs, r, term, trunc, info = env.step(
        format_tool_call("zoom", {"center": [500, 500], "factor": 2, "image_index": 1})
    )
    fp = info["views"][2]["footprint"]
    w = info["views"][0]["footprint"][2]  # the source side
    assert fp == pytest.approx(
        [3 * w / 8, 3 * w / 8, 5 * w / 8, 5 * w / 8]
    )  # two x2 zooms, centred


def test_bad_config_and_labels_are_clear_errors(galaxy_file, spectra_dir):
    with pytest.raises(ConfigError, match="condition"):
        gymnasium.make(GALAXY_ID, data=str(galaxy_file), condition="cheat")
    with pytest.raises(ConfigError, match="split"):
        gymnasium.make(GALAXY_ID, data=str(galaxy_file), split="holdout")
    with pytest.raises(ConfigError, match="spectra"):
        gymnasium.make(GALAXY_ID, data=str(spectra_dir))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    replies=st.lists(
        st.one_of(
            st.text(max_size=300),
            st.builds(
                lambda n, a: format_tool_call(n, a),
                st.sampled_from(["zoom", "crop", "spectrum_window", "x"]),
                st.dictionaries(
                    st.sampled_from(
                        [
                            "center",
                            "factor",
                            "bbox_2d",
                            "image_index",
                            "lambda_min",
                            "lambda_max",
                            "junk",
                        ]
                    ),
                    st.one_of(
                        st.integers(-(10**30), 10**30),
                        st.floats(),
                        st.text(max_size=5),
                        st.lists(st.one_of(st.integers(-5000, 5000), st.floats()), max_size=5),
                        st.none(),
                        st.booleans(),
                    ),
                    max_size=4,
                ),
            ),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_step_never_raises_on_arbitrary_replies(galaxy_file, spectra_dir, replies):
    for env_id, kw in (
        (GALAXY_ID, {"data": str(galaxy_file), "view_size": 32}),
        (SPECTRUM_ID, {"data": str(spectra_dir), "view_width": 128, "view_height": 64}),
    ):
        env = gymnasium.make(env_id, split="all", max_turns=4, **kw)
        obs, info = env.reset(seed=1)
        for text in replies:
            obs, r, term, trunc, info = env.step(text)
            assert env.observation_space.contains(obs)
            if term or trunc:
                break


LEAK_KEYS = (
    "ra",
    "dec",
    "redshift",
    "pxscale",
    "z",
    "plate",
    "mjd",
    "fiber",
    "file_name",
    "object_id",
)


def _forbidden_strings(sample, path):
    out = {str(path), path.name if hasattr(path, "name") else str(path)}
    if sample.row_id >= 100:
        out.add(str(sample.row_id))
    for k in LEAK_KEYS:
        v = sample.meta.get(k)
        if isinstance(v, str) and len(v) >= 3:
            out.add(v)
        elif isinstance(v, (int, float, np.number)) and np.isfinite(v):
            for fmt in ("{:.3f}", "{:.4f}", "{:g}"):
                s = fmt.format(float(v))
                if len(s.replace("0", "").replace(".", "").replace("-", "")) >= 3:
                    out.add(s)
    return out


@pytest.mark.parametrize("condition", CONDITIONS)
def test_no_metadata_reaches_any_message(galaxy_file, spectra_dir, condition):
    for env_id, data, kw in (
        (GALAXY_ID, galaxy_file, {"view_size": 32}),
        (SPECTRUM_ID, spectra_dir, {"view_width": 128, "view_height": 64}),
    ):
        env = gymnasium.make(env_id, data=str(data), split="all", condition=condition, **kw)
        src = open_source(str(data)) if env_id == GALAXY_ID else env.unwrapped.source
        policies = [OraclePolicy(), RandomPolicy(seed=2, tool_prob=1.0)]
        for i in range(len(env.unwrapped.rows)):
            for pol in policies:
                info = run_episode(env, pol, i)
                sample = src[info["episode"]["row_id"]]
                shown = [{k: v for k, v in m.items()} for m in info["messages"]]
                text = json.dumps(shown, default=lambda o: "<image>")
                text += json.dumps(info["tools"])
                for bad in _forbidden_strings(sample, data):
                    assert not re.search(r"(?<![\d.])" + re.escape(bad) + r"(?![\d])", text), (
                        bad,
                        condition,
                    )


def test_env_uses_a_split_made_with_other_fractions(tmp_path):
    from astroreason.cli import main
    from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file

    path = tmp_path / "g.h5"
    write_galaxy_file(path, GalaxySynthConfig(n=40, size=64, seed=1), progress=False)
    main(["data", "split", str(path), "--val", "0.25", "--test", "0.25"])
    sizes = {}
    for split in ("train", "val", "test"):
        env = gymnasium.make(GALAXY_ID, data=str(path), split=split, view_size=32)
        sizes[split] = len(env.unwrapped.rows)
        env.close()
    assert sum(sizes.values()) == 40 and sizes["val"] >= 10 and sizes["test"] >= 10
