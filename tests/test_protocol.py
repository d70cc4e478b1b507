import json

from hypothesis import given, settings
from hypothesis import strategies as st

from astroreason.protocol import (
    PromptSpec,
    format_answer,
    format_tool_call,
    parse_reply,
    system_prompt,
)
from astroreason.reward import RewardConfig, grade

CLASSES = ("Round Smooth", "Barred Spiral", "Edge-on with Bulge")


def test_tool_call_round_trip():
    r = parse_reply(format_tool_call("zoom", {"center": [500, 400], "factor": 2}), CLASSES)
    assert r.valid and r.answer is None
    assert r.tool_call.name == "zoom"
    assert r.tool_call.arguments == {"center": [500, 400], "factor": 2}


def test_arguments_as_json_string_accepted():
    body = json.dumps({"name": "crop", "arguments": json.dumps({"bbox_2d": [1, 2, 3, 4]})})
    r = parse_reply(f"<tool_call>{body}</tool_call>", CLASSES)
    assert r.valid and r.tool_call.arguments == {"bbox_2d": [1, 2, 3, 4]}


def test_answer_case_and_whitespace_insensitive():
    r = parse_reply("I think so.\n<answer>  barred   SPIRAL </answer>", CLASSES)
    assert r.valid and r.answer == 1


def test_thinking_is_separated_and_ignored():
    r = parse_reply(
        "<think>maybe <answer>Round Smooth</answer></think><answer>Barred Spiral</answer>", CLASSES
    )
    assert r.answer == 1
    assert "maybe" in r.thinking


def test_unknown_class_lists_the_classes():
    r = parse_reply("<answer>Spiral</answer>", CLASSES)
    assert not r.valid and "Barred Spiral" in r.error and "'Spiral'" in r.error


def test_index_answer_not_accepted():
    assert not parse_reply("<answer>1</answer>", CLASSES).valid
    assert not parse_reply("Barred Spiral", CLASSES).valid


def test_invalid_shapes_are_explained():
    cases = {
        "": "no tool call and no answer",
        "<tool_call>{bad json}</tool_call>": "not valid JSON",
        "<tool_call>[1, 2]</tool_call>": "JSON object",
        '<tool_call>{"name": "zoom", "arguments": 5}</tool_call>': "arguments must be",
        '<tool_call>{"name": "zoom", "arguments": {}, "x": 1}</tool_call>': "unexpected keys",
        '<tool_call>{"name": "zoom"}</tool_call><tool_call>{"name": "zoom"}</tool_call>': "2 tool calls",
        '<tool_call>{"name": "zoom"}</tool_call><answer>Round Smooth</answer>': "both",
        "<tool_call>{": "unclosed",
        "<answer>Round Smooth": "unclosed",
        '<tool_call>{"name": "zoom", "arguments": {"factor": NaN}}</tool_call>': "not valid JSON",
        "x" * 9000: "at most 8000",
    }
    for text, why in cases.items():
        r = parse_reply(text, CLASSES)
        assert not r.valid, text
        assert why in r.error, (text, r.error)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parse_never_raises_on_arbitrary_text(text):
    r = parse_reply(text, CLASSES)
    assert (r.error is None) == (r.tool_call is not None or r.answer is not None)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=10) | st.integers(),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=10,
    )
)
def test_parse_never_raises_on_arbitrary_json(value):
    body = json.dumps({"name": "zoom", "arguments": value}, allow_nan=True)
    r = parse_reply(f"<tool_call>{body}</tool_call>", CLASSES)
    try:
        json.dumps(value, allow_nan=False)
        finite = True
    except ValueError:
        finite = False
    if not finite:
        assert not r.valid
    elif isinstance(value, str):  # a JSON string holding the arguments: judged by its content
        assert r.valid == (r.tool_call is not None)
    elif not isinstance(value, dict):
        assert not r.valid and "arguments must be" in r.error
    else:
        assert r.valid and r.tool_call.arguments == value


def test_system_prompt_lists_classes_and_format_only():
    spec = PromptSpec(task="Classify the galaxy.", class_names=CLASSES, tools=True, max_turns=4)
    text = system_prompt(spec)
    for c in CLASSES:
        assert c in text
    assert "<answer>" in text and "4 replies" in text
    no_tools = system_prompt(PromptSpec("Classify.", CLASSES, tools=False, max_turns=1))
    assert "without tools" in no_tools


def test_grade_and_reward():
    assert grade(1, 1) == 1.0 and grade(0, 1) == 0.0 and grade(None, 1) == 0.0
    cfg = RewardConfig(tool_bonus=0.5)
    assert cfg.final(1, 1, successful_calls=1) == 1.5
    assert cfg.final(0, 1, successful_calls=1) == 0.0  # no bonus for a wrong answer
    assert cfg.final(1, 1, successful_calls=0) == 1.0
    assert format_answer("Round Smooth") == "<answer>Round Smooth</answer>"
