"""Placebo conditions: ``reinput`` (the overview again) and ``random-view`` (a random place).

Both offer and run the tools exactly as ``tools`` does; only what a successful call shows changes,
and the footprint recorded is the one shown.
"""

import gymnasium
import numpy as np
import pytest

import astroreason.envs  # noqa: F401 - registers the ids
from astroreason.conditions import (
    CONDITION_SPECS,
    CONDITIONS,
    TOOL_CONDITIONS,
    Condition,
    base_condition,
    check_condition,
    condition_spec,
    is_tool_condition,
)
from astroreason.envs import GALAXY_ID, SPECTRUM_ID
from astroreason.errors import ConfigError
from astroreason.protocol import format_tool_call
from astroreason.tools import MIN_WINDOW_A, random_square

PLACEBOS = ("reinput", "random-view")
ZOOM = format_tool_call("zoom", {"center": [500, 500], "factor": 2})
CROP = format_tool_call("crop", {"bbox_2d": [100, 200, 400, 400]})


def _galaxy(galaxy_file, condition, **kw):
    return gymnasium.make(
        GALAXY_ID, data=str(galaxy_file), split="all", condition=condition, view_size=64, **kw
    )


def _spectrum(spectra_dir, condition, **kw):
    return gymnasium.make(
        SPECTRUM_ID,
        data=str(spectra_dir),
        split="all",
        condition=condition,
        task="subclass",
        view_width=256,
        view_height=128,
        **kw,
    )


def _window(info):
    lo, hi = info["ground_truth"]["wavelength_range"]
    a = lo + 0.3 * (hi - lo)
    return format_tool_call("spectrum_window", {"lambda_min": round(a, 1), "lambda_max": a + 150})


def _first_image(info):
    m = next(m for m in info["messages"] if m["role"] == "user")
    return next(b["image"] for b in m["content"] if b["type"] == "image")


def _last_tool_message(info):
    m = info["messages"][-1]
    assert m["role"] == "tool"
    image = next(b["image"] for b in m["content"] if b["type"] == "image")
    text = next(b["text"] for b in m["content"] if b["type"] == "text")
    return image, text


# --------------------------------------------------------------------------- declarations


def test_conditions_are_declared_once_and_in_order():
    assert CONDITIONS == (
        "tools",
        "no-tools",
        "no-tools-matched",
        "blank-tools",
        "blind",
        "tools-off",
        "reinput",
        "random-view",
    )
    assert TOOL_CONDITIONS == ("tools", "blank-tools", "reinput", "random-view")
    for name, spec in CONDITION_SPECS.items():
        assert isinstance(spec, Condition) and spec.name == name and spec.description
    assert condition_spec("reinput").placebo == "reinput"
    assert condition_spec("random-view").placebo == "random-view"
    assert condition_spec("random-view").trainable and not condition_spec("blank-tools").trainable
    with pytest.raises(AttributeError):
        condition_spec("tools").uses_tools = False  # frozen


def test_labels_name_their_base_condition():
    assert base_condition("tools@sft") == "tools"
    assert base_condition("random-view@grpo") == "random-view"
    assert base_condition("tools") == "tools"
    assert check_condition("tools@sft") == "tools@sft"
    assert check_condition("reinput") == "reinput"
    assert condition_spec("tools@grpo") is CONDITION_SPECS["tools"]
    assert is_tool_condition("reinput@sft") and not is_tool_condition("no-tools@sft")
    assert not is_tool_condition(None) and not is_tool_condition("foo")
    for bad in ("foo@sft", "foo", "tools@", "@sft"):
        with pytest.raises(ConfigError, match="condition"):
            check_condition(bad)
    with pytest.raises(ConfigError, match="unknown 'foo@sft'"):
        condition_spec("foo@sft")


def test_a_labelled_env_behaves_as_its_base(galaxy_file):
    plain = _galaxy(galaxy_file, "tools")
    labelled = _galaxy(galaxy_file, "tools@sft")
    _, a = plain.reset(seed=0, options={"index": 0})
    _, b = labelled.reset(seed=0, options={"index": 0})
    assert b["condition"] == "tools@sft" and a["tools"] == b["tools"]
    _, *_, a = plain.step(ZOOM)
    _, *_, b = labelled.step(ZOOM)
    assert np.array_equal(_last_tool_message(a)[0], _last_tool_message(b)[0])
    with pytest.raises(ConfigError, match="unknown"):
        _galaxy(galaxy_file, "foo@sft")


def test_tools_off_is_the_no_tools_episode(galaxy_file):
    """``tools-off`` (the tools arm's checkpoint, tools switched off) sees what ``no-tools`` sees."""
    off, plain = _galaxy(galaxy_file, "tools-off"), _galaxy(galaxy_file, "no-tools")
    _, a = off.reset(seed=0, options={"index": 3})
    _, b = plain.reset(seed=0, options={"index": 3})
    assert a["tools"] == b["tools"] == []
    assert [m["role"] for m in a["messages"]] == [m["role"] for m in b["messages"]]
    assert a["messages"][0] == b["messages"][0]  # the no-tools system prompt
    assert np.array_equal(_first_image(a), _first_image(b))
    *_, info = off.step(ZOOM)  # a call is not a tool here: an invalid reply
    assert info["invalid_actions"] == 1 and not info["tool_calls"]
    assert not condition_spec("tools-off").trainable


# --------------------------------------------------------------------------- galaxy


@pytest.mark.parametrize("condition", PLACEBOS)
def test_placebos_offer_the_tools_of_tools(galaxy_file, condition):
    tools = _galaxy(galaxy_file, "tools")
    placebo = _galaxy(galaxy_file, condition)
    _, ti = tools.reset(seed=0, options={"index": 0})
    _, pi = placebo.reset(seed=0, options={"index": 0})
    assert pi["tools"] == ti["tools"] and [t["function"]["name"] for t in pi["tools"]] == [
        "zoom",
        "crop",
    ]
    assert pi["messages"][0] == ti["messages"][0]  # same system prompt
    for call in (ZOOM, CROP):
        _, _, _, _, ti = tools.step(call)
        _, _, _, _, pi = placebo.step(call)
        assert _last_tool_message(pi)[1] == _last_tool_message(ti)[1]  # same caption
    # same validation and the same call budget
    bad = format_tool_call("zoom", {"center": [500, 500], "factor": 99})
    _, _, _, _, ti = tools.step(bad)
    _, _, _, _, pi = placebo.step(bad)
    assert pi["messages"][-1] == ti["messages"][-1] and pi["invalid_actions"] == 1
    assert pi["tool_calls"][-1]["error"] == ti["tool_calls"][-1]["error"]


def test_reinput_returns_the_overview_pixels(galaxy_file):
    env = _galaxy(galaxy_file, "reinput")
    obs0, info = env.reset(seed=0, options={"index": 3})
    overview = info["messages"][1]["content"][0]["image"]
    field = info["views"][0]["footprint"]
    for call in (ZOOM, CROP):
        obs, _, _, _, info = env.step(call)
        view, text = _last_tool_message(info)
        assert view.shape == (64, 64, 3) and np.array_equal(view, overview)
        assert np.array_equal(obs["image"], obs0["image"])
        rec = info["tool_calls"][-1]
        assert rec["ok"] and rec["footprint"] == field and rec["requested_footprint"] != field
        assert info["views"][-1]["footprint"] == field
    assert text.startswith("Image 2: crop of image 0")


def test_random_view_is_at_the_requested_scale_elsewhere_and_seeded(galaxy_file):
    tools = _galaxy(galaxy_file, "tools")
    rnd = _galaxy(galaxy_file, "random-view")
    _, _ = tools.reset(seed=0, options={"index": 0})
    _, info = rnd.reset(seed=5, options={"index": 0})
    _, _, _, _, ti = tools.step(ZOOM)
    _, _, _, _, ri = rnd.step(ZOOM)
    asked, shown = ti["tool_calls"][-1]["footprint"], ri["tool_calls"][-1]["footprint"]
    assert ri["tool_calls"][-1]["requested_footprint"] == asked
    assert shown != asked
    side = asked[2] - asked[0]
    assert shown[2] - shown[0] == pytest.approx(side) and shown[3] - shown[1] == pytest.approx(side)
    h, w = rnd.unwrapped._source.shape[:2]
    assert 0 <= shown[0] and shown[2] <= w and 0 <= shown[1] and shown[3] <= h
    assert ri["views"][-1]["footprint"] == shown
    view, text = _last_tool_message(ri)
    assert view.shape == (64, 64, 3)
    assert text == _last_tool_message(ti)[1]  # reads like the real reply
    assert not np.array_equal(view, _last_tool_message(ti)[0])

    # a crop keeps its box size, at another place
    _, _, _, _, ti = tools.step(CROP)
    _, _, _, _, ri = rnd.step(CROP)
    a, s = ti["tool_calls"][-1]["footprint"], ri["tool_calls"][-1]["footprint"]
    assert s != a and s[2] - s[0] == pytest.approx(a[2] - a[0])

    # the same seed draws the same places; another seed others
    def places(seed):
        env = _galaxy(galaxy_file, "random-view")
        env.reset(seed=seed, options={"index": 0})
        env.step(ZOOM)
        *_, info = env.step(CROP)
        return [c["footprint"] for c in info["tool_calls"]], _last_tool_message(info)[0]

    (fa, va), (fb, vb), (fc, _) = places(5), places(5), places(6)
    assert fa == fb and np.array_equal(va, vb) and fa != fc
    assert fa[0] == shown


def test_random_view_is_scored_by_where_it_landed(galaxy_file):
    from astroreason.targets import on_target

    env = _galaxy(galaxy_file, "random-view", max_tool_calls=1)
    hits = []
    for seed in range(12):
        _, info = env.reset(seed=seed, options={"index": 0})
        x0, y0, x1, y1 = info["ground_truth"]["bbox"]
        fx0, fy0, fx1, fy1 = info["views"][0]["footprint"]
        cx = round(((x0 + x1) / 2 - fx0) / (fx1 - fx0) * 1000)
        cy = round(((y0 + y1) / 2 - fy0) / (fy1 - fy0) * 1000)
        *_, info = env.step(format_tool_call("zoom", {"center": [cx, cy], "factor": 3}))
        rec = info["tool_calls"][-1]
        field = info["views"][0]["footprint"]
        gt = info["ground_truth"]["bbox"]
        assert on_target(rec["requested_footprint"], gt, field)
        hits.append(on_target(rec["footprint"], gt, field))
    assert not all(hits)  # a zoom aimed at the galaxy lands elsewhere


def test_random_square_stays_inside_or_centres():
    rng = np.random.default_rng(0)
    for _ in range(50):
        fp = random_square(30.0, 100, 80, rng)
        assert 0 <= fp.x0 and fp.x1 <= 80 and 0 <= fp.y0 and fp.y1 <= 100
        assert fp.side == pytest.approx(30.0)
    wide = random_square(120.0, 100, 80, rng)
    assert wide.x0 == -20.0 and wide.y0 == -10.0


@pytest.mark.parametrize("condition", PLACEBOS)
def test_check_env_and_oracle_episodes_in_placebos(galaxy_file, spectra_dir, condition):
    import asyncio

    from gymnasium.utils.env_checker import check_env

    from astroreason.policies import OraclePolicy

    for env in (_galaxy(galaxy_file, condition), _spectrum(spectra_dir, condition)):
        check_env(env.unwrapped, skip_render_check=False)
        pol = OraclePolicy()
        _, info = env.reset(seed=0, options={"index": 1})
        done = False
        while not done:
            reply = asyncio.run(pol.act(info))
            _, _, term, trunc, info = env.step(reply.text)
            done = term or trunc
        assert info["correct"] and len(info["tool_calls"]) == 1 and info["tool_calls"][0]["ok"]


# --------------------------------------------------------------------------- spectrum


@pytest.mark.parametrize("table", [False, True])
def test_spectrum_placebos(spectra_dir, table):
    tools = _spectrum(spectra_dir, "tools", table=table)
    re_env = _spectrum(spectra_dir, "reinput", table=table)
    rnd = _spectrum(spectra_dir, "random-view", table=table)
    _, ti = tools.reset(seed=0, options={"index": 2})
    _, ri = re_env.reset(seed=0, options={"index": 2})
    _, ni = rnd.reset(seed=0, options={"index": 2})
    assert ti["tools"] == ri["tools"] == ni["tools"]
    call = _window(ti)
    _, _, _, _, ti = tools.step(call)
    _, _, _, _, ri = re_env.step(call)
    _, _, _, _, ni = rnd.step(call)
    t_view, t_text = _last_tool_message(ti)
    asked = ti["tool_calls"][-1]["footprint"]
    first_line = t_text.split("\n")[0]

    # reinput: the overview plot again, its window recorded
    overview = ri["messages"][1]["content"][0]["image"]
    r_view, r_text = _last_tool_message(ri)
    assert r_view.shape == t_view.shape == (128, 256, 3) and np.array_equal(r_view, overview)
    assert ri["tool_calls"][-1]["footprint"] == ri["views"][0]["footprint"]
    assert ri["tool_calls"][-1]["requested_footprint"] == asked
    assert r_text.split("\n")[0] == first_line

    # random-view: a window of the same width elsewhere inside the data
    n_view, n_text = _last_tool_message(ni)
    shown = ni["tool_calls"][-1]["footprint"]
    lo, hi = ni["ground_truth"]["wavelength_range"]
    assert shown != asked and shown[1] - shown[0] == pytest.approx(asked[1] - asked[0])
    assert lo <= shown[0] and shown[1] <= hi and shown[1] - shown[0] >= MIN_WINDOW_A
    assert n_view.shape == t_view.shape and not np.array_equal(n_view, t_view)
    assert n_text.split("\n")[0] == first_line
    if table:  # the table tabulates what is shown, not the requested window
        assert t_text.count("\n") == n_text.count("\n") == r_text.count("\n")
        assert n_text != t_text and r_text != t_text

    again = _spectrum(spectra_dir, "random-view", table=table)
    again.reset(seed=0, options={"index": 2})
    *_, ai = again.step(call)
    assert ai["tool_calls"][-1]["footprint"] == shown


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("condition", PLACEBOS)
def test_placebos_are_trainable_like_tools(tmp_path, galaxy_file, condition):
    from astroreason.training.config import CONDITIONS as TRAIN_CONDITIONS
    from astroreason.training.config import TrainConfig, check_config
    from astroreason.training.env_adapter import ToolAdapter, adapter_factory
    from astroreason.training.sft import oracle_dataset

    assert condition in TRAIN_CONDITIONS
    cfg = TrainConfig(
        data=str(galaxy_file),
        output_dir=str(tmp_path / "run"),
        condition=condition,
        view_size=64,
        sft_episodes=3,
        report_to="none",
        per_device_batch_size=2,
        num_generations=2,
    )
    check_config(cfg)
    ds = oracle_dataset(cfg)
    assert len(ds) == 3 and all(len(r["images"]) == 2 for r in ds)
    call = ds[0]["messages"][2]["tool_calls"][0]["function"]
    assert call["name"] == "crop"
    if condition == "reinput":  # the tool view is the overview again
        assert all(
            np.array_equal(np.asarray(r["images"][0]), np.asarray(r["images"][1])) for r in ds
        )
    opts = {"view_size": 64, "max_turns": 4, "max_tool_calls": 3, "split_seed": 0}
    adapter = adapter_factory(str(galaxy_file), condition, opts)
    assert issubclass(adapter, ToolAdapter)
    inst = adapter()
    row = int(inst.env.unwrapped.rows[0])
    inst.reset(row_id=row)
    out = inst.zoom(center=[500, 500], factor=2)
    assert isinstance(out, list) and out[0]["type"] == "image"
